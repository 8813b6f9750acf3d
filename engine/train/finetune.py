"""`cromwell train finetune`: LoRA fine-tuning of the default model's text path to fill in the
middle, edit and write functions, on the CPU.

    cromwell train finetune --out runs/fim --steps 400          # a new run, or ...
    cromwell train finetune --out runs/fim --resume              # ... where it stopped

The base weights are the model file's (cromwell-smol.gguf, dequantised) and stay frozen; LoRA
adapters sit on every block's attention and MLP projections, and the 4 FIM tokens' embedding
rows (new tokens: tied to the LM head) train as well. Data: engine/train/mixed_rows.py (FIM,
edit and function rows from the training split of the standard library, asked as the product
asks, packed rows, loss on the targets only; --mix sets the shares). bf16 autocast where the
CPU has AVX-512 BF16 or AMX.

Every `--checkpoint-every` steps the run folder gets checkpoint.pt (adapter, optimiser, step,
next example; written then renamed) and adapter.npz (what ships); metrics.jsonl has a line a
step (loss, each kind's loss in the batch, tokens/s, scored tokens). A resumed run reads
checkpoint.pt and continues with the same next batch and loss as if it had never stopped.

A resume may change `--steps` (the schedule's end), `--threads`, `--stop-after` and, when they
are given, the phase's data (PHASE_SETTINGS: `--mix`, `--fim-window`, `--rows`, `--row-len`): a
later phase of a run can draw its examples in other shares, or its FIM examples over the
editor's whole window (example `i` is a pure function of seed, i, mix and window, so the run
stays reproducible from its commands). Each invocation appends its step, schedule and data to
invocations.jsonl, the run's own record of how it was made.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SETTINGS = "settings.json"
INVOCATIONS = "invocations.jsonl"
# What a resume may change; the rest (data seed, adapter shape, learning rates) is the run's.
RESUME_MAY_CHANGE = ("steps", "threads", "stop_after")
# What a later phase of a run may set when its command gives it: the data it draws.
PHASE_SETTINGS = ("mix", "fim_window", "rows", "row_len", "instruct_pool")


@dataclass
class FinetuneSettings:
    out: str = "runs/fim"
    model: str | None = None  # the base GGUF (default: cromwell-smol in the model cache)
    steps: int = 400
    rows: int = 2
    row_len: int = 1024
    rank: int = 8
    alpha: float = 16.0
    lr: float = 1e-3
    rows_lr: float = 1e-3
    warmup: int = 20
    seed: int = 0
    checkpoint_every: int = 10
    threads: int = 2
    bf16: bool = True
    mix: str = "0.5,0.3,0.2"  # shares of fim, edit, complete (and instruct) rows: mixed_rows.py
    fim_window: str = "excerpt"  # or "file": the editor's window (engine/train/fim_rows.py)
    instruct_pool: str | None = None  # instruction tasks (engine/train/instruct_pool.py)
    init_adapter: str | None = None  # a new run's adapter starts from this adapter.npz
    stop_after: int = 0  # this invocation stops after so many steps (0: at `steps`)
    resume: bool = False


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def trainable(model: Any) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(model: Any, s: FinetuneSettings) -> torch.optim.Optimizer:
    lora = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    groups = [{"params": lora, "lr": s.lr}]
    if model.new_rows is not None:
        groups.append({"params": [model.new_rows], "lr": s.rows_lr})
    return torch.optim.AdamW(groups, weight_decay=0.0, betas=(0.9, 0.98))


def lr_factor(step: int, s: FinetuneSettings) -> float:
    """Linear warm-up, then cosine to a tenth at `steps`."""
    if step < s.warmup:
        return (step + 1) / s.warmup
    t = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))


def prepare_model(path: str | None, rank: int, alpha: float, seed: int) -> Any:
    from engine.train.fim_rows import FIM_TOKENS
    from engine.train.text_model import load_text_model

    model = load_text_model(path or str(default_base()))
    torch.manual_seed(seed)  # the adapters' initial A
    model.add_lora(rank, alpha)
    model.train_new_rows(base_vocab_first_fim(path))
    assert len(FIM_TOKENS) == model.embed.shape[0] - model.first_new
    return model


def default_base() -> Path:
    from engine.runtime import model_store

    return model_store.default_model_path()


def base_vocab_first_fim(path: str | None) -> int:
    """The id of <fim_prefix>: the first of the new rows (the FIM tokens end the vocabulary)."""
    tok = load_tokenizer(path)
    from engine.train.fim_rows import FIM_TOKENS

    ids = [tok.token_to_id(t) for t in FIM_TOKENS]
    if ids != list(range(ids[0], ids[0] + len(ids))) or ids[-1] != tok.vocab_size - 1:
        raise ValueError("the FIM tokens must be the vocabulary's last 4 ids")
    return ids[0]


def load_tokenizer(path: str | None) -> Any:
    import engine.runtime

    return engine.runtime.load(path or str(default_base())).tokenizer


def save_checkpoint(run: Path, model: Any, opt: torch.optim.Optimizer, step: int,
                    next_example: int) -> None:
    state = {
        "step": step,
        "next_example": next_example,
        "trainable": {n: p.detach().clone() for n, p in model.named_parameters()
                      if p.requires_grad},
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = run / (CHECKPOINT + ".partial")
    torch.save(state, tmp)
    tmp.replace(run / CHECKPOINT)


def load_checkpoint(run: Path, model: Any, opt: torch.optim.Optimizer) -> tuple[int, int]:
    state = torch.load(run / CHECKPOINT, weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, v in state["trainable"].items():
            params[n].copy_(v)
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), int(state["next_example"])


def train_step(model: Any, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               bf16: bool, kind_of: Callable[[int], str] | None = None
               ) -> tuple[float, int, dict[str, float]]:
    """One optimiser step: the mean loss over the scored tokens, their count, and (with
    `kind_of`, example index -> kind) the mean loss of each kind's tokens in the batch."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        losses, docs = model.token_losses(batch)
        loss = losses.mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable(model), 1.0)
    opt.step()
    by_kind: dict[str, float] = {}
    if kind_of is not None:
        detached = losses.detach()
        unique = torch.unique(docs).tolist()
        kinds = {d: kind_of(int(d)) for d in unique}
        for kind in sorted(set(kinds.values())):
            mine = torch.tensor([d for d in unique if kinds[d] == kind], dtype=docs.dtype)
            by_kind[kind] = round(float(detached[torch.isin(docs, mine)].mean()), 5)
    return float(loss.detach()), int(losses.numel()), by_kind


