"""The training loop: one stage of the curriculum, from scratch, from the previous stage's
checkpoint, or resumed exactly where a killed run stopped.

    settings = TrainSettings(config="cromwell-tiny", stage=3, out_dir=Path("runs/a"), steps=100)
    summary = train(settings)            # or train(settings, batches=my_iterable)

`batches` is any iterable of dicts (`tokens` (B, T) ids, optional `image` (B, 3, H, W) in
[0, 1], `prompt_len`, `targets`); when it also has `state_dict()` / `load_state_dict()`, its
position is saved with each checkpoint and restored on resume. The same code runs on one CPU
process and under `torchrun` (DDP or FSDP, see distributed.py); each rank draws its own
batches, so a data source should be sharded by rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.config import ModelConfig, load_config, resolve_config_path
from engine.model.vljepa import VLJEPA
from engine.train import checkpoint as ckpt_io
from engine.train.curriculum import STAGES, Stage, apply_stage, get_stage, loss_weights
from engine.train.distributed import (
    DistInfo,
    all_reduce_mean,
    choose_mode,
    enable_gradient_checkpointing,
    gather_objects,
    init_distributed,
    param_digest,
    shutdown,
    unwrap,
    wrap_model,
)
from engine.train.metrics import METRICS_FILE, MetricsLog, ProgressBar
from engine.train.objective import batch_losses, batch_to, count_tokens, ema_momentum_at
from engine.train.tokenizer_choice import resolve_tokenizer_spec

PRECISIONS = ("auto", "fp32", "bf16")
REPLICAS_FILE = "replicas.json"


@dataclass
class TrainSettings:
    config: str = "cromwell-tiny"  # YAML path or preset name
    stage: int = 3  # curriculum stage, see curriculum.py
    out_dir: Path = Path("runs/default")  # checkpoints under out_dir/stage{N}/
    steps: int = 1000  # optimiser steps of this stage: the LR and EMA schedules span them
    until: int | None = None  # stop after this step (the schedules still span `steps`)
    batch_size: int = 8  # rows per process per micro-step
    seq_len: int = 256
    grad_accum: int = 1  # micro-steps per optimiser step
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    save_every: int = 500
    keep_last: int = 3  # checkpoints kept per stage
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    precision: str = "auto"  # auto: bf16 autocast on GPUs, fp32 on CPUs
    parallel: str = "auto"  # auto | none | ddp | fsdp (auto: FSDP above 100M parameters)
    grad_checkpointing: bool = False
    init_from: Path | None = None  # checkpoint to start from (default: previous stage's last)
    init_gguf: Path | None = None  # llama GGUF for the language path (cromwell-smol)
    data: str = "auto"  # auto | code | synthetic (auto: code when a tokenizer fits the model)
    data_folders: str = ""  # code data: comma-separated folders of code, beside the stdlib
    data_stdlib: bool = True  # code data: index the Python standard library
    data_workers: int = 2  # code data: worker processes per rank (0: in-process)
    image_size: int = 0  # synthetic batches: image side (0: text only)
    max_image_side: int = 512  # code data: screenshots are rendered at most this large
    vision_every: int | None = None  # code data: every n-th batch is screenshots (None: the
    # stage's; 1: every batch, for a run that only teaches the vision path to read; 0: none)
    tokenizer: str = "auto"  # cromwell-bpe | a GGUF path | auto (see tokenizer_choice.py)
    threads: int = 0  # CPU threads per process (0: torch's default, every core)
    progress: bool = True

    def check(self) -> None:
        get_stage(self.stage)
        for key in ("steps", "batch_size", "seq_len", "grad_accum", "save_every", "keep_last"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if self.until is not None and not 0 < self.until <= self.steps:
            raise ValueError(f"until must be in [1, steps={self.steps}], got {self.until}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if self.vision_every is not None and self.vision_every < 0:
            raise ValueError(f"vision_every must be >= 0, got {self.vision_every}")
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be positive, warmup_steps >= 0, min_lr_ratio in [0, 1]")


def stage_dir(out_dir: Path, stage: int) -> Path:
    return Path(out_dir) / f"stage{stage}"


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; matrices decay, norms, biases and gates do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters in this stage")
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=s.lr,
                             betas=(0.9, 0.95))


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _initial_weights(model: VLJEPA, s: TrainSettings) -> tuple[str, list[str]]:
    """Fill a fresh model for a stage's first step; -> (where from, parts trained so far)."""
    source = s.init_from
    if source is None and s.stage > min(STAGES):
        source = ckpt_io.latest_checkpoint(stage_dir(s.out_dir, s.stage - 1))
    if source is not None:
        ckpt_io.load_weights(model, Path(source))
        return str(source), list(ckpt_io.read_trainer(Path(source)).get("trained_parts", []))
    if s.init_gguf is not None:
        from engine.model.llama_gguf import load_llama_gguf

        load_llama_gguf(model, s.init_gguf)  # also copies the weights into the EMA target
        return str(s.init_gguf), ["language", "ar_head", "lm_head"]
    return "init", []


