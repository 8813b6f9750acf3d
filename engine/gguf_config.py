"""ModelConfig <-> GGUF metadata for the `cromwell` architecture. Torch-free, so the runtime
reads with it what the exporter (engine/train/export.py) writes with it.

Every init field of ModelConfig is a key: top-level fields as `cromwell.<field>`
(`cromwell.rotary_base`), section fields as `cromwell.<section>.<field>`
(`cromwell.vision.stem_channels`, `cromwell.autoregressive.num_layers`). Floats are FLOAT64 so
a config read back is the config written; counts such as `parameters` are strings ("300M").
Beside them the exporter writes the llama-style keys the shared llama code reads
(`cromwell.block_count`, `cromwell.embedding_length`, ...; see export.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.config import ModelConfig, config_from_dict

ARCH = "cromwell"


def config_to_metadata(cfg: ModelConfig) -> dict[str, Any]:
    """{'cromwell.vision.stem_channels': 96, ...}: every init field, values as Python types."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if not f.init:
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                if sub.init:
                    out[f"{ARCH}.{f.name}.{sub.name}"] = _plain(getattr(value, sub.name), sub.name)
        else:
            out[f"{ARCH}.{f.name}"] = _plain(value, f.name)
    return out


def _plain(value: Any, name: str) -> Any:
    return str(value) if name == "parameters" else value


def config_from_metadata(meta: Mapping[str, Any]) -> ModelConfig:
    """The inverse: metadata keys (any others are ignored) -> a validated ModelConfig."""
    data: dict[str, Any] = {}
    default = ModelConfig()
    sections = {f.name for f in dataclasses.fields(default)
                if dataclasses.is_dataclass(getattr(default, f.name))}
    prefix = ARCH + "."
    known = set(config_to_metadata(default))
    for key, value in meta.items():
        if key not in known:
            continue
        # Readers hand back numpy scalars and arrays; the config checks Python types.
        value = value.tolist() if hasattr(value, "tolist") else value
        parts = key[len(prefix):].split(".")
        if len(parts) == 2 and parts[0] in sections:
            data.setdefault(parts[0], {})[parts[1]] = value
        else:
            data[parts[0]] = value
    return config_from_dict({"model": data}, "GGUF metadata").model
