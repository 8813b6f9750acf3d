"""Decode and prefill speed of the runtime on one GGUF file, as JSON-ready rows.

Each row is measured in this process at a fixed thread count: model load (GGUF mapped,
weights checked, tokenizer built), prefill of a 512-token prompt (its first token is the time
to first token), then 128 greedy decode steps with speculation off so every step is one
decoder pass. Peak RSS is the process's high-water mark so far. Two extra figures time greedy
decoding on an edit-shaped prompt with prompt-lookup speculation off and on, and one greedy
decoding with 3,000 tokens already cached (a long file as context). With
`image_side` (a `cromwell` model), the row also times an image of that side: its encoding, the
first token of the same prompt fused with it, and 128 decode steps after that prompt.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFILL_TOKENS = 512
DECODE_TOKENS = 128
EDIT_PROMPT_TOKENS = 300  # a 200-token block, then its first 100 tokens again
LONG_CONTEXT = 3000  # cached tokens before the long-context decode figure
LONG_DECODE_TOKENS = 32
IMAGE_SEED = 0


def _dominant_format(model: Any) -> str:
    """The format holding most of the layers' weight bytes (what a file is called by)."""
    sizes: Counter[str] = Counter()
    for layer in model.decoder.weights.layers:
        for m in (layer.wq, layer.wk, layer.wv, layer.wo, layer.w_gate, layer.w_up, layer.w_down):
            sizes[m.fmt] += m.data.nbytes
    return sizes.most_common(1)[0][0]


def _prompt_ids(model: Any, n: int) -> list[int]:
    """n tokens of real source text (this package's own code), so the prompt looks like what an
    editor sends."""
    text = "".join(p.read_text() for p in sorted(Path(__file__).parent.glob("*.py")))
    ids: list[int] = model.tokenizer.encode(text)
    while len(ids) < n:
        ids += ids
    return ids[:n]


def _greedy_steps(decoder: Any, token: int, n: int) -> int:
    """n greedy decode steps after `token` (one decoder pass each); the last token chosen."""
    for _ in range(n):
        token = int(decoder.forward([token]).argmax())
    return token


