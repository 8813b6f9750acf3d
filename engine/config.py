"""Model configs: YAML in, nested dataclasses out, every value checked.

One config object flows from the YAML file to the PyTorch model, the torch-free runtime and the
exporter, so this module imports no torch. Sizes that follow from others (head dims, KV groups,
parsed budgets) are computed in `__post_init__`, never typed in twice. A wrong file fails early
with a `ConfigError` that names the file and the key, e.g.
`configs/x.yaml: model.language.num_attention_heads: 7 does not divide hidden_size 768`.

Field names under `model:` follow the seed design (§3.1) where it names them; the fields the seed
leaves out (KV heads, MLP widths, EMA schedule, loss weights...) are added beside them.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# configs/ sits beside engine/ in the repository; the package is installed editable, so this
# resolves to the checkout's configs/ folder whichever directory the caller runs from.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config file that cannot describe a model: names the file and the offending key."""


class _BadValue(ValueError):
    """Raised inside `__post_init__` with the key relative to its section; the loader adds the
    section path and the file name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _need(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise _BadValue(key, problem)


def _positive(obj: Any, *keys: str) -> None:
    for key in keys:
        value = getattr(obj, key)
        _need(value > 0, key, f"must be positive, got {value}")


def _divides(obj: Any, heads_key: str, width_key: str) -> int:
    heads, width = getattr(obj, heads_key), getattr(obj, width_key)
    _need(width % heads == 0, heads_key, f"{heads} does not divide {width_key} {width}")
    return width // heads


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9}


def parse_count(value: int | str, key: str = "parameters") -> int:
    """'50M' -> 50_000_000; plain integers pass through."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMB]?)\s*", str(value))
    _need(match is not None, key, f"{value!r} is not a count such as 50M or 1200000")
    assert match is not None
    return int(float(match.group(1)) * _SUFFIX[match.group(2)])


@dataclass
class VisionConfig:
    """CNN-ViT hybrid: 4x4/4 conv stem, MBConv blocks to H/8 x W/8, windowed ViT blocks."""

    encoder_type: str = "cnn-vit-hybrid"
    stem_channels: int = 96  # conv stem 4x4 stride 4 -> H/4 x W/4 x stem_channels
    cnn_blocks: int = 4  # MBConv blocks; the first halves the resolution to H/8
    cnn_channels: int = 192  # MBConv output width (seed §3.2: H/8 x W/8 x 192)
    cnn_expansion: int = 6  # MBConv inverted-bottleneck expansion ratio
    se_ratio: float = 0.25  # squeeze-excitation width, as a fraction of the block's input width
    vit_blocks: int = 6
    vision_hidden_dim: int = 384
    vision_attention_heads: int = 6
    vision_intermediate_size: int = 1536  # ViT SwiGLU width (seed: MLP 384 -> 1536 -> 384)
    window_size: int = 16  # attention windows of window_size x window_size tokens
    image_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    image_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    parameters: int | str = "50M"  # the seed's budget; the real count is computed

    head_dim: int = field(init=False)
    budget: int = field(init=False)
    # The stem divides by 4 and the first MBConv by 2: one vision token per 8x8 pixels.
    patch_size: int = field(init=False, default=8)

    def __post_init__(self) -> None:
        _need(self.encoder_type == "cnn-vit-hybrid", "encoder_type",
              f"only 'cnn-vit-hybrid' is built, got {self.encoder_type!r}")
        _positive(self, "stem_channels", "cnn_blocks", "cnn_channels", "cnn_expansion",
                  "vit_blocks", "vision_hidden_dim", "vision_attention_heads",
                  "vision_intermediate_size", "window_size")
        _need(0.0 < self.se_ratio <= 1.0, "se_ratio", f"must be in (0, 1], got {self.se_ratio}")
        for key in ("image_mean", "image_std"):
            value = getattr(self, key)
            _need(len(value) == 3, key, f"needs 3 values (RGB), got {len(value)}")
        _need(all(s > 0 for s in self.image_std), "image_std", "every value must be positive")
        self.head_dim = _divides(self, "vision_attention_heads", "vision_hidden_dim")
        self.budget = parse_count(self.parameters)


