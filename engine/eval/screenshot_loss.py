"""Teacher-forced loss of a training checkpoint on the held-out screenshots of
`cromwell eval screenshot`: nats per target token with the picture, with a blank picture of the
same size and background, and with no picture.

Early in training this says more than the transcripts' character error rate, which stays at
its ceiling until greedy decoding gets whole runs of characters right: a vision path that has
begun to read lowers the loss with the picture below the loss with the blank picture (the
fusion path runs in both, so what it learnt about the form of an answer counts in both; only
the picture's content differs). Below the no-picture loss alone proves nothing: that gap
includes the form.

    python -m engine.eval.screenshot_loss --checkpoint RUN/stage1/step-00000180 [--limit 24]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.eval.screenshot import (
    DEFAULT_MAX_SIDE,
    DEFAULT_SEED,
    DEFAULT_TASKS,
    MODES,
    blank_like,
    heldout_tasks,
)
from engine.model.losses import IGNORE_INDEX
from engine.train.sources import scored_targets


def _image(pixels: np.ndarray | None) -> torch.Tensor | None:
    if pixels is None:
        return None
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def reading_losses(checkpoint: Path, limit: int = DEFAULT_TASKS, seed: int = DEFAULT_SEED,
                   max_side: int = DEFAULT_MAX_SIDE) -> dict[str, Any]:
    """Mean loss per target token, by mode (MODES), over the first `limit` held-out pictures,
    each encoded exactly as training encodes it (`vision.encode_vision`, eos-terminated)."""
    from engine.data.vision import encode_vision
    from engine.train.export import load_checkpoint_model
    from engine.train.tokenizer_choice import load_tokenizer

    model, trainer = load_checkpoint_model(checkpoint)
    model.eval()
    if not trainer.get("tokenizer"):
        raise ValueError(f"{checkpoint}: trained without a tokenizer (synthetic data)")
    tok, _ = load_tokenizer(trainer["tokenizer"], model.cfg.language.vocab_size)
    t0 = time.perf_counter()
    sums = dict.fromkeys(MODES, 0.0)
    count = 0
    for task in heldout_tasks(limit, seed, max_side):
        enc = encode_vision(task.shot, tok, tok.eos_id)
        ids = torch.tensor([enc.ids])  # (1, T)
        scored = torch.tensor([enc.mask], dtype=torch.bool)  # (1, T)
        targets = scored_targets(ids, scored)[0]  # (T,)
        prompt_len = torch.tensor([enc.mask.index(1)])
        pictures = {"image": task.shot.image, "blank_image": blank_like(task.shot.image),
                    "no_image": None}
        for mode in MODES:
            logits, _ = model(ids, image=_image(pictures[mode]), prompt_len=prompt_len)
            sums[mode] += float(F.cross_entropy(logits[0].float(), targets,
                                                ignore_index=IGNORE_INDEX, reduction="sum"))
        count += int((targets != IGNORE_INDEX).sum())
    losses = {mode: round(sums[mode] / count, 4) for mode in MODES}
    return {"checkpoint": str(checkpoint), "step": int(trainer["step"]),
            "trained_parts": trainer.get("trained_parts", []), "tasks": limit, "seed": seed,
            "max_side": max_side, "target_tokens": count, "loss_per_token": losses,
            "gain_over_blank_image": round(losses["blank_image"] - losses["image"], 4),
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.eval.screenshot_loss",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=DEFAULT_TASKS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        report = reading_losses(args.checkpoint, args.limit, args.seed, args.max_side)
    except (ValueError, RuntimeError) as err:
        print(f"screenshot_loss: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
