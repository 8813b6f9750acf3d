"""Torch-free inference: GGUF via mmap, KV cache, decode step, sampling, speculation.

Nothing under this package imports torch: the editor path must start in milliseconds.

    model = engine.runtime.load(path=None, threads=None)   # None: the embedded default model
    model.tokenizer.encode(text) -> list[int]; model.tokenizer.decode(ids) -> str
    model.n_ctx -> int
    model.apply_chat_template(messages, add_generation_prompt=True) -> str
    model.stream(prompt, *, max_tokens, temperature=0.0, stop=None, image=None, cancel=None,
                 speculative=True, top_k=0, top_p=1.0, repetition_penalty=1.0, seed=None)
        -> Iterator[str]                                   # model.generate(...) -> str
    model.stream_tokens(ids, *, max_tokens, ...) -> Iterator[int]; model.generate_tokens(...)
    model.fim -> FimFormat                  # the FIM format read from the file (fim_format.py)
    model.fim_format(override) -> FimFormat # a user setting: a family name or "none"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.runtime.model import Model


def load(
    path: str | None = None,
    threads: int | None = None,
    n_ctx: int | None = None,
    kv_cache: str = "f16",
) -> Model:
    """Load a GGUF model (memory-mapped) with its tokenizer. `path=None` is the embedded
    default model (cromwell-smol when `cromwell models fetch` has built it, else
    SmolLM2-135M-Instruct, fetched into the cache on first use); `threads`
    sets the kernels' thread count for the process (None keeps the current one); `kv_cache`
    is the KV cache's element type, "f16" (half the bytes a step reads at long contexts) or
    "f32"."""
    import gc

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        from engine import _native

        _native.set_num_threads(threads)
    # A load makes ~150k objects that all stay alive (tokens, merges, the vocabulary map):
    # cyclic collections in the middle of it would find nothing and cost a third of the load.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(path, n_ctx, kv_cache)
    finally:
        if paused:
            gc.enable()


def _load(path: str | None, n_ctx: int | None, kv_cache: str) -> Model:
    from pathlib import Path

    import numpy as np

    from engine.runtime import load_cache, model_store
    from engine.runtime.gguf_file import GGUFFile
    from engine.runtime.model import Model
    from engine.tokenizer import from_vocab_spec
    from engine.tokenizers.gguf_import import vocab_spec

    file_path = Path(path) if path is not None else model_store.default_model_path()
    # What an earlier load of this file learnt (load_cache.py): used only if its hash of the
    # file's metadata section still holds, which GGUFFile checks.
    cached = load_cache.read(file_path) if file_path.is_file() else None
    f = GGUFFile(file_path, cached[0] if cached is not None else None)
    if cached is not None and f.layout_reused:
        tokenizer = from_vocab_spec(cached[1], f.path.name)
    else:
        # The tokenizer reads plain lists, as GGUFReader gives them; numeric arrays are views.
        meta = {
            k: v.tolist() if isinstance(v, np.ndarray) else v
            for k, v in f.metadata.items()
            if k.startswith("tokenizer.")
        }
        spec = vocab_spec(meta)
        tokenizer = from_vocab_spec(spec, f.path.name)  # checks the merges before caching
        load_cache.write(file_path, f.layout, spec)
    return Model(f, tokenizer, n_ctx, kv_cache)


__all__ = ["load"]
