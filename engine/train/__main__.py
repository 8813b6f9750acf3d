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

from engine.train.loop import TrainSettings, train


def _option_type(hint: typing.Any) -> typing.Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cromwell train", description="Train one stage of the Cromwell VL-JEPA "
        "curriculum (1 JEPA pre-training, 2 LM fine-tuning, 3 joint, 4 instruction); a "
        "stage with a checkpoint in OUT_DIR/stageN resumes from it. `cromwell train plot "
        "OUT_DIR` draws the loss curves.")
    hints = typing.get_type_hints(TrainSettings)
    for f in dataclasses.fields(TrainSettings):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, type=_option_type(hint), default=f.default,
                                metavar=f.name.upper())
    return parser


def settings_from_args(argv: list[str]) -> TrainSettings:
    ns = build_parser().parse_args(argv)
    return TrainSettings(**vars(ns))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "finetune":
        from engine.train.finetune import main as finetune_main

        return finetune_main(argv[1:])
    if argv and argv[0] == "plot":
        from engine.train.plot import main as plot_main

        return plot_main(argv[1:])
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