def default_batches(s: TrainSettings, cfg: ModelConfig, stage: Stage, info: DistInfo,
                    tokenizer: str | None) -> tuple[str, Iterable[Any]]:
    """-> (data kind, batches): code from the data pipeline, or synthetic smoke batches."""
    from engine.train import sources

    kind = sources.choose_data(s.data, tokenizer)
    if kind == "synthetic":
        return kind, sources.synthetic_batches(cfg, s.batch_size, s.seq_len, s.seed, info,
                                               s.image_size)
    assert tokenizer is not None
    if s.vision_every is not None:
        stage = dataclasses.replace(stage, vision_every=s.vision_every)
    folders = [Path(f) for f in s.data_folders.split(",") if f.strip()]
    return kind, sources.code_batches(stage, cfg, tokenizer, folders, s.data_stdlib,
                                      s.batch_size, s.seq_len, s.seed, info, s.data_workers,
                                      s.max_image_side)


@dataclass
class _Run:
    """What the loop carries from step to step."""

    settings: TrainSettings
    info: DistInfo
    cfg: ModelConfig
    stage: Stage
    model: nn.Module  # wrapped (DDP/FSDP) or plain
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    data: Iterable[Any]
    mode: str
    trainer: dict[str, Any]


def train(s: TrainSettings, batches: Iterable[Any] | None = None) -> dict[str, Any]:
    """Run (or resume) one stage; returns a summary: final step, last losses, paths."""
    s.check()
    if s.threads > 0:
        # Per process: under torchrun each rank is one process, so N ranks x all cores each
        # would oversubscribe the CPU.
        torch.set_num_threads(s.threads)
    info = init_distributed(s.device)
    try:
        return _run_stage(s, info, batches)
    finally:
        shutdown()


def _run_stage(s: TrainSettings, info: DistInfo, batches: Iterable[Any] | None
               ) -> dict[str, Any]:
    # Its own frame so that the wrapped model is unreferenced once it returns: shutdown() can
    # then free it, and the process group it holds, while the interpreter is still alive.
    run, start, resumed = _build(s, info, batches)
    return _loop(run, stage_dir(s.out_dir, s.stage), start, resumed)


def _build(s: TrainSettings, info: DistInfo, batches: Iterable[Any] | None
           ) -> tuple[_Run, int, bool]:
    """Model (initial, previous stage's or resumed weights), optimiser, schedule and data
    for stage `s.stage` -> (run, steps already done, whether resumed)."""
    cfg = load_config(s.config).model
    stage = get_stage(s.stage)
    resume = ckpt_io.latest_checkpoint(stage_dir(s.out_dir, s.stage))

    torch.manual_seed(s.seed)  # the same initial weights on every rank
    model = VLJEPA(cfg)
    if resume:
        previous = ckpt_io.read_trainer(resume)
        started_from, trained = previous["started_from"], previous["trained_parts"]
    else:
        started_from, trained = _initial_weights(model, s)
    trainable = apply_stage(model, stage)
    if s.grad_checkpointing:
        enable_gradient_checkpointing(model)
    model.to(info.device)
    mode = choose_mode(s.parallel, info, sum(p.numel() for p in model.parameters()))
    wrapped = wrap_model(model, info, mode)
    optimizer = make_optimizer(wrapped, s)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: lr_factor(i, s.warmup_steps, s.steps, s.min_lr_ratio))
    tokenizer = resolve_tokenizer_spec(s.tokenizer, cfg)
    if batches is not None:
        kind, data = "given", batches
    else:
        kind, data = default_batches(s, cfg, stage, info, tokenizer)

    start = 0
    if resume:
        data_state = ckpt_io.load_training_state(resume, wrapped, optimizer, scheduler, info,
                                                 sharded=mode == "fsdp")
        if data_state is not None and hasattr(data, "load_state_dict"):
            data.load_state_dict(data_state)
        start = int(ckpt_io.read_trainer(resume)["step"])
    config_path = resolve_config_path(s.config)
    trainer = {
        "stage": stage.number, "stage_name": stage.name,
        "config": str(config_path), "config_yaml": config_path.read_text(),
        "trained_parts": sorted(set(trained) | set(stage.trains)),
        "trainable_params": len(trainable), "started_from": started_from,
        "parallel": mode, "world_size": info.world_size, "tokenizer": tokenizer, "data": kind,
        "settings": {k: str(v) if isinstance(v, Path) else v
                     for k, v in dataclasses.asdict(s).items()},
    }
    run = _Run(s, info, cfg, stage, wrapped, optimizer, scheduler, data, mode, trainer)
    return run, start, resume is not None


