"""A model of a config's exact shape with random weights, exported to GGUF: what the runtime's
speed is measured on before trained weights exist (cromwell-300m).

    path = ensure_random_model("cromwell-300m", "Q8_0")   # built once into the model cache

The weights are PyTorch's initialisation under a fixed seed, with the fusion gates opened
(tanh(0.5)) so that an image costs what it will cost a trained model: with gates at their
initial 0 the runtime skips fusion's output projection. The file carries the config's real
tokenizer, so prompts tokenise as they will.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.runtime import model_store
from engine.train.export import check_format

SEED = 0
OPEN_GATE = 0.5
BENCH_CONFIG, BENCH_FORMAT = "cromwell-300m", "Q8_0"
BENCH_IMAGE_SIDE = 448  # the image side the speed targets name


def bench_target(
    image_side: int | None, progress: Callable[[str], None] | None = None
) -> tuple[str, int]:
    """What `bench decode --random-300m` measures: (the random cromwell-300m Q8_0 file, the
    image side: `image_side` when given, else 448)."""
    path = ensure_random_model(BENCH_CONFIG, BENCH_FORMAT, progress)
    return str(path), BENCH_IMAGE_SIDE if image_side is None else image_side


def random_model_path(config: str, fmt: str) -> Path:
    return model_store.cromwell_home() / "random" / f"{config}-random-{fmt}.gguf"


def ensure_random_model(
    config: str = "cromwell-300m", fmt: str = "Q8_0", progress: Callable[[str], None] | None = None
) -> Path:
    """The random-weight GGUF of `config` in `fmt`, built on first use (a minute or two for
    cromwell-300m) and found in the cache afterwards."""
    check_format(fmt)
    out = random_model_path(config, fmt)
    if out.is_file():
        return out
    import torch

    from engine.config import load_config
    from engine.model.vljepa import VLJEPA
    from engine.tokenizer import load_cromwell_bpe
    from engine.train.export import export_model
    from engine.train.tokenizer_choice import CROMWELL_BPE

    say = progress or (lambda _msg: None)
    cfg = load_config(config).model
    say(f"building {config} with random weights (seed {SEED})")
    torch.manual_seed(SEED)
    model = VLJEPA(cfg, ema_target=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(OPEN_GATE)
    # The config's own vocabulary when it has one (cromwell-300m: the Cromwell BPE).
    own = load_cromwell_bpe().vocab_size == cfg.language.vocab_size
    tokenizer = CROMWELL_BPE if own else None
    say(f"exporting {fmt} to {out}")
    partial = out.with_name(out.name + ".partial")
    export_model(model, partial, fmt, ["none"], tokenizer=tokenizer)
    partial.replace(out)  # a reader never sees half a file
    return out
