"""The batches a training run reads: code from the data pipeline (engine.data.pipeline), or the
synthetic smoke batches when the model has no tokenizer (cromwell-tiny).

Stages that train the vision path interleave batches of rendered code screenshots (image,
prompt, the code as target) with the text batches (curriculum.py, `vision_every`).

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
        from engine.data.packing import batches

        for ids, mask in batches(self.packed, self.batch_size):
            tokens = torch.from_numpy(ids)  # (B, T)
            scored = torch.from_numpy(mask.astype(bool))  # (B, T)
            yield {"tokens": tokens, "targets": scored_targets(tokens, scored)}

    # `batches` holds no rows between yields, so the packed stream's state is the position.
    def state_dict(self) -> dict[str, Any]:
        return self.packed.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.packed.load_state_dict(state)


def scored_targets(tokens: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Next-token targets where the pipeline's mask scores the next token, else ignored."""
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets[:, :-1] = torch.where(scored[:, 1:], tokens[:, 1:], IGNORE_INDEX)
    return targets


class VisionBatches:
    """{tokens, image, prompt_len, targets} batches of screenshots and their code: the prompt
    (image marker and instruction) is what the vision stream may read, the code the target."""

    def __init__(self, loader: Any, batch_size: int, seq_len: int, pad_id: int) -> None:
        self.loader, self.batch_size, self.seq_len, self.pad_id = (loader, batch_size,
                                                                     seq_len, pad_id)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        from engine.data.vision import vision_batches

        for b in vision_batches(self.loader, self.batch_size, self.seq_len, self.pad_id):
            tokens = torch.from_numpy(b["ids"])  # (B, T)
            scored = torch.from_numpy(b["mask"].astype(bool))  # (B, T)
            first = scored.float().argmax(dim=1)  # the first scored token ends the prompt
            prompt_len = torch.where(scored.any(dim=1), first, tokens.shape[1])
            image = torch.from_numpy(b["pixels"]).permute(0, 3, 1, 2).float().div_(255.0)
            yield {"tokens": tokens, "image": image, "prompt_len": prompt_len,
                   "targets": scored_targets(tokens, scored)}

    # vision_batches holds no examples between yields: the loader's state is the position.
    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


class InterleavedBatches:
    """Every `every`-th batch from `vision`, the others from `text`; resumable."""

    def __init__(self, text: Any, vision: Any, every: int) -> None:
        self.text, self.vision, self.every = text, vision, every
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        text, vision = iter(self.text), iter(self.vision)
        while True:
            n = self.count
            self.count += 1
            yield next(vision if n % self.every == self.every - 1 else text)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "text": self.text.state_dict(),
                "vision": self.vision.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.text.load_state_dict(state["text"])
        self.vision.load_state_dict(state["vision"])


def code_batches(stage: Stage, cfg: ModelConfig, tokenizer_spec: str, folders: list[Path],
                 stdlib: bool, batch_size: int, seq_len: int, seed: int, info: DistInfo,
                 workers: int, max_image_side: int) -> Any:
    """The stage's code mix, packed; with every `stage.vision_every`-th batch a batch of
    code screenshots (at most `max_image_side` pixels a side) when the stage has one (every
    batch when it is 1: then no text stream is built at all)."""
    from engine.data.pipeline import (
        PackedStream,
        ParallelLoader,
        Shard,
        code_corpus,
        encoded,
        mixed_stream,
        render_stream,
    )
    from engine.train.tokenizer_choice import load_tokenizer

    tok, _ = load_tokenizer(tokenizer_spec, cfg.language.vocab_size)
    index = code_corpus(folders=folders, stdlib=stdlib, workers=workers)
    shard = Shard(info.rank, info.world_size)
    if stage.vision_every != 1:
        stream = mixed_stream(index, dict(stage.data_mix), seed=seed, shard=shard, epochs=None)
        loader = ParallelLoader(encoded(stream, tok, tok.eos_id), num_workers=workers)
        text = CodeBatches(PackedStream(loader, seq_len), batch_size)
        if not stage.vision_every:
            return text
    shots = render_stream(index, seed=seed, shard=shard, epochs=None,
                          max_side=max_image_side)
    pad = tok.pad_id if tok.pad_id is not None else (tok.eos_id or 0)
    vision = VisionBatches(ParallelLoader(encoded(shots, tok, tok.eos_id), num_workers=workers),
                           batch_size, seq_len, pad)
    if stage.vision_every == 1:
        return vision
    return InterleavedBatches(text, vision, stage.vision_every)


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