def _long_context_decode_tok_s(model: Any, prompt: list[int]) -> float | None:
    """Greedy decode speed with LONG_CONTEXT tokens already in the cache (a long file as
    context), where every step also reads that many keys and values per layer; None if the
    model's context is shorter."""
    decoder = model.decoder
    if decoder.n_ctx < LONG_CONTEXT + LONG_DECODE_TOKENS:
        return None
    ids = (prompt * (LONG_CONTEXT // len(prompt) + 1))[:LONG_CONTEXT]
    decoder.cache.rollback(0)
    token = int(decoder.forward(ids).argmax())  # untimed prefill
    t0 = time.perf_counter()
    _greedy_steps(decoder, token, LONG_DECODE_TOKENS)
    seconds = time.perf_counter() - t0
    decoder.cache.rollback(0)
    return LONG_DECODE_TOKENS / seconds


def _edit_decode_tok_s(model: Any, prompt: list[int], speculative: bool) -> float:
    """Greedy decode speed on an edit-shaped prompt: a block of code, then the same block
    again cut in the middle, which the model goes on copying (what prompt lookup is for)."""
    from engine.runtime.generate import decode_n_tokens, prefill
    from engine.runtime.sampler import Sampler

    block = prompt[:EDIT_PROMPT_TOKENS * 2 // 3]
    edit = block + block[:EDIT_PROMPT_TOKENS // 3]
    model.decoder.cache.rollback(0)
    prefill(model.decoder, edit)  # untimed: the loop below finds the prompt in the cache
    t0 = time.perf_counter()
    n = sum(
        1
        for _ in decode_n_tokens(
            model.decoder,
            edit,
            max_tokens=DECODE_TOKENS,
            sampler=Sampler(),
            stop_ids=(),
            speculative=speculative,
        )
    )
    return n / (time.perf_counter() - t0)


def _peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    exec, so a benchmark started from a large parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _image_figures(model: Any, prompt: list[int], side: int, repeats: int) -> dict[str, Any]:
    """Vision encode, first token of `prompt` fused with the image (encode included), and
    greedy decode after it, for a random side x side image; best of `repeats`."""
    import numpy as np

    from engine.runtime.generate import prefill

    if not model.takes_images:
        raise ValueError(f"{model.path} is a text-only {model.architecture!r} model: no image")
    image = np.random.default_rng(IMAGE_SEED).random((side, side, 3), dtype=np.float32)
    decoder, fusion = model.decoder, model.fusion
    encode_s = first_s = decode_s = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        vision = model.encode_image(image)  # an array: encoded every time, never remembered
        t1 = time.perf_counter()
        fusion.set_image(vision)
        token = int(prefill(decoder, prompt, fusion).argmax())
        t2 = time.perf_counter()
        _greedy_steps(decoder, token, DECODE_TOKENS)
        t3 = time.perf_counter()
        encode_s, first_s = min(encode_s, t1 - t0), min(first_s, t2 - t0)
        decode_s = min(decode_s, t3 - t2)
    decoder.text_hook = None  # back to text-only decoding
    decoder.cache.rollback(0)
    return {
        "image_side": side,
        "vision_tokens": int(len(vision)),
        "vision_encode_ms": round(encode_s * 1e3, 1),
        "image_first_token_ms": round(first_s * 1e3, 1),
        "image_decode_tok_s": round(DECODE_TOKENS / decode_s, 2),
    }


def bench_decode(
    path: str | None, threads: int, repeats: int = 2, image_side: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One row: the best of `repeats` runs of each measurement at `threads` threads; with
    `image_side` > 0 also the image figures (`_image_figures`). `progress` hears which
    measurement runs. A model whose context is too short for the prompt is a ValueError."""
    import engine.runtime
    import engine.runtime.model
    import engine.tokenizer  # noqa: F401  (imported before the clock starts: not load time)

    say = progress or (lambda _: None)
    say("loading")
    started = time.perf_counter()
    model = engine.runtime.load(path, threads=threads)
    load_ms = (time.perf_counter() - started) * 1e3
    decoder = model.decoder
    needed = max(PREFILL_TOKENS, EDIT_PROMPT_TOKENS + DECODE_TOKENS)
    if decoder.n_ctx < needed:
        raise ValueError(f"{Path(model.path).name}: its context holds {decoder.n_ctx} tokens; "
                         f"bench decode needs {needed} (a {PREFILL_TOKENS}-token prompt, "
                         f"{DECODE_TOKENS} decoded tokens)")
    prompt = _prompt_ids(model, PREFILL_TOKENS)
    prefill_s = decode_s = decode_cpu_s = float("inf")
    say("prefill and decode")
    for _ in range(repeats):
        decoder.cache.rollback(0)
        t0 = time.perf_counter()
        logits = decoder.forward(prompt)
        first = int(logits.argmax())
        prefill_s = min(prefill_s, time.perf_counter() - t0)
        # Decode after a short prompt, as an editor request's answer starts.
        decoder.cache.rollback(16)
        t0, c0 = time.perf_counter(), time.process_time()
        _greedy_steps(decoder, first, DECODE_TOKENS)
        decode_s = min(decode_s, time.perf_counter() - t0)
        decode_cpu_s = min(decode_cpu_s, time.process_time() - c0)
    say("decode on an edit prompt")
    edit_plain = _edit_decode_tok_s(model, prompt, speculative=False)
    edit_lookup = _edit_decode_tok_s(model, prompt, speculative=True)
    if image_side > 0:
        say(f"a {image_side}x{image_side} image")
    image = _image_figures(model, prompt, image_side, repeats) if image_side > 0 else {}
    # Read before the long-context figure, whose 3,000-token cache and prefill the peers' rows
    # do not have: the same work as theirs.
    peak_rss_mb = _peak_rss_mb()
    say(f"decode after {LONG_CONTEXT} tokens of context")
    long_decode = _long_context_decode_tok_s(model, prompt)
    return {
        "engine": "cromwell",
        "model": Path(model.path).name,
        "format": _dominant_format(model),
        "threads": threads,
        "decode_tok_s": round(DECODE_TOKENS / decode_s, 2),
        "prefill_tok_s": round(PREFILL_TOKENS / prefill_s, 2),
        "first_token_ms": round(prefill_s * 1e3, 1),
        "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        # Not in the peers' rows: greedy decode on a copying (edit) prompt, without and with
        # prompt-lookup speculation.
        # CPU seconds, not wall: on a machine whose cores are shared, this is what one
        # uncontended core would do (meaningful at threads=1 only).
        "decode_tok_s_cpu_time": round(DECODE_TOKENS / decode_cpu_s, 2),
        "edit_decode_tok_s": round(edit_plain, 2),
        "edit_lookup_decode_tok_s": round(edit_lookup, 2),
        # Decode with LONG_CONTEXT tokens of context (None: the model's context is shorter).
        "long_context_decode_tok_s": None if long_decode is None else round(long_decode, 2),
        **image,
    }
