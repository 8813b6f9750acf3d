"""The batches a training run reads: code from the data pipeline (engine.train.data), or the
synthetic smoke batches when the model has no tokenizer (cromwell-tiny).

Code batches pack text, fill-in-the-middle and edit examples (the stage's mix, see
curriculum.py) into rows of exactly `seq_len` tokens; a token's target is the next token
where the pipeline's mask scores it (edit and FIM prompts are context, not targets). The
position is the packed stream's state, so a resumed run reads on where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig
from engine.model.losses import IGNORE_INDEX
from engine.train.curriculum import Stage
from engine.train.distributed import DistInfo

DATA_KINDS = ("auto", "synthetic", "code")


class CodeBatches:
    """{tokens, targets} batches from a PackedStream of (ids, mask) rows."""

    def __init__(self, packed: Any, batch_size: int) -> None:
        self.packed = packed
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        from engine.train.packing import batches

        for ids, mask in batches(self.packed, self.batch_size):
            tokens = torch.from_numpy(ids)  # (B, T)
            scored = torch.from_numpy(mask[:, 1:].astype(bool))  # (B, T-1)
            targets = torch.full_like(tokens, IGNORE_INDEX)
            targets[:, :-1] = torch.where(scored, tokens[:, 1:], IGNORE_INDEX)
            yield {"tokens": tokens, "targets": targets}

    # `batches` holds no rows between yields, so the packed stream's state is the position.
    def state_dict(self) -> dict[str, Any]:
        return self.packed.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.packed.load_state_dict(state)


def code_batches(stage: Stage, cfg: ModelConfig, tokenizer_spec: str, folders: list[Path],
                 stdlib: bool, batch_size: int, seq_len: int, seed: int, info: DistInfo,
                 workers: int) -> CodeBatches:
    from engine.train.data import (
        PackedStream,
        ParallelLoader,
        Shard,
        code_corpus,
        encoded,
        mixed_stream,
    )
    from engine.train.tokenizer_choice import load_tokenizer

    tok, _ = load_tokenizer(tokenizer_spec, cfg.language.vocab_size)
    index = code_corpus(folders=folders, stdlib=stdlib)
    shard = Shard(info.rank, info.world_size)
    stream = mixed_stream(index, dict(stage.data_mix), seed=seed, shard=shard, epochs=None)
    loader = ParallelLoader(encoded(stream, tok, tok.eos_id), num_workers=workers)
    return CodeBatches(PackedStream(loader, seq_len), batch_size)


def choose_data(kind: str, tokenizer_spec: str | None) -> str:
    if kind not in DATA_KINDS:
        raise ValueError(f"data must be one of {', '.join(DATA_KINDS)}, got {kind!r}")
    if kind == "auto":
        return "code" if tokenizer_spec is not None else "synthetic"
    if kind == "code" and tokenizer_spec is None:
        raise ValueError("code data needs a tokenizer that fits the model's vocabulary "
                         "(--tokenizer cromwell-bpe or a GGUF path)")
    return kind


def synthetic_batches(cfg: ModelConfig, batch_size: int, seq_len: int, seed: int,
                      info: DistInfo, image_size: int) -> Iterable[Any]:
    from engine.train.smoke_batches import SyntheticBatches

    return SyntheticBatches(cfg.language.vocab_size, batch_size, seq_len, seed, info.rank,
                            image_size)