@dataclass
class LanguageConfig:
    """Causal decoder stack over token embeddings (the embeddings are counted here)."""

    vocab_size: int = 50000
    hidden_size: int = 768
    intermediate_size: int = 3072  # SwiGLU width
    num_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int = 3  # grouped-query attention: 12 Q heads share 3 K/V heads
    max_position_embeddings: int = 4096
    parameters: int | str = "120M"

    head_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    budget: int = field(init=False)

    def __post_init__(self) -> None:
        _positive(self, "vocab_size", "hidden_size", "intermediate_size", "num_layers",
                  "num_attention_heads", "num_key_value_heads", "max_position_embeddings")
        self.head_dim = _divides(self, "num_attention_heads", "hidden_size")
        _divides(self, "num_key_value_heads", "num_attention_heads")
        self.kv_dim = self.num_key_value_heads * self.head_dim
        self.budget = parse_count(self.parameters)


@dataclass
class FusionConfig:
    """Gated cross-attention between the vision stream and the text stream at joint_dim."""

    joint_dim: int = 512
    num_fusion_blocks: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048  # SwiGLU width, shared by both streams (seed: 512->2048->512)
    parameters: int | str = "40M"

    head_dim: int = field(init=False)
    budget: int = field(init=False)

    def __post_init__(self) -> None:
        _positive(self, "joint_dim", "num_fusion_blocks", "num_attention_heads",
                  "intermediate_size")
        self.head_dim = _divides(self, "num_attention_heads", "joint_dim")
        self.budget = parse_count(self.parameters)


@dataclass
class JEPAConfig:
    """Predictor of the joint embeddings z_{t+1..t+k} with an EMA target (I-JEPA schedule)."""

    hidden_dim: int = 512  # must equal fusion.joint_dim: it reads the joint embeddings
    num_context_layers: int = 4  # causal transformer layers over the joint embeddings
    num_attention_heads: int = 8
    intermediate_size: int = 2048  # SwiGLU width of the context layers
    predictor_intermediate_size: int = 512  # SwiGLU width of each per-step predictor MLP
    prediction_steps: int = 3
    ema_momentum_start: float = 0.996
    ema_momentum_end: float = 1.0
    parameters: int | str = "30M"

    head_dim: int = field(init=False)
    budget: int = field(init=False)

    def __post_init__(self) -> None:
        _positive(self, "hidden_dim", "num_context_layers", "num_attention_heads",
                  "intermediate_size", "predictor_intermediate_size", "prediction_steps")
        self.head_dim = _divides(self, "num_attention_heads", "hidden_dim")
        for key in ("ema_momentum_start", "ema_momentum_end"):
            value = getattr(self, key)
            _need(0.0 <= value <= 1.0, key, f"must be in [0, 1], got {value}")
        _need(self.ema_momentum_start <= self.ema_momentum_end, "ema_momentum_end",
              "must not be below ema_momentum_start")
        self.budget = parse_count(self.parameters)


