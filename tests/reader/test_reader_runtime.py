"""The torch-free reader (engine/runtime/reader.py, native kernels) against the torch reader on
the same weights: the same scores for a batch of strips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.model.reader import LineReader, ReaderConfig
from engine.runtime.reader import Reader, load_reader
from engine.train.reader import save_weights


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[LineReader, Reader, Path]:
    torch.manual_seed(3)
    model = LineReader(ReaderConfig())
    with torch.no_grad():  # non-trivial norms and biases, so a mix-up of them shows
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.uniform_(0.5, 1.5)
            elif "rel_bias" in name or name.endswith("bias"):
                p.normal_(0, 0.3)
    path = tmp_path_factory.mktemp("reader") / "reader.npz"
    save_weights(model, path, {"test": True})
    # The shipped weights are float16: the torch side gets the same rounded values.
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    model.eval()
    return model, Reader(load_reader(path)), path


def test_same_scores_on_a_batch(pair: tuple[LineReader, Reader, Path]) -> None:
    model, reader, _ = pair
    rng = np.random.default_rng(0)
    strips = (rng.random((4, 1, 32, 160)) ** 3).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(strips)).numpy()
    got = reader([s[0] for s in strips])
    assert len(got) == 4
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape == (40, model.cfg.classes)
        np.testing.assert_allclose(g, w, atol=2e-4, rtol=1e-4)
        assert (g.argmax(-1) == w.argmax(-1)).all()


def test_padded_batch_reads_each_strip_as_alone(pair: tuple[LineReader, Reader, Path]) -> None:
    """Strips of different widths in one padded torch batch (masked keys) score their own
    columns as the runtime scores each strip alone, but for the last columns, where the torch
    convolutions see the padding's blank ink rather than the picture's edge."""
    model, reader, _ = pair
    rng = np.random.default_rng(1)
    widths = [96, 160, 64]
    strips = [(rng.random((32, w)) ** 3).astype(np.float32) for w in widths]
    batch = np.zeros((3, 1, 32, 160), np.float32)
    for i, s in enumerate(strips):
        batch[i, 0, :, : s.shape[1]] = s
    with torch.no_grad():
        want = model(torch.from_numpy(batch), torch.tensor(widths)).numpy()
    got = reader(strips)
    for g, w, width in zip(got, want, widths, strict=True):
        t = width // 4
        assert g.shape[0] == t
        # The 3 depthwise 3x3 layers reach 3 columns in from the edge; attention then spreads
        # a little of that difference everywhere, so the classes read away from the edge are
        # what must agree.
        assert (g[: t - 4].argmax(-1) == w[: t - 4].argmax(-1)).mean() > 0.9


def test_bad_strips_are_refused(pair: tuple[LineReader, Reader, Path]) -> None:
    _, reader, _ = pair
    with pytest.raises(ValueError, match="strip"):
        reader([np.zeros((31, 64), np.float32)])
    with pytest.raises(ValueError, match="multiple of 4"):
        reader([np.zeros((32, 66), np.float32)])
    assert reader([]) == []


def test_not_a_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a reader weights file"):
        load_reader(bad)
    np.savez(tmp_path / "y.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a reader weights file"):
        load_reader(tmp_path / "y.npz")


def test_weights_are_small(pair: tuple[LineReader, Reader, Path]) -> None:
    _, reader, path = pair
    assert path.stat().st_size < 20 * 1024 * 1024  # float16 on disk
    assert reader.w.nbytes < 20 * 1024 * 1024  # float32 in memory


def test_a_gguf_carries_the_same_reader(pair: tuple[LineReader, Reader, Path], tmp_path: Path
                                        ) -> None:
    """The reader as `cromwell models fetch` builds it into a model file (F16 tensors
    `reader.*`, JSON config) reads back to the same weights and the same scores."""
    import gguf

    from engine.runtime.reader_file import file_sha256, gguf_has_reader, gguf_parts, gguf_reader_sha

    _, reader, path = pair
    metadata, tensors = gguf_parts(path)
    out = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(out), "cromwell")
    for key, value in metadata.items():
        writer.add_string(key, value)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    assert gguf_has_reader(out) and gguf_reader_sha(out) == file_sha256(path)
    from_gguf = Reader(load_reader(out))
    assert from_gguf.w.meta == {"test": True} and from_gguf.w.config == reader.w.config
    strips = [(np.random.default_rng(1).random((32, 96)) ** 3).astype(np.float32)]
    np.testing.assert_array_equal(from_gguf(strips)[0], reader(strips)[0])


def test_a_model_file_without_a_reader(tmp_path: Path) -> None:
    import gguf

    from engine.runtime.reader_file import gguf_has_reader

    out = tmp_path / "plain.gguf"
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert not gguf_has_reader(out) and not gguf_has_reader(tmp_path / "missing.gguf")
    with pytest.raises(ValueError, match="carries no screenshot reader"):
        load_reader(out)
