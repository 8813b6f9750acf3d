"""Work of one stage-1 training step on screenshots: `python bench/bench_vision_train_flops.py
[--config cromwell-smol] [--batch-size 2] [--seq-len 160] [--max-side 256] [--steps 4]`.

Counts the floating-point operations of forward + backward (`torch.utils.flop_counter`) of the
stage-1 objective on batches of the held-out screenshots of `cromwell eval screenshot`, which
are drawn like the training ones; with a measured step time this turns a training budget in
pictures into FLOP and accelerator hours (docs/BENCHMARKS.md). The model's weights do not
change the count, so it is built from the config, untrained. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.config import load_config
from engine.data.vision import encode_vision, vision_batches
from engine.eval.screenshot import heldout_tasks
from engine.model.vljepa import VLJEPA
from engine.train.curriculum import apply_stage, get_stage, loss_weights
from engine.train.objective import batch_losses
from engine.train.sources import scored_targets
from engine.train.tokenizer_choice import load_tokenizer, resolve_tokenizer_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="cromwell-smol")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=160)
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config).model
    spec = resolve_tokenizer_spec("auto", cfg)
    if spec is None:
        raise SystemExit(f"{args.config}: no tokenizer fits its vocabulary")
    tok, _ = load_tokenizer(spec, cfg.language.vocab_size)
    model = VLJEPA(cfg)
    stage = get_stage(1)
    apply_stage(model, stage)
    jw, lw = loss_weights(stage, cfg.loss.jepa_weight, cfg.loss.lm_weight)
    shots = [encode_vision(t.shot, tok, tok.eos_id)
             for t in heldout_tasks(args.batch_size * args.steps, max_side=args.max_side)]
    pad = tok.pad_id if tok.pad_id is not None else tok.eos_id
    rows = []
    for b in vision_batches(shots, args.batch_size, args.seq_len, pad):
        tokens = torch.from_numpy(b["ids"])  # (B, T)
        scored = torch.from_numpy(b["mask"].astype(bool))
        batch = {"tokens": tokens, "prompt_len": scored.float().argmax(dim=1),
                 "image": torch.from_numpy(b["pixels"]).permute(0, 3, 1, 2).float() / 255,
                 "targets": scored_targets(tokens, scored)}
        t0 = time.perf_counter()
        with FlopCounterMode(display=False) as counter:
            batch_losses(model, batch, jw, lw).total.backward()
        model.zero_grad(set_to_none=True)
        rows.append({"pixels": list(b["pixels"].shape[1:3]), "flops": counter.get_total_flops(),
                     "seconds": round(time.perf_counter() - t0, 2)})
    mean = sum(r["flops"] for r in rows) / len(rows)
    print(json.dumps({"config": args.config, "batch_size": args.batch_size,
                      "seq_len": args.seq_len, "max_side": args.max_side, "steps": rows,
                      "tflop_per_step": round(mean / 1e12, 3),
                      "tflop_per_picture": round(mean / 1e12 / args.batch_size, 3)}))


if __name__ == "__main__":
    main()
