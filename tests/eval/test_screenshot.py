"""`cromwell eval screenshot`: the held-out pictures are the same on every run and really held
out, the two scores are exact on hand-made transcripts, and the command runs end to end on the
real default model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cromwell_lsp.cli import main
from engine.eval.screenshot import (
    MODES,
    blank_like,
    char_error_rate,
    exact_line_rate,
    heldout_tasks,
    levenshtein,
    normalise,
    prompt_ids,
)
from engine.train.fonts import HELDOUT_SIZES, available_fonts, split_fonts
from engine.train.split import HELDOUT, is_heldout

TARGET = "def area(r):\n    return 3 * r\n\nx = area(2)\n"


def test_levenshtein_counts_single_character_edits() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("same", "same") == 0


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


def test_exact_line_rate_counts_non_blank_lines_aligned_by_position() -> None:
    assert exact_line_rate(TARGET, TARGET) == 1.0
    assert exact_line_rate("", TARGET) == 0.0
    # 3 non-blank target lines; the second is wrong.
    assert exact_line_rate(TARGET.replace("3 *", "4 *"), TARGET) == pytest.approx(2 / 3)
    # The blank line dropped: the last line moves up one and no longer counts.
    assert exact_line_rate("def area(r):\n    return 3 * r\nx = area(2)\n", TARGET) \
        == pytest.approx(2 / 3)
    # Trailing spaces are invisible in a picture; indentation is not.
    assert exact_line_rate("def area(r):  \n  return 3 * r\n\nx = area(2)", TARGET) \
        == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def tasks():
    return heldout_tasks(4)


def test_the_heldout_pictures_are_the_same_on_every_run(tasks) -> None:
    again = heldout_tasks(4)
    assert [t.task_id for t in again] == [t.task_id for t in tasks]
    for a, b in zip(tasks, again, strict=True):
        assert a.shot.text == b.shot.text
        assert np.array_equal(a.shot.image, b.shot.image)
    # A shorter run reads the first pictures of a longer one.
    assert [t.task_id for t in heldout_tasks(2)] == [t.task_id for t in tasks[:2]]
    assert [t.task_id for t in heldout_tasks(4, seed=1)] != [t.task_id for t in tasks]


def test_the_pictures_are_held_out_files_in_held_out_faces_and_sizes(tasks) -> None:
    heldout_faces = {f.name for f in split_fonts(available_fonts())[HELDOUT]}
    for t in tasks:
        assert is_heldout(t.shot.path)
        assert t.shot.style.font_name in heldout_faces
        assert t.shot.style.size in HELDOUT_SIZES
        h, w, c = t.shot.image.shape
        assert c == 3 and h % 8 == 0 and w % 8 == 0 and max(h, w) <= 256
        assert t.shot.text.strip()


def test_cli_limit_1_on_the_default_model_reports_json() -> None:
    result = CliRunner().invoke(
        main, ["eval", "screenshot", "--limit", "1", "--max-tokens", "12", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["benchmark"] == "screenshot" and report["tasks"] == 1
    assert report["model"].endswith(".gguf") and report["alignment"] == "by position"
    assert report["empty"] == {"cer": 1.0, "cer_unclipped": 1.0, "exact_line_rate": 0.0}
    (r,) = report["results"]
    assert r["task_id"] == heldout_tasks(1)[0].task_id
    assert set(r["readings"]) == set(MODES) == {"image", "blank_image", "no_image"}
    for mode in MODES:
        reading = r["readings"][mode]
        assert 0.0 <= report[mode]["cer"] <= 1.0
        assert 0.0 <= report[mode]["exact_line_rate"] <= 1.0
        assert report[mode]["cer"] == pytest.approx(reading["cer"], abs=1e-4)
        assert reading["cer"] == min(1.0, reading["cer_unclipped"])
        assert 1 <= reading["tokens"] <= 12
    for baseline in ("blank_image", "no_image"):
        assert report[f"cer_gain_over_{baseline}"] == pytest.approx(
            report[baseline]["cer"] - report["image"]["cer"], abs=1e-4)
    assert r["tone"] in ("light", "dark")
    for key in ("by_font", "by_size", "by_theme", "by_tone"):
        assert sum(g["tasks"] for g in report[key].values()) == 1


def test_the_blank_picture_keeps_the_size_and_background_and_drops_the_code() -> None:
    shot = heldout_tasks(1)[0].shot
    blank = blank_like(shot.image)
    assert blank.shape == shot.image.shape and blank.dtype == np.uint8
    assert (blank == shot.image[0, 0]).all()
    assert not np.array_equal(blank, shot.image)


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
    from engine.runtime import model_store
    from engine.train.tokenizer_choice import load_tokenizer
    from engine.train.vision import encode_vision

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
