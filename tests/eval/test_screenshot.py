"""`cromwell eval screenshot`: the scores are exact on hand-made transcripts (indentation relative),
the held-out pictures are the same on every run and really held out, a folder of screenshots is
read with its texts and metadata, and the reader, tesseract and the model modes run end to end
on real weights and the real binary where this machine has them."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cromwell_cli.main import main
from engine.data.fonts import HELDOUT_SIZES, available_fonts, split_fonts
from engine.data.split import HELDOUT, is_heldout
from engine.eval.screenshot import (
    ALIGNMENT,
    MODES,
    READ_MAX_SIDE,
    TaskResult,
    blank_like,
    char_error_rate,
    exact_line_rate,
    folder_pictures,
    heldout_tasks,
    levenshtein,
    normalise,
    prompt_ids,
    report_lines,
    run_screenshot,
    score,
    summarize,
)
from engine.eval.screenshot_readers import Tesseract, rss_mib, tesseract_binary
from engine.runtime.reader_file import read_any

TARGET = "def area(r):\n    return 3 * r\n\nx = area(2)\n"


def _levenshtein_reference(a: str, b: str) -> int:
    """The textbook dynamic programme, one cell at a time."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_levenshtein_counts_single_character_edits() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("same", "same") == 0
    assert levenshtein("λx: x", "λy: y") == 2  # characters, not bytes