def load_instruct_pool(s: FinetuneSettings) -> list[Any]:
    """The instruction tasks the mix draws from: none without --instruct-pool (run refuses an
    instruct share without one)."""
    if not s.instruct_pool:
        return []
    from engine.train.instruct_pool import load_pool

    try:
        return load_pool(s.instruct_pool)
    except OSError as err:
        raise ValueError(f"--instruct-pool {s.instruct_pool}: {err.strerror}") from None


def start_from_adapter(model: Any, s: FinetuneSettings) -> None:
    """Put --init-adapter's values (LoRA pairs and FIM rows) into the fresh adapters: a new run
    that goes on from a shipped adapter. Its rank and scale must be the run's."""
    from engine.train.adapter import Adapter, load_into_text_model

    try:
        adapter = Adapter(s.init_adapter)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"--init-adapter {s.init_adapter} is not an adapter: {err}") from None
    rank, scale = int(adapter.meta["rank"]), float(adapter.meta["scale"])
    if rank != s.rank or not math.isclose(scale, s.alpha / s.rank):
        raise ValueError(f"--init-adapter {s.init_adapter} has rank {rank} and scale {scale}: "
                         f"give --rank {rank} --alpha {rank * scale:g}")
    missing = set(adapter.pairs) - set(model.adapters())
    if missing:
        raise ValueError(f"--init-adapter {s.init_adapter} adapts tensors the model has no "
                         f"adapter on: {sorted(missing)[:3]}")
    load_into_text_model(model, adapter)


