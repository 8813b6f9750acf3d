"""cromwell-smol, the default model: built from SmolLM2 with the fusion gates closed, so its
text answers are SmolLM2's token for token, and an image (encoded and fused) changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import engine.runtime
from cromwell_cli.main import main
from engine.runtime import model_store
from engine.runtime.model import Model
from engine.train.export import ensure_cromwell_smol

PROMPTS = ["def fibonacci(n):", "The capital of France is"]


@pytest.fixture(scope="module")
def smol() -> Model:
    ensure_cromwell_smol()  # what `make setup` did; builds it if this cache lacks it
    return engine.runtime.load(None)


@pytest.fixture(scope="module")
def smollm2(smollm2_path: Path) -> Model:
    return engine.runtime.load(str(smollm2_path))


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "shot.png"
    pixels = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)  # 60x90: padded to 64x96 on load
    return path


def test_the_default_model_is_cromwell_smol(smol: Model) -> None:
    assert smol.path == model_store.cromwell_smol_path()
    assert smol.architecture == "cromwell"
    assert smol.takes_images
    assert set(smol.trained_parts) == {"language", "ar_head", "lm_head"}


def test_a_second_build_is_a_no_op(smol: Model) -> None:
    before = smol.path.stat().st_mtime_ns
    assert ensure_cromwell_smol() == smol.path
    assert smol.path.stat().st_mtime_ns == before


@pytest.mark.parametrize("prompt", PROMPTS)
def test_text_answers_are_smollm2s(smol: Model, smollm2: Model, prompt: str) -> None:
    ids = smollm2.tokenizer.encode(prompt)
    assert smol.tokenizer.encode(prompt) == ids
    want = smollm2.generate_tokens(ids, max_tokens=16)
    assert smol.generate_tokens(ids, max_tokens=16) == want
    # Closed gates: the image goes through the encoder and fusion and changes nothing.
    assert (
        smol.generate_tokens(ids, max_tokens=16, image=np.full((64, 64, 3), 0.5, np.float32))
        == want
    )


def test_an_image_file_streams_through_the_text_api(smol: Model, png: Path) -> None:
    plain = smol.generate("def add(a, b):", max_tokens=8)
    assert smol.generate("def add(a, b):", max_tokens=8, image=str(png)) == plain
    tokens = smol.encode_image(png)
    assert tokens.shape == (8 * 12, smol.config.vision.vision_hidden_dim)
    assert np.isfinite(tokens).all()


def test_a_pil_image_encodes_as_its_file_does(smol: Model, png: Path) -> None:
    from_file = smol.encode_image(png)
    with Image.open(png) as im:
        rgba = im.convert("RGBA")  # any mode: converted to RGB as a file is
    np.testing.assert_array_equal(smol.encode_image(rgba), from_file)


def test_an_image_of_another_type_is_a_clear_error(smol: Model) -> None:
    with pytest.raises(TypeError, match="expected a file path, a PIL image or an"):
        smol.encode_image(b"\x89PNG")  # type: ignore[arg-type]


def test_generate_command_takes_an_image(smol: Model, png: Path) -> None:
    args = [
        "generate",
        "--model",
        str(smol.path),
        "--prompt",
        "Name the capital city of France.",
        "--max-tokens",
        "12",
        "--threads",
        "1",
    ]
    plain = CliRunner().invoke(main, args)
    with_image = CliRunner().invoke(main, [*args, "--image", str(png)])
    assert with_image.exit_code == 0, with_image.output
    assert with_image.output == plain.output
    assert "Paris" in with_image.output


def test_a_file_that_is_not_an_image_is_a_clear_error(smol: Model, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(ValueError, match="notes.png: cannot read the image"):
        smol.generate("x", max_tokens=1, image=str(bad))


def test_before_the_build_the_default_says_to_build_it(
    smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache holding only SmolLM2 (text only) does not make it the default: the default is
    cromwell-smol whatever the cache, and its absence says how to build it."""
    monkeypatch.setenv("CROMWELL_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / smollm2_path.name).symlink_to(smollm2_path)
    with pytest.raises(model_store.DefaultModelMissing, match="run `cromwell models fetch`"):
        model_store.default_model_path()
    result = CliRunner().invoke(main, ["generate", "--prompt", "hi", "--max-tokens", "1"])
    assert result.exit_code == 1
    assert "cromwell-smol.gguf is not in" in result.output and "Traceback" not in result.output