def test_levenshtein_agrees_with_the_textbook_programme() -> None:
    rng = random.Random(7)
    for _ in range(400):
        a = "".join(rng.choice("ab c\n(λ") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab c\n(λ") for _ in range(rng.randint(0, 40)))
        assert levenshtein(a, b) == levenshtein(b, a) == _levenshtein_reference(a, b), (a, b)
    # Long texts with a shared head and tail (the cut) and edits inside.
    base = "".join(rng.choice("abcdefgh \n") for _ in range(300))
    edited = base[:100] + "XYZ" + base[110:250] + base[251:]
    assert levenshtein(base, edited) == _levenshtein_reference(base, edited)


def test_character_error_rate_is_distance_over_target_length_clipped_at_one() -> None:
    # normalised target: "def area(r):\n    return 3 * r\n\nx = area(2)", 42 characters
    assert len(normalise(TARGET)) == 42
    assert char_error_rate(TARGET, TARGET) == 0.0
    assert char_error_rate(TARGET.replace("3 *", "4 *"), TARGET) == pytest.approx(1 / 42)
    assert char_error_rate(TARGET.replace("x = ", ""), TARGET) == pytest.approx(4 / 42)
    # What a picture cannot show does not count: trailing spaces, trailing blank lines.
    assert char_error_rate("def area(r):   \n    return 3 * r\n\nx = area(2)\n\n\n", TARGET) == 0
    assert char_error_rate("", TARGET) == 1.0
    assert char_error_rate("import os\n" * 40, TARGET) == 1.0  # clipped, not 9.x
    assert char_error_rate("import os\n" * 40, TARGET, clip=False) == pytest.approx(
        levenshtein(("import os\n" * 40).rstrip(), normalise(TARGET)) / 42)
    assert char_error_rate("", "") == 0.0 and char_error_rate("x", "\n") == 1.0


def test_indentation_is_relative_both_texts_dedented() -> None:
    body = "    if x:\n        y = 1\n    z = 2\n"  # a window cropped inside a function
    assert normalise(body) == "if x:\n    y = 1\nz = 2"
    assert char_error_rate("if x:\n    y = 1\nz = 2", body) == 0.0
    assert char_error_rate("  if x:\n      y = 1\n  z = 2", body) == 0.0
    assert exact_line_rate("if x:\n    y = 1\nz = 2", body) == 1.0
    # Indentation between lines still counts: one line off by two spaces.
    assert char_error_rate("if x:\n  y = 1\nz = 2", body) == pytest.approx(2 / 21)
    assert exact_line_rate("if x:\n  y = 1\nz = 2", body) == pytest.approx(2 / 3)


def test_exact_line_rate_counts_non_blank_lines_aligned_by_position() -> None:
    assert exact_line_rate(TARGET, TARGET) == 1.0
    assert exact_line_rate("", TARGET) == 0.0
    # 3 non-blank target lines; the second is wrong.
    assert exact_line_rate(TARGET.replace("3 *", "4 *"), TARGET) == pytest.approx(2 / 3)
    # The blank line dropped: the last line moves up one and no longer counts.
    assert exact_line_rate("def area(r):\n    return 3 * r\nx = area(2)\n", TARGET) \
        == pytest.approx(2 / 3)
    # Trailing spaces are invisible in a picture; relative indentation is not.
    assert exact_line_rate("def area(r):  \n  return 3 * r\n\nx = area(2)", TARGET) \
        == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------ held-out renders


@pytest.fixture(scope="module")
def tasks():
    return heldout_tasks(4)


def test_the_heldout_pictures_are_the_same_on_every_run(tasks) -> None:
    again = heldout_tasks(4)
    assert [t.task_id for t in again] == [t.task_id for t in tasks]
    for a, b in zip(tasks, again, strict=True):
        assert a.text == b.text and a.meta == b.meta
        assert np.array_equal(a.image, b.image)
    # A shorter run reads the first pictures of a longer one.
    assert [t.task_id for t in heldout_tasks(2)] == [t.task_id for t in tasks[:2]]
    assert [t.task_id for t in heldout_tasks(4, seed=1)] != [t.task_id for t in tasks]


def test_the_pictures_are_held_out_files_in_held_out_faces_and_sizes(tasks) -> None:
    heldout_faces = {f.name for f in split_fonts(available_fonts())[HELDOUT]}
    for t in tasks:
        assert is_heldout(t.shot.path) and t.suffix == ".py"
        assert t.meta["font"] == t.shot.style.font_name and t.meta["font"] in heldout_faces
        assert int(t.meta["size"]) in HELDOUT_SIZES
        assert t.meta["tone"] in ("light", "dark") and t.meta["theme"] == t.shot.style.theme
        h, w, c = t.image.shape
        assert c == 3 and h % 8 == 0 and w % 8 == 0 and max(h, w) <= 256
        assert t.text.strip()


def test_the_reading_side_holds_whole_editor_windows() -> None:
    big = heldout_tasks(8, max_side=READ_MAX_SIDE)
    assert all(max(t.image.shape[:2]) <= READ_MAX_SIDE for t in big)
    # Windows of a few lines at 256 pixels; of tens of lines at 1024.
    assert max(len(normalise(t.text).split("\n")) for t in big) >= 20


def test_the_blank_picture_keeps_the_size_and_background_and_drops_the_code() -> None:
    shot = heldout_tasks(1)[0].shot
    blank = blank_like(shot.image)
    assert blank.shape == shot.image.shape and blank.dtype == np.uint8
    assert (blank == shot.image[0, 0]).all()
    assert not np.array_equal(blank, shot.image)


# ------------------------------------------------------------------------------ a folder


def _folder(tmp_path: Path, count: int = 2, max_side: int = READ_MAX_SIDE) -> Path:
    """Held-out renders saved as a folder of screenshots: NAME.png, NAME.txt, NAME.json."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, t in enumerate(heldout_tasks(count, max_side=max_side)):
        Image.fromarray(t.image).save(folder / f"shot{i}.png")
        (folder / f"shot{i}.txt").write_text(t.text)
        (folder / f"shot{i}.json").write_text(json.dumps(
            {"theme": t.meta["theme"], "zoom": 100 + 25 * i, "source": "render",
             "path": "x.py", "notes": ["not", "a", "condition"]}))
    return folder


def test_a_folder_is_read_with_its_texts_and_metadata_and_exact_text_scores_zero(
        tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    pictures = folder_pictures(folder)
    heldout = heldout_tasks(2, max_side=READ_MAX_SIDE)
    assert [p.task_id for p in pictures] == ["shot0.png", "shot1.png"]
    for i, (p, t) in enumerate(zip(pictures, heldout, strict=True)):
        assert np.array_equal(p.image, t.image) and p.text == t.text and p.suffix == ".py"
        # The metadata to group by: the scalar keys but the file's path.
        assert p.meta == {"theme": t.meta["theme"], "zoom": str(100 + 25 * i),
                          "source": "render"}
        exact = score(p.text, p.text, 0.1)
        assert exact.cer == exact.cer_unclipped == 0.0 and exact.exact_lines == 1.0
        shifted = "\n".join("  " + line for line in p.text.split("\n"))
        assert score(shifted, p.text, 0.1).cer == 0.0
    assert [p.task_id for p in folder_pictures(folder, limit=1)] == ["shot0.png"]
    results = [TaskResult(p.task_id, p.meta, 1, 1, {"reader": score(p.text, p.text, 0.5 + i)})
               for i, p in enumerate(pictures)]
    report = summarize(results, ["reader"], ["source", "theme", "zoom"], {}, {}, {}, 1.0)
    assert report["reader"]["cer"] == 0.0 and report["reader"]["exact_line_rate"] == 1.0
    assert report["reader"]["seconds_mean"] == pytest.approx(1.0)
    assert report["reader"]["seconds_p95"] == pytest.approx(1.45)
    assert report["by_source"]["render"]["tasks"] == 2
    assert set(report["by_zoom"]) == {"100", "125"}
    assert report["alignment"] == ALIGNMENT and "dedent" in ALIGNMENT


def test_a_folder_picture_without_its_text_is_a_clear_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path, count=1, max_side=256)
    (folder / "shot0.txt").unlink()
    result = CliRunner().invoke(main, ["eval", "screenshot", "--pictures", str(folder)])
    assert result.exit_code != 0 and "shot0.txt" in result.output
    (folder / "shot0.txt").write_text("x = 1\n")
    result = CliRunner().invoke(main, ["eval", "screenshot", "--pictures", str(folder),
                                       "--model-modes"])
    assert result.exit_code != 0 and "held-out renders only" in result.output


# ------------------------------------------------------------------------------ the readers


def _reader_weights() -> Path:
    from engine.reader.read import ASSET

    chosen = os.environ.get("CROMWELL_READER")
    for path in ([Path(chosen)] if chosen else []) + [ASSET]:
        if path.is_file():
            return path
    pytest.skip("no screenshot reader weights (engine/assets/reader.npz or $CROMWELL_READER)")


needs_tesseract = pytest.mark.skipif(tesseract_binary() is None,
                                     reason="tesseract is not installed")


@needs_tesseract
def test_tesseract_reads_a_heldout_render_and_is_scored() -> None:
    task = heldout_tasks(1, max_side=READ_MAX_SIDE)[0]
    peer = Tesseract()
    (got,) = peer.read_all([(task.image, task.suffix)])
    assert "\f" not in got.text and got.seconds > 0
    reading = score(got.text, task.text, got.seconds)
    # A clean, large render: tesseract reads most of it (it does not keep indentation).
    assert reading.cer < 0.5
    assert peer.info["version"].startswith("tesseract") and peer.info["peak_rss_mib"] > 1


def test_rss_is_read() -> None:
    assert rss_mib() > 1


def test_a_folder_is_read_by_the_reader_and_the_peer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CROMWELL_READER", str(_reader_weights()))
    folder = _folder(tmp_path)
    report = run_screenshot(pictures=folder)
    assert report["pictures"] == str(folder) and report["tasks"] == 2
    assert report["modes"][0] == "reader"
    assert ("tesseract" in report["modes"]) == (tesseract_binary() is not None)
    assert ("tesseract" in report["left_out"]) == (tesseract_binary() is None)
    assert report["groups"] == ["source", "theme", "zoom"]
    for mode in report["modes"]:
        assert 0.0 <= report[mode]["cer"] <= 1.0
        assert 0.0 <= report[mode]["exact_line_rate"] <= 1.0
        assert report[mode]["seconds_p95"] >= report[mode]["seconds_mean"] > 0
        assert report["by_source"]["render"][mode]["cer"] == report[mode]["cer"]
    # The reader reads clean renders of held-out files well: most characters right.
    assert report["reader"]["cer"] < 0.5
    assert isinstance(report["reader"]["rss_added_mib"], float)
    for r in report["results"]:
        for mode in report["modes"]:
            reading = r["readings"][mode]
            assert reading["cer"] == min(1.0, reading["cer_unclipped"])
            assert reading["cer"] == pytest.approx(
                char_error_rate(reading["transcript"], (folder / r["task_id"])
                                .with_suffix(".txt").read_text()))
    text = "\n".join(report_lines(report))
    assert "exact lines" in text and "reader: weights" in text and "zoom 125: 1 pictures" in text


def test_cli_limit_1_json_reads_with_the_reader_weights(monkeypatch) -> None:
    weights = _reader_weights()
    monkeypatch.setenv("CROMWELL_READER", str(weights))
    result = CliRunner().invoke(main, ["eval", "screenshot", "--limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["benchmark"] == "screenshot" and report["tasks"] == 1
    assert report["pictures"] == "held-out renders" and report["max_side"] == READ_MAX_SIDE
    assert report["reader"]["weights"] == str(weights)
    assert report["reader"]["step"] == read_any(weights).meta.get("step")
    assert report["empty"] == {"cer": 1.0, "cer_unclipped": 1.0, "exact_line_rate": 0.0}
    (r,) = report["results"]
    assert r["task_id"] == heldout_tasks(1, max_side=READ_MAX_SIDE)[0].task_id
    assert set(r["readings"]) == set(report["modes"]) and "image" not in report["modes"]
    assert report["reader"]["cer"] == pytest.approx(r["readings"]["reader"]["cer"], abs=1e-4)
    for key in ("by_font", "by_size", "by_theme", "by_tone"):
        assert sum(g["tasks"] for g in report[key].values()) == 1


# ------------------------------------------------------------------------------ the model modes


def test_cli_model_modes_on_the_default_model_report_json() -> None:
    result = CliRunner().invoke(
        main, ["eval", "screenshot", "--model-modes", "--limit", "1", "--max-side", "256",
               "--max-tokens", "12", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["model"].endswith(".gguf") and report["max_tokens"] == 12
    assert report["modes"][-3:] == list(MODES) == ["image", "blank_image", "no_image"]
    (r,) = report["results"]
    for mode in MODES:
        reading = r["readings"][mode]
        assert report[mode]["cer"] == pytest.approx(reading["cer"], abs=1e-4)
        assert reading["cer"] == min(1.0, reading["cer_unclipped"])
        assert 1 <= reading["tokens"] <= 12
    for baseline in ("blank_image", "no_image"):
        assert report[f"cer_gain_over_{baseline}"] == pytest.approx(
            report[baseline]["cer"] - report["image"]["cer"], abs=1e-4)


def test_a_text_only_model_is_a_clear_error(tmp_path) -> None:
    from engine.runtime import model_store

    smollm2 = model_store.cached_path(model_store.SMOLLM2_135M)
    if not smollm2.is_file():
        pytest.skip("SmolLM2 is not in the model cache")
    result = CliRunner().invoke(main, ["eval", "screenshot", "--model", str(smollm2),
                                       "--limit", "1", "--json"])
    assert result.exit_code != 0
    assert "text-only" in result.output and "vision model" in result.output


def test_the_prompt_is_encoded_exactly_as_training_encodes_it() -> None:
    import engine.runtime
    from engine.data.vision import encode_vision
    from engine.runtime import model_store
    from engine.train.tokenizer_choice import load_tokenizer

    model = engine.runtime.load(None)
    if not model.takes_images:
        pytest.skip("the default model in the cache is not cromwell-smol")
    shot = heldout_tasks(1)[0].shot
    assert prompt_ids(model.tokenizer, shot)[0] == model.tokenizer.encode("<IMAGE>")[0]
    trained, _ = load_tokenizer(str(model_store.cached_path(model_store.SMOLLM2_135M)),
                                model.config.language.vocab_size)
    encoded = encode_vision(shot, trained, trained.eos_id)
    head = encoded.ids[: encoded.mask.index(1)]
    assert prompt_ids(model.tokenizer, shot) == head
