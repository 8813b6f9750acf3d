"""Process groups and model wrapping: one CPU process, or `torchrun` with DDP or FSDP.

`torchrun --nproc-per-node N -m engine.train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; without
them the run is a single process and nothing here starts a process group. GPUs use NCCL,
CPUs gloo (the 2-process test). FSDP (`fully_shard`, one shard unit per decoder/ViT/fusion
block) is for models whose weights and Adam state crowd one device (cromwell-300m).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint

from engine.model.fusion import FusionBlock
from engine.model.layers import DecoderBlock
from engine.model.vision import ViTBlock

# The repeated blocks: gradient checkpointing and FSDP shard units work block by block.
BLOCK_TYPES = (DecoderBlock, ViTBlock, FusionBlock)
PARALLEL_MODES = ("auto", "none", "ddp", "fsdp")
# `auto` shards models above this size with FSDP (cromwell-300m) and replicates the rest.
FSDP_AUTO_PARAMS = 100_000_000


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def shutdown() -> None:
    """Free what still holds the process group, then destroy it. A DDP/FSDP model sits in
    reference cycles; left to the collector at interpreter exit, its gloo worker threads would
    wake to a finalising interpreter and abort the process (SIGABRT after a finished run)."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
        gc.collect()


def choose_mode(mode: str, info: DistInfo, n_params: int) -> str:
    if mode not in PARALLEL_MODES:
        raise ValueError(f"parallel mode must be one of {', '.join(PARALLEL_MODES)}, "
                         f"got {mode!r}")
    if mode != "auto":
        if mode != "none" and not info.distributed:
            return "none"
        return mode
    if not info.distributed:
        return "none"
    return "fsdp" if n_params > FSDP_AUTO_PARAMS else "ddp"


def wrap_model(model: nn.Module, info: DistInfo, mode: str) -> nn.Module:
    """Wrap for `mode` ('none', 'ddp', 'fsdp'); the model is already on `info.device`."""
    if mode == "none":
        return model
    if mode == "ddp":
        # Without an image the vision encoder and fusion blocks take no part in the loss.
        return DistributedDataParallel(
            model, device_ids=[info.local_rank] if info.device.type == "cuda" else None,
            find_unused_parameters=True)
    from torch.distributed.fsdp import fully_shard

    for name, module in model.named_modules():
        if isinstance(module, BLOCK_TYPES) and not name.startswith("target."):
            fully_shard(module)
    fully_shard(model)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over ranks (for logging): every rank sees the same numbers."""
    if info.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world_size
    return values


def param_digest(model: nn.Module) -> str:
    """sha256 over every parameter and buffer (name and bytes): equal digests, equal models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unwrap(model).state_dict().items()):
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        digest.update(name.encode())
        digest.update(full.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def _checkpointed(forward: Any, *args: Any, **kwargs: Any) -> Any:
    if not torch.is_grad_enabled():  # the EMA target and evaluation: nothing to save
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def enable_gradient_checkpointing(model: nn.Module) -> int:
    """Recompute each block's activations in the backward pass instead of keeping them: memory
    per block drops to its input. Returns the number of blocks wrapped."""
    n = 0
    for module in model.modules():
        if isinstance(module, BLOCK_TYPES):
            module.forward = functools.partial(_checkpointed, module.forward)  # type: ignore[method-assign]
            n += 1
    return n