def run(s: FinetuneSettings, rows_source: Any = None, model: Any = None) -> dict[str, Any]:
    """Train to `s.steps` (or `s.stop_after` more steps); `rows_source`/`model` replace the
    corpus and the model file (tests)."""
    from tqdm import tqdm

    from engine.runtime.reader_file import file_sha256
    from engine.train.adapter import ADAPTER_FILE, save_adapter
    from engine.train.fim_rows import check_window
    from engine.train.mixed_rows import KINDS, parse_mix

    # A bad --mix, --fim-window or --instruct-pool is refused before anything is written.
    mix = parse_mix(s.mix)
    check_window(s.fim_window, "--fim-window")
    if mix[KINDS.index("instruct")] > 0 and not s.instruct_pool:
        raise ValueError("--mix gives instruction rows a share: give --instruct-pool FILE "
                         "(made by `cromwell train instruct-pool`)")
    pool = load_instruct_pool(s)
    torch.set_num_threads(s.threads)
    out = Path(s.out)
    if out.joinpath(CHECKPOINT).exists() and not s.resume:
        raise ValueError(f"{out} already holds a run: pass --resume to continue it, or "
                         "choose another --out")
    if s.resume and not out.joinpath(CHECKPOINT).exists():
        raise ValueError(f"{out} holds no checkpoint to resume")
    out.mkdir(parents=True, exist_ok=True)
    # settings.json holds the latest phase's data, so a resume after a kill draws as it did.
    saved_file = out / SETTINGS
    saved = json.loads(saved_file.read_text()) if s.resume and saved_file.exists() else {}
    if any(saved.get(name, getattr(FinetuneSettings, name)) != getattr(s, name)
           for name in PHASE_SETTINGS) or not saved:
        saved_file.write_text(json.dumps({**asdict(s), "resume": False}, indent=1))
    if rows_source is None:
        from engine.train.fim_rows import training_files
        from engine.train.mixed_rows import MixedRows

        rows_source = MixedRows(load_tokenizer(s.model), training_files(), s.seed, mix,
                                s.fim_window, pool)
    if model is None:
        model = prepare_model(s.model, s.rank, s.alpha, s.seed)
    if s.init_adapter and not s.resume:
        start_from_adapter(model, s)
    opt = build_optimizer(model, s)
    step, next_example = 0, 0
    if s.resume:
        step, next_example = load_checkpoint(out, model, opt)
    bf16 = s.bf16 and cpu_has_bf16()
    last = min(s.steps, step + s.stop_after) if s.stop_after else s.steps
    # The run's record of which pool and (for a new run) which adapter it read.
    init_adapter = s.init_adapter if step == 0 else None
    with out.joinpath(INVOCATIONS).open("a") as record:
        record.write(json.dumps({"from_step": step, "to_step": last, "steps": s.steps,
                                 "mix": s.mix, "fim_window": s.fim_window,
                                 "instruct_pool": s.instruct_pool,
                                 "instruct_pool_sha256":
                                 file_sha256(s.instruct_pool) if s.instruct_pool else None,
                                 "init_adapter": init_adapter,
                                 "init_adapter_sha256":
                                 file_sha256(init_adapter) if init_adapter else None,
                                 "rows": s.rows,
                                 "row_len": s.row_len, "threads": s.threads, "bf16": bf16,
                                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                     + "\n")
    meta = {"seed": s.seed, "base": Path(s.model or str(default_base())).name,
            "cpu": platform.processor() or platform.machine(), "threads": s.threads}
    bar = tqdm(total=s.steps, initial=step, desc="finetune", file=sys.stderr,
               dynamic_ncols=True)
    losses: list[float] = []
    with out.joinpath(METRICS).open("a") as log:
        while step < last:
            batch, following = rows_source.batch(next_example, s.rows, s.row_len)
            for g, base_lr in zip(opt.param_groups, (s.lr, s.rows_lr), strict=False):
                g["lr"] = base_lr * lr_factor(step, s)
            t0 = time.perf_counter()
            loss, scored, by_kind = train_step(model, opt, batch, bf16,
                                               getattr(rows_source, "kind", None))
            seconds = time.perf_counter() - t0
            tokens = int((batch["docs"] >= 0).sum())
            step, next_example = step + 1, following
            losses.append(loss)
            record = {"step": step, "loss": round(loss, 5), "tokens": tokens,
                      **{f"loss_{k}": v for k, v in by_kind.items()},
                      "scored": scored, "scored_share": round(scored / tokens, 4),
                      "tokens_per_s": round(tokens / seconds, 1),
                      "scored_per_min": round(60 * scored / seconds, 1),
                      "seconds": round(seconds, 3), "next_example": next_example,
                      "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / seconds:.0f}",
                            scored=f"{scored / tokens:.1%}")
            if step % s.checkpoint_every == 0 or step == last:
                save_checkpoint(out, model, opt, step, next_example)
                save_adapter(model, out / ADAPTER_FILE, {**meta, "step": step})
    bar.close()
    return {"out": str(out), "step": step, "next_example": next_example,
            "losses": losses, "bf16": bf16}


OPTION_HELP = {
    "out": "Run folder: settings, checkpoint, adapter.npz and metrics.jsonl.",
    "model": "Base GGUF (default: cromwell-smol in the model cache).",
    "steps": "Optimiser steps of the whole run (the cosine schedule ends there).",
    "rows": "Rows a batch.",
    "row_len": "Tokens a row (examples are packed whole, first fit).",
    "rank": "LoRA rank.",
    "alpha": "LoRA alpha (the update is scaled by alpha / rank).",
    "lr": "Peak learning rate of the adapters.",
    "rows_lr": "Peak learning rate of the new tokens' embedding rows.",
    "warmup": "Linear warm-up steps.",
    "seed": "Seed of the adapters' start and of the examples.",
    "checkpoint_every": "Steps between checkpoints (and adapter.npz).",
    "threads": "Torch threads (may change on --resume).",
    "bf16": "bf16 autocast where the CPU has AVX-512 BF16 or AMX.",
    "mix": "Shares of fim, edit, complete and (optional) instruct rows, e.g. 0.5,0.3,0.2 or "
           "0.2,0.3,0.1,0.4 (given with --resume: "
           "the run draws in these shares from where it stopped).",
    "instruct_pool": "Instruction-edit tasks the instruct share draws from (made by "
                     "`cromwell train instruct-pool`); given with --resume: from where it "
                     "stopped.",
    "init_adapter": "A new run's adapter (LoRA pairs and FIM rows) starts from this "
                    "adapter.npz, e.g. the shipped engine/assets/cromwell-smol-fim/adapter.npz "
                    "(its rank and alpha must be given).",
    "fim_window": "FIM examples over an excerpt (2-20 lines above, 0-8 below) or over the "
                  "file, trimmed to the editor's window (about 2,000 tokens: give --row-len "
                  "2560); given with --resume: from where it stopped.",
    "stop_after": "Stop this invocation after so many steps (0: at --steps); --resume goes on.",
    "resume": "Continue the run in --out from its checkpoint.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cromwell train finetune",
        description="LoRA fine-tuning of the default model's text path on FIM, edit and "
        "function-writing examples (standard library, training split); --resume continues a "
        "run where it stopped.")
    for name, default in asdict(FinetuneSettings()).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=OPTION_HELP[name])
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, type=kind, default=default, metavar=name.upper(),
                                help=OPTION_HELP[name])
    return parser


def settings_of(argv: list[str]) -> FinetuneSettings:
    """The command line's settings; on --resume, the run's own, changed only where a resume
    may change them (a longer run, a busier machine, and the phase's data where given)."""
    settings = FinetuneSettings(**vars(build_parser().parse_args(argv)))
    if not (settings.resume and Path(settings.out, SETTINGS).exists()):
        return settings
    kept = json.loads(Path(settings.out, SETTINGS).read_text())
    # `out` is the folder named, so a copied run folder resumes itself, not its original.
    kept.update({name: getattr(settings, name) for name in ("out", *RESUME_MAY_CHANGE)},
                resume=True)
    for name in PHASE_SETTINGS:
        flag = "--" + name.replace("_", "-")
        if any(a == flag or a.startswith(flag + "=") for a in argv):
            kept[name] = getattr(settings, name)
    return FinetuneSettings(**kept)


def main(argv: list[str]) -> int:
    try:
        summary = run(settings_of(argv))
    except ValueError as err:
        print(f"cromwell train finetune: error: {err}", file=sys.stderr)
        return 2
    summary.pop("losses")
    print(json.dumps(summary))
    return 0
