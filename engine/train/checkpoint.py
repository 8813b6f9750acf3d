"""Training checkpoints: a folder per step, written whole or not at all.

    stage3/step-00000200/
        model.safetensors    every weight, the EMA target (`target.`) included
        optimizer.pt         optimiser and LR-schedule state
        rank-0.pt ...        per process: data position and RNG states (torch, numpy, random)
        trainer.json         step, stage, config, settings: for people and for `export`

A checkpoint is written into `step-N.tmp` and renamed into place, so a run killed while
saving leaves the previous checkpoint as the latest. Weights use safetensors' `save_model`,
which stores a tied tensor once (cromwell-smol's embedding is its LM head).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from engine.train.distributed import DistInfo, unwrap

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
TRAINER_FILE = "trainer.json"
_STEP_RE = re.compile(r"step-(\d+)")


class CheckpointError(ValueError):
    """A checkpoint folder that is missing or incomplete."""


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"step-{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints under `run_dir`, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if (m := _STEP_RE.fullmatch(p.name)) and (p / TRAINER_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "random": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool
                ) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any]]:
    """(model state or None when `save_model` can take the module itself, optimiser state),
    gathered whole onto every rank when the model is sharded."""
    if not sharded:
        return None, optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd, optim_sd = get_state_dict(model, optimizer, options=opts)
    return model_sd, optim_sd


def save_checkpoint(run_dir: Path, step: int, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, data_state: Any,
                    trainer: dict[str, Any], info: DistInfo, sharded: bool = False,
                    keep_last: int = 3) -> Path:
    """Write the checkpoint of `step` (every rank calls this; rank 0 writes the shared files)."""
    final = step_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    model_sd, optim_sd = _full_state(model, optimizer, sharded)
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(info)
    torch.save({"data": data_state, "rng": rng_state()}, tmp / f"rank-{info.rank}.pt")
    if info.is_main:
        if model_sd is None:
            save_model(unwrap(model), str(tmp / MODEL_FILE))
        else:
            save_file(_dedup_tied(model_sd, unwrap(model)), str(tmp / MODEL_FILE))
        torch.save({"optimizer": optim_sd, "scheduler": scheduler.state_dict()},
                   tmp / OPTIMIZER_FILE)
    _barrier(info)
    if info.is_main:
        (tmp / TRAINER_FILE).write_text(json.dumps({**trainer, "step": step}, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    _barrier(info)
    return final


def _dedup_tied(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    cfg = getattr(model, "cfg", None)
    sd = {k: v.contiguous() for k, v in sd.items()}
    if cfg is not None and cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def _barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def read_trainer(ckpt: Path) -> dict[str, Any]:
    path = Path(ckpt) / TRAINER_FILE
    if not path.is_file():
        raise CheckpointError(f"{ckpt}: not a checkpoint folder (no {TRAINER_FILE})")
    return json.loads(path.read_text())


def load_weights(model: nn.Module, ckpt: Path) -> None:
    """Weights only (a new stage starting from the last one's checkpoint, or export)."""
    path = Path(ckpt) / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{ckpt}: no {MODEL_FILE}")
    missing, unexpected = load_model(model, str(path), strict=False)
    # save_model stores a tied tensor under one of its two names.
    tied = {"lm_head.weight", "language.embed.weight"} if model.cfg.tie_word_embeddings else set()
    problems = sorted(set(missing) - tied) + sorted(unexpected)
    if problems:
        raise CheckpointError(f"{ckpt}: weights do not fit the model: {', '.join(problems[:8])}")


def load_training_state(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any, info: DistInfo, sharded: bool = False) -> Any:
    """Restore everything a killed run needs to go on exactly; returns this rank's data state."""
    ckpt = Path(ckpt)
    state = torch.load(ckpt / OPTIMIZER_FILE, map_location="cpu", weights_only=False)
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        model_sd = load_file(str(ckpt / MODEL_FILE))
        if unwrap(model).cfg.tie_word_embeddings:
            embed = model_sd.get("language.embed.weight", model_sd.get("lm_head.weight"))
            model_sd["language.embed.weight"] = model_sd["lm_head.weight"] = embed
        set_state_dict(model, optimizer, model_state_dict=model_sd,
                       optim_state_dict=state["optimizer"],
                       options=StateDictOptions(full_state_dict=True))
    else:
        load_weights(unwrap(model), ckpt)
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rank_file = ckpt / f"rank-{info.rank}.pt"
    if not rank_file.is_file():
        raise CheckpointError(f"{ckpt}: no {rank_file.name}: was it written with fewer "
                              "processes than this run has?")
    rank_state = torch.load(rank_file, map_location="cpu", weights_only=False)
    set_rng_state(rank_state["rng"])
    return rank_state["data"]
