"""Config files: presets load with derived sizes; bad files fail naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.config import (
    CONFIG_DIR,
    ConfigError,
    config_from_dict,
    list_presets,
    load_config,
    parse_count,
)


def test_presets_load_by_name_and_path() -> None:
    assert {"cromwell-300m", "cromwell-smol", "cromwell-tiny"} <= set(list_presets())
    by_name = load_config("cromwell-300m").model
    by_path = load_config(CONFIG_DIR / "cromwell-300m.yaml").model
    assert by_name == by_path


def test_300m_has_the_seed_values_and_derived_sizes() -> None:
    m = load_config("cromwell-300m").model
    lc = m.language
    assert (lc.vocab_size, lc.hidden_size, lc.num_layers) == (50000, 768, 12)
    assert (m.language.num_attention_heads, m.language.num_key_value_heads) == (12, 3)
    assert m.language.head_dim == 64 and m.language.kv_dim == 192
    assert m.vision.head_dim == 64 and m.fusion.head_dim == 64 and m.jepa.head_dim == 64
    assert m.epsilon == 1e-6 and m.rotary_base == 10000 and not m.tie_word_embeddings
    assert m.budget == 300_000_000 and m.vision.budget == 50_000_000
    assert (m.loss.jepa_weight, m.loss.lm_weight) == (0.3, 0.7)


def test_smol_is_the_smollm2_llama_stack() -> None:
    m = load_config("cromwell-smol").model
    assert m.language.num_layers + m.autoregressive.num_layers == 30
    assert (m.language.hidden_size, m.language.head_dim, m.language.kv_dim) == (576, 64, 192)
    assert m.autoregressive.hidden_size == m.language.hidden_size
    assert m.tie_word_embeddings and m.rotary_base == 100000 and m.epsilon == 1e-5


def test_derived_sizes_follow_overrides() -> None:
    cfg = config_from_dict({"model": {"language": {"hidden_size": 1024,
                                                   "num_attention_heads": 16,
                                                   "num_key_value_heads": 4}}})
    assert cfg.model.language.head_dim == 64 and cfg.model.language.kv_dim == 256


def test_seed_spelling_of_epsilon_is_read_as_a_number(tmp_path: Path) -> None:
    path = tmp_path / "eps.yaml"
    path.write_text("model:\n  epsilon: 1e-6\n")  # PyYAML reads this as the string '1e-6'
    assert load_config(path).model.epsilon == 1e-6


def test_parse_count() -> None:
    assert parse_count("50M") == 50_000_000
    assert parse_count("1.5B") == 1_500_000_000
    assert parse_count(1234) == 1234


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _tiny_with(tmp_path: Path, section: str | None, key: str, value: object) -> Path:
    data = yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())
    target = data["model"] if section is None else data["model"][section]
    target[key] = value
    return _write(tmp_path, data)


@pytest.mark.parametrize(
    ("section", "key", "value", "where", "words"),
    [
        ("language", "num_attention_heads", 3, "model.language.num_attention_heads",
         "does not divide"),
        ("language", "num_layers", -2, "model.language.num_layers", "positive"),
        ("vision", "window_size", 0, "model.vision.window_size", "positive"),
        ("fusion", "joint_dim", 60, "model.jepa.hidden_dim", "joint_dim"),
        ("language", "num_key_value_heads", 4, "model.language.num_key_value_heads",
         "multi-head"),
        ("jepa", "ema_momentum_start", 1.5, "model.jepa.ema_momentum_start", "[0, 1]"),
        ("loss", "lm_weight", 0.0, "model.loss.lm_weight", "positive"),
        (None, "norm_type", "layernorm", "model.norm_type", "rmsnorm"),
        (None, "tie_word_embeddings", True, "model.tie_word_embeddings", "hidden_size"),
        ("language", "hidden_size", "big", "model.language.hidden_size", "expected int"),
        (None, "use_cache", "yes", "model.use_cache", "expected bool"),
        (None, "epsilon", {"a": 1}, "model.epsilon", "expected float"),
        (None, "epsilon", True, "model.epsilon", "expected float"),
        ("vision", "image_mean", ["red", 0.4, 0.4], "model.vision.image_mean",
         "expected list[float]"),
        ("vision", "image_std", [0.2, 0.2], "model.vision.image_std", "3 values"),
        ("vision", "parameters", "lots", "model.vision.parameters", "count"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, section: str | None, key: str,
                                               value: object, where: str, words: str) -> None:
    if key == "tie_word_embeddings":  # tying needs equal widths: make them differ
        data = yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())
        data["model"]["tie_word_embeddings"] = True
        data["model"]["autoregressive"]["hidden_size"] = 96
        data["model"]["autoregressive"]["intermediate_size"] = 256
        path = _write(tmp_path, data)
    else:
        path = _tiny_with(tmp_path, section, key, value)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and where in message and words in message


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"model": {"language": {"hidden_sise": 64}}}, "model.language.hidden_sise"),
        ({"model": {"visoin": {}}}, "model.visoin"),
        ({"modle": {}}, "modle"),
        ({"model": {"vision": {"head_dim": 8}}}, "model.vision.head_dim"),  # derived, not input
    ],
)
def test_unknown_keys_name_the_key_and_the_file(tmp_path: Path, data: dict, where: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match="unknown key") as err:
        load_config(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_missing_preset_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file or preset"):
        load_config("cromwell-nonesuch")
    path = tmp_path / "broken.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("model: 3\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


# Seed design §3.1, its base configuration, key by key.
SEED_KEYS = {
    "": ["name", "architecture", "parameters", "attention_type", "rotary_pct", "rotary_base",
         "hidden_act", "norm_type", "epsilon", "initializer_range", "use_cache",
         "tie_word_embeddings"],
    "vision": ["encoder_type", "stem_channels", "cnn_blocks", "vit_blocks", "vision_hidden_dim",
               "vision_attention_heads", "window_size", "parameters"],
    "language": ["vocab_size", "hidden_size", "intermediate_size", "num_layers",
                 "num_attention_heads", "max_position_embeddings", "parameters"],
    "fusion": ["joint_dim", "num_fusion_blocks", "num_attention_heads", "parameters"],
    "jepa": ["hidden_dim", "num_context_layers", "prediction_steps", "parameters"],
    "autoregressive": ["hidden_size", "intermediate_size", "num_layers", "num_attention_heads",
                       "parameters"],
}


def test_300m_file_spells_out_every_seed_field() -> None:
    model = yaml.safe_load((CONFIG_DIR / "cromwell-300m.yaml").read_text())["model"]
    for section, keys in SEED_KEYS.items():
        present = model if not section else model[section]
        missing = [k for k in keys if k not in present]
        assert not missing, f"{section or 'model'} lacks {missing}"
