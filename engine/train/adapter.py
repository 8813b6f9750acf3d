"""A text-path adapter on disk, and its merge into cromwell-smol.

adapter.npz holds, per adapted projection (its GGUF tensor name), `A` (r, in) and `B`
(out, r) as float16, the trained embedding rows of the new tokens (`new_rows`, float32) and
a JSON `meta` (rank, alpha, first new row, the FIM tokens). Merging uses
engine.model.lora.merge, the same definition the training layers use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.lora import merge

ADAPTER_FILE = "adapter.npz"


def save_adapter(model: Any, path: Path, meta: dict[str, Any]) -> Path:
    arrays: dict[str, np.ndarray] = {}
    first = next(iter(model.adapters().values()))
    for name, layer in model.adapters().items():
        arrays[f"{name}:A"] = layer.lora_A.detach().float().numpy().astype(np.float16)
        arrays[f"{name}:B"] = layer.lora_B.detach().float().numpy().astype(np.float16)
    if model.new_rows is not None:
        arrays["new_rows"] = model.new_rows.detach().float().numpy()
    info = {**meta, "rank": first.rank, "scale": first.scale, "first_new": model.first_new}
    arrays["meta"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


class Adapter:
    def __init__(self, path: str | Path) -> None:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
        self.meta: dict[str, Any] = json.loads(bytes(data.pop("meta")).decode())
        self.new_rows: np.ndarray | None = data.pop("new_rows", None)
        self.scale = float(self.meta["scale"])
        self.first_new = int(self.meta["first_new"])
        names = sorted({k.rsplit(":", 1)[0] for k in data})
        self.pairs = {n: (data[f"{n}:A"].astype(np.float32), data[f"{n}:B"].astype(np.float32))
                      for n in names}

    def merged(self, name: str, weight: np.ndarray) -> np.ndarray:
        """The GGUF tensor `name` (float32, torch's (out, in) order, HF Q/K row order) with
        the adapter merged; unchanged when no adapter sits on it."""
        if name not in self.pairs:
            return weight
        a, b = self.pairs[name]
        return np.asarray(merge(weight.astype(np.float32), a, b, self.scale), dtype=np.float32)


def load_into_text_model(model: Any, adapter: Adapter) -> None:
    """Put `adapter`'s values into a TextModel that has adapters (add_lora) and trainable
    new rows: the adapter applied on the fly."""
    import torch

    layers = model.adapters()
    with torch.no_grad():
        for name, (a, b) in adapter.pairs.items():
            layers[name].lora_A.copy_(torch.from_numpy(a))
            layers[name].lora_B.copy_(torch.from_numpy(b))
        if adapter.new_rows is not None:
            model.new_rows.copy_(torch.from_numpy(adapter.new_rows))


def merge_into_vljepa(model: Any, adapter: Adapter) -> list[str]:
    """Merge `adapter` into a VLJEPA whose text path was loaded from the base file; returns
    the GGUF names of the tensors it changed (they must be written from the model, not copied
    from the source file)."""
    import torch

    from engine.model.gguf_names import llama_to_cromwell

    n_enc = model.cfg.language.num_layers
    params = dict(model.named_parameters())
    changed = []
    with torch.no_grad():
        for name in adapter.pairs:
            p = params[llama_to_cromwell(name, n_enc)]
            p.copy_(torch.from_numpy(adapter.merged(name, p.detach().float().numpy())))
            changed.append(name)
        if adapter.new_rows is not None:
            emb = model.language.embed.weight
            emb[adapter.first_new:] = torch.from_numpy(adapter.new_rows)
    return changed
