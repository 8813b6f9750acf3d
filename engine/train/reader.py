"""`cromwell train reader`: the code reader (engine/model/reader.py) trained with CTC on line
strips cut from rendered screenshots (engine/data/reader_lines.py), on the CPU.

    cromwell train reader --out runs/reader --steps 6000        # a new run, or ...
    cromwell train reader --out runs/reader --resume             # ... where it stopped
    cromwell train reader --out runs/reader --ship engine/assets/reader.npz   # what ships

Every `--checkpoint-every` steps the run folder gets checkpoint.pt (weights, optimiser, step,
the line stream's position and its pending lines; written then renamed, so a killed run loses at
most those steps) and reader.npz (the weights in float16: what ships, engine/assets). A resumed
run continues with the same stream. metrics.jsonl has a line a step; loss.png is redrawn at each
checkpoint; every `--eval-every` steps the greedy character error rate on a fixed set of
held-out lines (held-out files, fonts and styles) is logged too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.reader_lines import LineSample, LineStream, training_files
from engine.machine import cpu_name
from engine.model.reader import LineReader, ReaderConfig
from engine.reader.charset import encode
from engine.runtime.reader_file import ReaderFile, read_any, write_npz

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SETTINGS = "settings.json"
WEIGHTS = "reader.npz"


@dataclass
class ReaderSettings:
    out: str = "runs/reader"
    steps: int = 6000
    batch: int = 32
    lr: float = 1.5e-3
    min_lr: float = 5e-5
    warmup: int = 200
    weight_decay: float = 0.01
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 250
    eval_lines: int = 200
    threads: int = 2
    resume: bool = False
    init: str = ""
    ship: str = ""


HELP = {
    "out": "the run folder: checkpoint, metrics.jsonl, loss.png, reader.npz",
    "steps": "train to this step (a resumed run may raise it)",
    "batch": "text lines a step",
    "lr": "peak learning rate (AdamW, cosine to --min-lr after --warmup steps)",
    "min_lr": "learning rate at the last step",
    "warmup": "steps of linear warm-up",
    "weight_decay": "AdamW weight decay",
    "seed": "seed of the weights and of the rendered pictures",
    "checkpoint_every": "steps between checkpoints (and reader.npz)",
    "eval_every": "steps between held-out CER evaluations",
    "eval_lines": "held-out lines in each evaluation (0: none)",
    "threads": "torch threads",
    "resume": "continue the run in --out where it stopped, with its own settings",
    "init": "start from these weights (a reader.npz or a GGUF that carries one, e.g. the "
            "shipped engine/assets/reader.npz) instead of random ones; give a new --seed so "
            "the pictures are new too",
    "ship": "copy the run's reader.npz to this path with its training record, and stop",
}


def initial_model(init: str) -> LineReader:
    """A fresh reader, or one holding the weights of `init` (float16 as stored)."""
    if not init:
        return LineReader(ReaderConfig())
    stored = read_any(init)
    model = LineReader(ReaderConfig.from_dict(stored.config))
    try:
        model.load_state_dict({k: torch.from_numpy(v.astype(np.float32))
                               for k, v in stored.arrays.items()})
    except RuntimeError as err:
        raise ValueError(f"{init}: these weights do not fit the reader: {err}") from None
    return model


def lr_at(step: int, s: ReaderSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    t = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * t))


def collate(lines: list[LineSample]) -> dict[str, torch.Tensor]:
    """Strips padded (blank ink) to the widest, and the CTC targets concatenated."""
    widths = [s.strip.shape[1] for s in lines]
    strips = np.zeros((len(lines), 1, lines[0].strip.shape[0], max(widths)), np.float32)
    for i, s in enumerate(lines):
        strips[i, 0, :, : s.strip.shape[1]] = s.strip
    targets = [encode(s.text) for s in lines]
    return {
        "strips": torch.from_numpy(strips),
        "widths": torch.tensor(widths),
        "targets": torch.tensor([c for t in targets for c in t], dtype=torch.long),
        "target_lengths": torch.tensor([len(t) for t in targets]),
    }


def ctc_loss(model: LineReader, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(batch["strips"], batch["widths"])  # (B, T, C)
    log_probs = F.log_softmax(logits.float(), -1).transpose(0, 1)  # (T, B, C)
    frames = batch["widths"] // 4
    return F.ctc_loss(log_probs, batch["targets"], frames, batch["target_lengths"], blank=0,
                      reduction="mean", zero_infinity=True)


def heldout_lines(count: int, seed: int = 0) -> list[LineSample]:
    """A fixed set of lines from held-out files in held-out fonts and styles."""
    from engine.data.corpus import heldout_stdlib_files
    from engine.data.split import HELDOUT

    stream = LineStream(heldout_stdlib_files(), seed=10_000 + seed, split=HELDOUT)
    out: list[LineSample] = []
    for line in stream.lines():
        out.append(line)
        if len(out) == count:
            return out
    return out


def greedy_cer(model: LineReader, lines: list[LineSample]) -> float:
    from engine.eval.screenshot import levenshtein
    from engine.reader.ctc import greedy

    errors = chars = 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(lines), 32):
            chunk = lines[i:i + 32]
            batch = collate(chunk)
            logits = model(batch["strips"], batch["widths"]).numpy()
            for row, s, w in zip(logits, chunk, batch["widths"].tolist(), strict=True):
                text = greedy(row[: w // 4]).text
                errors += levenshtein(text, s.text)
                chars += max(1, len(s.text))
    model.train()
    return errors / max(1, chars)


def save_weights(model: LineReader, path: Path, meta: dict[str, Any]) -> None:
    """The weights as float16 arrays plus the config and training record: the shipped form."""
    arrays = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    write_npz(ReaderFile(model.cfg.to_dict(), meta, arrays, str(path)), path)


def save_checkpoint(run: Path, model: LineReader, opt: torch.optim.Optimizer, step: int,
                    stream: LineStream) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "config": model.cfg.to_dict(),
        "stream": {"next_picture": stream.next_picture, "dropped": stream.dropped,
                   "drawn": stream.drawn,
                   "pending": [(s.strip, s.text) for s in stream.pending]},
        "torch_rng": torch.get_rng_state(),
    }
    tmp = run / (CHECKPOINT + ".partial")
    torch.save(state, tmp)
    tmp.replace(run / CHECKPOINT)


def load_checkpoint(run: Path, opt_for: Any, stream: LineStream
                    ) -> tuple[LineReader, torch.optim.Optimizer, int]:
    state = torch.load(run / CHECKPOINT, weights_only=False)
    model = LineReader(ReaderConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    opt = opt_for(model)
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    st = state["stream"]
    stream.next_picture, stream.dropped, stream.drawn = (st["next_picture"], st["dropped"],
                                                         st["drawn"])
    stream.pending = [LineSample(a.astype(np.float32), t) for a, t in st["pending"]]
    return model, opt, int(state["step"])


def run(s: ReaderSettings, files: list[tuple[str, str]] | None = None,
        stop_after: int | None = None, eval_set: list[LineSample] | None = None
        ) -> dict[str, Any]:
    """Train to `s.steps` (or `stop_after` more steps); `files`/`eval_set` replace the corpus
    and the held-out lines (tests)."""
    from tqdm import tqdm

    from engine.train.plot import plot_run

    torch.set_num_threads(s.threads)
    out = Path(s.out)
    if out.joinpath(CHECKPOINT).exists() and not s.resume:
        raise ValueError(f"{out} already holds a run: pass --resume to continue it, or "
                         "choose another --out")
    if s.resume and not out.joinpath(CHECKPOINT).exists():
        raise ValueError(f"{out} holds no checkpoint to resume")
    out.mkdir(parents=True, exist_ok=True)
    if not s.resume:
        out.joinpath(SETTINGS).write_text(json.dumps(asdict(s), indent=1))
    stream = LineStream(files if files is not None else training_files(), seed=s.seed)

    def optimizer(model: LineReader) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)

    if s.resume:
        model, opt, step = load_checkpoint(out, optimizer, stream)
    else:
        torch.manual_seed(s.seed)
        model = initial_model(s.init)
        opt, step = optimizer(model), 0
    if eval_set is None:
        eval_set = heldout_lines(s.eval_lines) if s.eval_lines else []
    meta = {"seed": s.seed, "cpu": cpu_name(),
            "threads": s.threads, "command": "cromwell train reader " + " ".join(sys.argv[3:])}
    if s.init:  # the run it continues, as that run recorded itself
        meta["init"] = {"path": s.init, **read_any(s.init).meta}
    last = s.steps if stop_after is None else min(s.steps, step + stop_after)
    bar = tqdm(total=s.steps, initial=step, desc="reader", file=sys.stderr, dynamic_ncols=True)
    losses: list[float] = []
    seconds_total = 0.0
    with out.joinpath(METRICS).open("a") as log:
        while step < last:
            t0 = time.perf_counter()
            lines = stream.batch(s.batch)
            batch = collate(lines)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, s)
            opt.zero_grad(set_to_none=True)
            loss = ctc_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            seconds = time.perf_counter() - t0
            seconds_total += seconds
            step += 1
            value = float(loss.detach())
            losses.append(value)
            record: dict[str, Any] = {
                "step": step, "loss": round(value, 5), "lines": len(lines),
                "width": int(batch["strips"].shape[-1]), "seconds": round(seconds, 3),
                "lr": round(lr_at(step - 1, s), 7), "pictures": stream.drawn,
                "dropped": stream.dropped,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if eval_set and (step % s.eval_every == 0 or step == last):
                record["heldout_cer"] = round(greedy_cer(model, eval_set), 5)
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", lines_s=f"{len(lines) / seconds:.0f}",
                            cer=record.get("heldout_cer", ""))
            if step % s.checkpoint_every == 0 or step == last:
                save_checkpoint(out, model, opt, step, stream)
                save_weights(model, out / WEIGHTS, {**meta, "step": step})
                # The plot is a convenience: training goes on without it.
                with contextlib.suppress(OSError, ValueError):
                    plot_run(out / METRICS, out / "loss.png")
    bar.close()
    return {"out": str(out), "step": step, "losses": losses, "seconds": seconds_total,
            "pictures": stream.drawn, "dropped": stream.dropped}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cromwell train reader",
        description="Train the screenshot code reader (CTC line reader) on rendered code; "
        "--resume continues a run where it stopped.")
    for name, default in asdict(ReaderSettings()).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=HELP[name])
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                metavar=name.upper(), help=HELP[name])
    return parser


def main(argv: list[str]) -> int:
    settings = ReaderSettings(**vars(build_parser().parse_args(argv)))
    if settings.ship:
        from engine.train.reader_ship import ship

        try:
            record = ship(Path(settings.out), Path(settings.ship))
        except (OSError, ValueError) as err:
            print(f"cromwell train reader: error: cannot ship {settings.out}: {err}",
                  file=sys.stderr)
            return 2
        print(json.dumps(record))
        return 0
    if settings.resume and Path(settings.out, SETTINGS).exists():
        kept = json.loads(Path(settings.out, SETTINGS).read_text())
        kept.update(resume=True, steps=settings.steps, threads=settings.threads)
        settings = ReaderSettings(**kept)
    try:
        summary = run(settings)
    except ValueError as err:
        print(f"cromwell train reader: error: {err}", file=sys.stderr)
        return 2
    summary.pop("losses")
    print(json.dumps(summary))
    return 0