@dataclass
class ARHeadConfig:
    """Causal decoder layers between fusion and the LM head. Its input is the language
    stream (language.hidden_size); a projection is built only when hidden_size differs."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 6
    num_attention_heads: int = 12
    num_key_value_heads: int = 3
    parameters: int | str = "60M"

    head_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    budget: int = field(init=False)

    def __post_init__(self) -> None:
        _positive(self, "hidden_size", "intermediate_size", "num_layers",
                  "num_attention_heads", "num_key_value_heads")
        self.head_dim = _divides(self, "num_attention_heads", "hidden_size")
        _divides(self, "num_key_value_heads", "num_attention_heads")
        self.kv_dim = self.num_key_value_heads * self.head_dim
        self.budget = parse_count(self.parameters)


@dataclass
class LossConfig:
    """L_total = jepa_weight * L_JEPA + lm_weight * L_LM (seed §3.3: alpha 0.3, beta 0.7)."""

    jepa_weight: float = 0.3
    lm_weight: float = 0.7

    def __post_init__(self) -> None:
        for key in ("jepa_weight", "lm_weight"):
            value = getattr(self, key)
            _need(value >= 0, key, f"must not be negative, got {value}")
        _need(self.lm_weight > 0, "lm_weight",
              "must be positive: a JEPA-only objective on the generating weights collapses")


_ATTENTION_TYPES = ("multi-head", "grouped-query", "multi-query")


@dataclass
class ModelConfig:
    name: str = "Cromwell-VL-JEPA"
    architecture: str = "vision-language-jepa-autoregressive"
    parameters: int | str = "300M"  # total budget: the built model must stay below it
    vision: VisionConfig = field(default_factory=VisionConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    jepa: JEPAConfig = field(default_factory=JEPAConfig)
    autoregressive: ARHeadConfig = field(default_factory=ARHeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    attention_type: str = "grouped-query"  # of the language encoder and the AR head
    rotary_pct: float = 1.0
    rotary_base: float = 10000.0
    hidden_act: str = "swiglu"
    norm_type: str = "rmsnorm"
    epsilon: float = 1e-6  # RMSNorm epsilon, every norm of the model
    initializer_range: float = 0.02
    use_cache: bool = True  # the runtime keeps a KV cache (the text path is causal)
    tie_word_embeddings: bool = False

    budget: int = field(init=False)

    def __post_init__(self) -> None:
        _need(self.architecture == "vision-language-jepa-autoregressive", "architecture",
              f"only 'vision-language-jepa-autoregressive' is built, got {self.architecture!r}")
        _need(self.attention_type in _ATTENTION_TYPES, "attention_type",
              f"must be one of {', '.join(_ATTENTION_TYPES)}, got {self.attention_type!r}")
        for section in ("language", "autoregressive"):
            sub = getattr(self, section)
            q, kv = sub.num_attention_heads, sub.num_key_value_heads
            kind = "multi-head" if kv == q else "multi-query" if kv == 1 else "grouped-query"
            _need(kind == self.attention_type, f"{section}.num_key_value_heads",
                  f"{q} Q / {kv} KV heads is {kind} attention, but attention_type is "
                  f"{self.attention_type!r}")
        _need(self.rotary_pct == 1.0, "rotary_pct",
              f"only full rotary embeddings (1.0) are built, got {self.rotary_pct}")
        _need(self.rotary_base > 0, "rotary_base", f"must be positive, got {self.rotary_base}")
        _need(self.hidden_act == "swiglu", "hidden_act",
              f"only 'swiglu' is built, got {self.hidden_act!r}")
        _need(self.norm_type == "rmsnorm", "norm_type",
              f"only 'rmsnorm' is built, got {self.norm_type!r}")
        _need(0 < self.epsilon < 1, "epsilon", f"must be in (0, 1), got {self.epsilon}")
        _need(self.initializer_range > 0, "initializer_range",
              f"must be positive, got {self.initializer_range}")
        _need(self.jepa.hidden_dim == self.fusion.joint_dim, "jepa.hidden_dim",
              f"{self.jepa.hidden_dim} must equal fusion.joint_dim {self.fusion.joint_dim}: "
              "the JEPA head reads the joint embeddings")
        if self.tie_word_embeddings:
            _need(self.autoregressive.hidden_size == self.language.hidden_size,
                  "tie_word_embeddings", "needs autoregressive.hidden_size == "
                  "language.hidden_size: the LM head reuses the token embedding")
        self.budget = parse_count(self.parameters)


@dataclass
class Config:
    """A whole config file. Other sections (runtime, training) join here as fields."""

    model: ModelConfig = field(default_factory=ModelConfig)


# ---------------------------------------------------------------------------------------------
# Loading: dict -> dataclasses, with the file and the key path in every error.


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check (and for numbers, coerce) one YAML value against a field's type hint."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        # PyYAML reads `1e-6` (no dot) as a string; the seed writes it that way.
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            return False, value
        checked = [_type_ok(v, item) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, coerced = _type_ok(value, option)
            if ok:
                return True, coerced
        return False, value
    raise TypeError(f"unsupported field type {hint!r}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is not None:
        return str(hint).replace("typing.", "")
    return hint.__name__


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or 'top level'}: expected a mapping, "
                          f"got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"{source}: {path}: unknown key (known: {', '.join(fields)})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, path, source)
            continue
        ok, coerced = _type_ok(value, hint)
        if not ok:
            raise ConfigError(f"{source}: {path}: expected {_type_name(hint)}, got {value!r}")
        kwargs[key] = coerced
    try:
        return cls(**kwargs)
    except _BadValue as bad:
        path = f"{where}.{bad.key}" if where else bad.key
        raise ConfigError(f"{source}: {path}: {bad.problem}") from None


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Build and validate a Config from already-parsed YAML; `source` names it in errors."""
    return _build(Config, data, "", source)


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or a preset name such as 'cromwell-tiny' found in configs/."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = CONFIG_DIR / f"{name_or_path}.yaml"
    if path.suffix == "" and preset.is_file():
        return preset
    presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"{name_or_path}: no such config file or preset (presets: {presets})")


def load_config(name_or_path: str | Path) -> Config:
    """Load a YAML config file (or a preset by name) into validated dataclasses."""
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return config_from_dict(data if data is not None else {}, str(path))


def list_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
