"""`python -m engine.train ...` and `torchrun --nproc-per-node N -m engine.train ...`.

Every field of `TrainSettings` is an option (`--batch-size 8`, `--grad-checkpointing`); `plot`
as the first argument draws the loss curves instead (see plot.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.train.loop import TrainSettings

# Each TrainSettings field's --help line (tests/doors/test_cli_help.py holds every field to one).
OPTION_HELP = {
    "config": "model config: a YAML path or a preset name (cromwell-tiny, cromwell-smol, "
              "cromwell-300m)",
    "stage": "curriculum stage: 1 JEPA pre-training, 2 LM fine-tuning, 3 joint, 4 instruction",
    "out_dir": "run folder; checkpoints go under OUT_DIR/stageN/",
    "steps": "optimiser steps of this stage (the LR and EMA schedules span them)",
    "until": "stop after this step, the schedules still spanning --steps",
    "batch_size": "rows per process per micro-step",
    "seq_len": "tokens per row",
    "grad_accum": "micro-steps per optimiser step",
    "lr": "peak learning rate",
    "min_lr_ratio": "the cosine decay ends at LR times this",
    "warmup_steps": "steps of linear learning-rate warm-up",
    "weight_decay": "AdamW weight decay",
    "grad_clip": "clip the gradient norm to this",
    "save_every": "write a checkpoint every this many steps",
    "keep_last": "checkpoints kept per stage",
    "seed": "seed of the model's initialisation and the data order",
    "device": "auto (cuda when available, else cpu), cpu or cuda",
    "precision": "auto (bf16 autocast on GPUs, fp32 on CPUs), fp32 or bf16",
    "parallel": "auto (FSDP above 100M parameters), none, ddp or fsdp",
    "grad_checkpointing": "recompute activations in the backward pass (less memory)",
    "init_from": "checkpoint to start from (default: the previous stage's last)",
    "init_gguf": "llama GGUF for the language path (cromwell-smol)",
    "data": "auto (code when a tokenizer fits the model), code or synthetic",
    "data_folders": "code data: comma-separated folders of code, beside the standard library",
    "data_stdlib": "code data: index the Python standard library",
    "data_workers": "code data: worker processes per rank (0: in-process)",
    "image_size": "synthetic batches: image side (0: text only)",
    "max_image_side": "code data: screenshots are rendered at most this many pixels a side",
    "vision_every": "code data: every n-th batch is screenshots (default: the stage's; 1: every "
                    "batch; 0: none)",
    "tokenizer": "cromwell-bpe, a GGUF path, or auto (chosen for the model)",
    "threads": "CPU threads per process (0: torch's default, every core)",
    "progress": "a progress bar on stderr",
}


def _option_type(hint: typing.Any) -> typing.Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def build_parser() -> argparse.ArgumentParser:
    # Here, not at the top: `plot` and `finetune` start without loading torch.
    from engine.train.loop import TrainSettings

    parser = argparse.ArgumentParser(
        prog="cromwell train", description="Train one stage of the Cromwell VL-JEPA "
        "curriculum (1 JEPA pre-training, 2 LM fine-tuning, 3 joint, 4 instruction); a "
        "stage with a checkpoint in OUT_DIR/stageN resumes from it.",
        epilog="commands: `cromwell train plot RUN` draws a run's loss curves as a PNG; "
        "`cromwell train finetune` fine-tunes cromwell-smol (LoRA) on FIM, edit, function and "
        "instruction rows; `cromwell train instruct-pool` makes the instruction rows' tasks; "
        "`cromwell train reader` trains the screenshot code reader. Each takes -h.")
    hints = typing.get_type_hints(TrainSettings)
    for f in dataclasses.fields(TrainSettings):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        text = OPTION_HELP.get(f.name, "")
        if f.default not in (None, "") and "default" not in text and "auto (" not in text:
            text += " (default: %(default)s)"
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=OPTION_HELP.get(f.name))
        else:
            parser.add_argument(flag, type=_option_type(hint), default=f.default,
                                metavar=f.name.upper(), help=text)
    return parser


def settings_from_args(argv: list[str]) -> TrainSettings:
    from engine.train.loop import TrainSettings

    ns = build_parser().parse_args(argv)
    return TrainSettings(**vars(ns))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "finetune":
        from engine.train.finetune import main as finetune_main

        return finetune_main(argv[1:])
    if argv and argv[0] == "instruct-pool":
        from engine.train.instruct_pool import main as pool_main

        return pool_main(argv[1:])
    if argv and argv[0] == "reader":
        from engine.train.reader import main as reader_main

        return reader_main(argv[1:])
    if argv and argv[0] == "plot":
        from engine.train.plot import main as plot_main

        return plot_main(argv[1:])
    from engine.train.loop import train

    settings = settings_from_args(argv)
    try:
        summary = train(settings)
    except ValueError as err:  # bad settings, config or checkpoint: a message, no traceback
        print(f"cromwell train: error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # one summary, not one per process
        print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, Path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
