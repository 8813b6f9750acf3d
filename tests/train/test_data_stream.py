"""Streams: determinism, sharding, resuming; token packing; the multi-process loader."""

from __future__ import annotations

import itertools
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from engine.data.corpus import build_index, folder_source
from engine.data.edit_makers import EditExample, to_prompt
from engine.data.fim import FimExample, to_fim_prompt
from engine.data.packing import encode_edit, encode_fim
from engine.data.pipeline import (
    PackedStream,
    ParallelLoader,
    Shard,
    batches,
    edit_stream,
    encoded,
    fim_stream,
    mixed_stream,
    mockup_stream,
    render_stream,
    text_stream,
)
from engine.data.preview import chatml
from engine.edit_format import chat_renderer

STDLIB = Path(sysconfig.get_paths()["stdlib"])


class ByteTokenizer:
    """UTF-8 bytes as token ids: a complete tokenizer, and one with no training to wait for;
    its chat template is ChatML's turns."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def apply_chat_template(self, messages: list[dict[str, str]],
                            add_generation_prompt: bool = True) -> str:
        return chatml(messages, add_generation_prompt)


FILES = ("json/decoder.py", "json/encoder.py", "json/scanner.py", "textwrap.py", "shlex.py",
         "colorsys.py", "bisect.py", "fnmatch.py", "glob.py", "heapq.py", "string.py",
         "calendar.py", "email/utils.py", "email/quoprimime.py")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("corpus")
    for name in FILES:
        (root / name.replace("/", "_")).write_text((STDLIB / name).read_text())
    return build_index([folder_source(root)], heldout_fraction=0.1)


def _key(example) -> tuple:
    if isinstance(example, EditExample):
        return (example.kind, example.path, example.instruction, example.region_after)
    return (example,)


def test_streams_are_deterministic_given_the_seed(index) -> None:
    a = [_key(e) for e in text_stream(index, seed=1, max_chars=None)]
    b = [_key(e) for e in text_stream(index, seed=1, max_chars=None)]
    c = [_key(e) for e in text_stream(index, seed=2, max_chars=None)]
    assert a == b and a != c and sorted(a) == sorted(c)  # same files, another order
    # Long files are cut into windows, chosen by the seed.
    windows = [e for e in text_stream(index, seed=1, max_chars=2000)]
    assert all(len(w) <= 2000 for w in windows) and windows[0] in a[0][0]
    assert len(a) == len(index.split("train"))


def test_two_epochs_reshuffle(index) -> None:
    both = [_key(e) for e in text_stream(index, seed=1, epochs=2, max_chars=None)]
    half = len(both) // 2
    assert sorted(both[:half]) == sorted(both[half:]) and both[:half] != both[half:]


def test_sharding_partitions_the_stream(index) -> None:
    whole = sorted(_key(e) for e in text_stream(index, seed=4, max_chars=None))
    parts = [
        [_key(e) for e in text_stream(index, seed=4, shard=Shard(rank, 3, worker, 2),
                                      max_chars=None)]
        for rank in range(3) for worker in range(2)
    ]
    assert sorted(itertools.chain(*parts)) == whole
    assert all(parts)
    with pytest.raises(ValueError, match="rank"):
        Shard(rank=3, world_size=3)


def test_resume_from_state_gives_the_same_continuation(index) -> None:
    reference = [_key(e) for e in edit_stream(index, seed=7, kinds=("fix_syntax", "fill_body"))]
    assert len(reference) > 12
    for stop in (1, 7, 12):
        stream = edit_stream(index, seed=7, kinds=("fix_syntax", "fill_body"))
        head = [_key(e) for e in itertools.islice(stream, stop)]
        state = stream.state_dict()
        resumed = edit_stream(index, seed=7, kinds=("fix_syntax", "fill_body"))
        resumed.load_state_dict(state)
        assert head + [_key(e) for e in resumed] == reference
    with pytest.raises(ValueError, match="seed"):
        resumed.load_state_dict({**state, "seed": 8})


def test_packing_fills_fixed_length_sequences_and_resumes(index) -> None:
    tok = ByteTokenizer()
    stream = encoded(edit_stream(index, seed=3, kinds=("fix_name",)), tok)
    all_tokens = [t for e in encoded(edit_stream(index, seed=3, kinds=("fix_name",)), tok)
                  for t in e.ids]
    packed = PackedStream(stream, seq_len=256)
    sequences = list(packed)
    assert all(len(ids) == len(mask) == 256 for ids, mask in sequences)
    flat = [t for ids, _ in sequences for t in ids]
    assert flat == all_tokens[: len(flat)] and len(all_tokens) - len(flat) < 256
    # The mask covers exactly the target: the rewritten region and the fence that closes it,
    # after the product's prompt in the tokenizer's chat template.
    example = next(iter(edit_stream(index, seed=3, kinds=("fix_name",))))
    enc = encode_edit(example, tok)
    prompt = to_prompt(example, chat_renderer(tok))
    assert bytes(enc.ids).decode() == prompt.prompt + prompt.target
    assert prompt.prompt.startswith("<|im_start|>user\n")
    assert prompt.prompt.endswith("<|im_start|>assistant\n```python\n")
    assert bytes(t for t, m in zip(enc.ids, enc.mask, strict=True) if m).decode() \
        == prompt.target == example.region_after + "```"
    assert 0 < sum(sum(m) for _, m in sequences) < len(flat)
    # Resume mid-way.
    first = PackedStream(encoded(edit_stream(index, seed=3, kinds=("fix_name",)), tok), 256)
    head = list(itertools.islice(first, 5))
    again = PackedStream(encoded(edit_stream(index, seed=3, kinds=("fix_name",)), tok), 256)
    again.load_state_dict(first.state_dict())
    assert head + list(again) == sequences
    ids_batch, mask_batch = next(batches(iter(sequences), 4))
    assert ids_batch.shape == (4, 256) and ids_batch.dtype == np.int64
    assert mask_batch.dtype == np.uint8


def test_loader_with_two_workers_matches_one_process(index) -> None:
    def stream():
        return encoded(edit_stream(index, seed=5, kinds=("rename_local", "reformat")),
                       ByteTokenizer())

    reference = [tuple(e.ids) for e in ParallelLoader(stream(), num_workers=0)]
    assert len(reference) > 12
    parallel = [tuple(e.ids) for e in ParallelLoader(stream(), num_workers=2, prefetch=4)]
    assert parallel == reference
    # Resumed part-way, the parallel loader continues exactly.
    loader = ParallelLoader(stream(), num_workers=2)
    head = list(itertools.islice(iter(loader), 9))
    resumed = ParallelLoader(stream(), num_workers=2)
    resumed.load_state_dict(loader.state_dict())
    assert [tuple(e.ids) for e in head] + [tuple(e.ids) for e in resumed] == reference


def test_loader_reports_worker_errors(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f(x):\n    return x + 1\n" * 3)
    index = build_index([folder_source(tmp_path)], heldout_fraction=0.0)
    stream = text_stream(index)
    (tmp_path / "a.py").unlink()  # the worker will fail to read it
    with pytest.raises(RuntimeError, match="data worker failed"):
        list(ParallelLoader(stream, num_workers=1))


def test_image_streams_shard_and_resume(index) -> None:
    shots = list(render_stream(index, seed=2))
    assert shots and all(s.image.shape[0] % 8 == 0 for s in shots)
    stream = mockup_stream(6, seed=1)
    head = list(itertools.islice(stream, 2))
    rest = mockup_stream(6, seed=1)
    rest.load_state_dict(stream.state_dict())
    assert [m.source for m in head + list(rest)] == [m.source for m in mockup_stream(6, seed=1)]


def test_fim_examples_cut_the_file_and_train_on_the_middle(index) -> None:
    tok = ByteTokenizer()
    examples = list(fim_stream(index, seed=2, max_chars=None))
    assert len(examples) >= len(index.split("train")) - 1
    by_path = {e.relpath: e.read() for e in index.split("train")}
    for example in examples:
        assert example.text == by_path[example.path] and example.middle.strip()
        enc = encode_fim(example, tok, eos_id=0)
        prompt = to_fim_prompt(example)
        assert prompt.prompt.startswith("<fim_prefix>") and prompt.prompt.endswith("<fim_middle>")
        assert bytes(t for t, m in zip(enc.ids, enc.mask, strict=True) if m) \
            == example.middle.encode() + b"\0"
    inline = [e for e in examples if e.prefix and not e.prefix.endswith("\n")]
    assert inline, "no cursor-inside-a-line cuts"


def test_mixed_stream_draws_tasks_by_weight(index) -> None:
    mixed = list(mixed_stream(index, {"text": 1.0, "fim": 1.0}, seed=3, epochs=4))
    kinds = {type(e).__name__ for e in mixed}
    assert kinds == {"str", "FimExample"}
    fims = sum(isinstance(e, FimExample) for e in mixed)
    assert 0.25 < fims / len(mixed) < 0.75
    only_edits = list(mixed_stream(index, {"edit": 1.0, "text": 0.0}, seed=3))
    assert only_edits and all(isinstance(e, EditExample) for e in only_edits)
    with pytest.raises(ValueError, match="weights"):
        mixed_stream(index, {"poetry": 1.0})


def test_training_checkpoint_resumes_the_batches(index) -> None:
    """The trainer's path: a 2-worker loader, packing, batches; a checkpoint after two batches
    resumes to exactly the batches a run without interruption gets."""

    def pipeline():
        mix = mixed_stream(index, {"text": 1.0, "edit": 1.0, "fim": 1.0}, seed=9)
        loader = ParallelLoader(encoded(mix, ByteTokenizer(), eos_id=0), num_workers=2)
        return PackedStream(loader, seq_len=512)

    packed = pipeline()
    run = batches(packed, batch_size=2)
    head = [next(run) for _ in range(2)]
    checkpoint = packed.state_dict()
    rest = [next(run) for _ in range(3)]
    run.close()
    resumed = pipeline()
    resumed.load_state_dict(checkpoint)
    again = list(itertools.islice(batches(resumed, batch_size=2), 3))
    for (ids, mask), (ids2, mask2) in zip(rest, again, strict=True):
        assert np.array_equal(ids, ids2) and np.array_equal(mask, mask2)
    assert not np.array_equal(head[0][0], rest[0][0])


def test_pictures_and_text_do_not_mix_in_packing(index) -> None:
    shots = encoded(render_stream(index, seed=1), ByteTokenizer())
    with pytest.raises(TypeError, match="vision_batches"):
        next(iter(PackedStream(shots, seq_len=64)))
    with pytest.raises(ValueError, match="weights"):
        mixed_stream(index, {"text": 1.0, "render": 1.0})