def _loop(run: _Run, run_dir: Path, start: int, resumed: bool) -> dict[str, Any]:
    s, info = run.settings, run.info
    end = s.until or s.steps
    jw, lw = loss_weights(run.stage, run.cfg.loss.jepa_weight, run.cfg.loss.lm_weight)
    log = MetricsLog(run_dir / METRICS_FILE, start if resumed else None) if info.is_main else None
    bar = ProgressBar(end, start, s.progress and info.is_main,
                      f"stage {run.stage.number} ({run.stage.name})")
    it: Iterator[Any] = iter(run.data)
    t_start = time.perf_counter()
    record: dict[str, Any] = {}
    path = None
    try:
        for step in range(start + 1, end + 1):
            t0 = time.perf_counter()
            stats, tokens, grad_norm = _optimizer_step(run, it, jw, lw)
            momentum = ema_momentum_at(step - 1, s.steps, run.cfg)
            unwrap(run.model).update_ema(momentum)
            dt = time.perf_counter() - t0
            loss, lm, jepa = (float(v) for v in all_reduce_mean(stats, info))
            tps = tokens * info.world_size / dt
            record = {"step": step, "stage": run.stage.number, "loss": loss, "lm": lm,
                      "jepa": jepa, "lr": run.scheduler.get_last_lr()[0],
                      "ema_momentum": momentum, "grad_norm": grad_norm,
                      "tokens_per_s": tps, "elapsed_s": time.perf_counter() - t_start}
            if log is not None:
                log.write(record)
            bar.update(step, loss, tps)
            if step % s.save_every == 0 or step == end:
                data_state = run.data.state_dict() if hasattr(run.data, "state_dict") else None
                path = ckpt_io.save_checkpoint(
                    run_dir, step, run.model, run.optimizer, run.scheduler, data_state,
                    {**run.trainer, "loss": loss, "lm": lm, "jepa": jepa}, info,
                    sharded=run.mode == "fsdp", keep_last=s.keep_last)
    finally:
        bar.close()
    summary = {"step": end, "checkpoint": str(path) if path else None,
               "metrics": str(run_dir / METRICS_FILE), **record}
    if info.distributed:
        digests = gather_objects(param_digest(run.model), info)
        summary["replicas_agree"] = len(set(digests)) == 1
        if info.is_main:
            (run_dir / REPLICAS_FILE).write_text(json.dumps(
                {"step": end, "digests": digests, "agree": summary["replicas_agree"]}))
    return summary


def _optimizer_step(run: _Run, it: Iterator[Any], jw: float, lw: float
                    ) -> tuple[torch.Tensor, int, float]:
    """grad_accum micro-steps, clip, step, LR schedule -> ((loss, lm, jepa) means, tokens, grad
    norm). DDP synchronises gradients on the last micro-step only."""
    s, info = run.settings, run.info
    stats = torch.zeros(3, device=info.device)
    tokens = 0
    params = [p for p in run.model.parameters() if p.requires_grad]
    for micro in range(s.grad_accum):
        try:
            batch = batch_to(next(it), info.device)
        except StopIteration:
            raise RuntimeError("the data ran out before the last step") from None
        sync = micro == s.grad_accum - 1 or run.mode != "ddp"
        no_sync = contextlib.nullcontext() if sync else run.model.no_sync()  # type: ignore[operator]
        with no_sync, autocast(s.precision, info.device):
            losses = batch_losses(run.model, batch, jw, lw)
            (losses.total / s.grad_accum).backward()
        stats += torch.stack([losses.total, losses.lm, losses.jepa]).detach().float()
        tokens += count_tokens(batch)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return stats / s.grad_accum, tokens, float(grad_norm)
