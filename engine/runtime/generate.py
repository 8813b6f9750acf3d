"""The generation loop, in gpt-fast's shape: `prefill`, `decode_one_token`, `decode_n_tokens`
(with prompt-lookup speculation), and `stream_text` on top for stop strings and UTF-8.

Token ids stream out one at a time; a cancel flag is checked before every decoder pass, so a
cancelled request stops within one token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from engine.runtime.cache_reuse import Compute, PrefillStats, Reuse, ReusePlan, plan_reuse
from engine.runtime.decoder import PREFILL_CHUNK, Decoder
from engine.runtime.fusion import Fusion
from engine.runtime.sampler import Sampler
from engine.runtime.speculative import DraftLength, draft_tokens
from engine.runtime.token_healing import SpellingConstraint

# Prompt tokens a cancellable prefill runs between two looks at its cancel flag: a newer
# request waits at most this long for the worker (tens of ms), at little cost in speed.
CANCEL_CHUNK = 128
# A reused prefill's gaps (a keystroke's few tokens) run with its last token in one pass over
# the weights up to this many tokens in all; more run segment by segment, where the prefill
# attention kernel does better than forward_at's row-by-row attention. Measured on the default
# model (1,000 cached tokens, one thread, CPU ms one pass / by segments): 3 tokens 53 / 61,
# 32 tokens 142 / 149, 64 tokens 218 / 199.
ONE_PASS_TOKENS = 32


@dataclass
class SpeculationStats:
    """How prompt lookup fared: batched passes run, tokens drafted, drafted tokens accepted."""

    passes: int = 0
    drafted: int = 0
    accepted: int = 0


def prefill(
    decoder: Decoder,
    ids: Sequence[int],
    fusion: Fusion | None = None,
    reuse_min: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Run the prompt and return the logits of its last token. A prefix already in the KV
    cache (the same file context asked about twice) is reused rather than recomputed; with
    `reuse_min`, so are runs of at least that many tokens cached after a change in the middle
    (cache_reuse.py: moved into place with their keys re-rotated, an approximation as
    llama.cpp's `--cache-reuse`; None or 0 keeps to the exact prefix reuse). What was kept
    and computed is left in `decoder.last_prefill`.

    With `fusion` (a `cromwell` model given an image) the whole prompt runs afresh, fused with
    the image between the language layers and the AR head, and every later token goes through
    fusion's text side. Without it, a cache left by an image prompt is dropped first.
    `cancelled` is checked between pieces of the prompt: PrefillCancelled when it says so."""
    if not ids:
        raise ValueError("the prompt is empty: at least one token is needed")
    if len(ids) >= decoder.n_ctx:
        raise ValueError(f"the prompt has {len(ids)} tokens; the context holds {decoder.n_ctx}")
    started = time.perf_counter()
    cache = decoder.cache
    if fusion is not None:
        logits = decoder.prefill_fused(list(ids), fusion.prefill)
        decoder.text_hook = fusion.text
        decoder.last_prefill = PrefillStats(len(ids), 0, 0, len(ids), _since(started))
        return logits
    if decoder.text_hook is not None:
        decoder.text_hook = None
        cache.rollback(0)
    plan = plan_reuse(cache.tokens, ids, reuse_min)
    logits = _run_plan(decoder, plan, ids, cancelled)
    decoder.last_prefill = PrefillStats(
        len(ids), plan.prefix, plan.shifted, plan.computed, _since(started)
    )
    return logits


class PrefillCancelled(RuntimeError):
    """The prefill stopped at a cancel; the cache keeps every position computed before it."""


def _run_plan(
    decoder: Decoder,
    plan: ReusePlan,
    ids: Sequence[int],
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Bring the cache to `ids` as planned: kept runs moved to their rows first, then the
    segments in position order, a computed one at the cache's end. A forward writes only its
    own rows and attends to the rows before them, so a gap computed before a kept run neither
    sees nor overwrites it. Gaps of ONE_PASS_TOKENS or fewer in all run with the last token in
    one pass over the weights (Decoder.forward_at), not one pass each. With `cancelled`,
    computed segments run in CANCEL_CHUNK pieces and a cancel between two ends the prefill
    there, the cache valid up to that point (the next prompt reuses it: a superseded
    request's prefill is not wasted)."""
    cache = decoder.cache
    moves = [(r.old_start, r.new_start, r.length) for r in plan.reused]
    if moves:
        cache.move_rows(moves, decoder.rotate_keys)
    cache.rollback(plan.prefix)
    step = CANCEL_CHUNK if cancelled is not None else PREFILL_CHUNK
    gaps = [s for s in plan.segments if isinstance(s, Compute)]
    try:
        if len(gaps) > 1 and plan.computed <= min(step, ONE_PASS_TOKENS):
            if cancelled is not None and cancelled():
                raise PrefillCancelled("prefill cancelled")
            rows = [i for s in gaps for i in range(s.new_start, s.new_start + s.length)]
            logits = decoder.forward_at([ids[i] for i in rows], rows)
            cache.extend_moved(ids[plan.prefix :])
            return logits
        for segment in plan.segments:
            part = ids[segment.new_start : segment.new_start + segment.length]
            if isinstance(segment, Reuse):
                cache.extend_moved(part)
                continue
            for at in range(0, len(part), step):
                if cancelled is not None and cancelled():
                    raise PrefillCancelled("prefill cancelled")
                logits = decoder.forward(list(part[at : at + step]))
    except PrefillCancelled:
        raise  # positions before cache.length are whole: keep them
    except BaseException:
        cache.rollback(plan.prefix)  # rows past the prefix may be half written
        raise
    return logits


def _since(started: float) -> float:
    return time.perf_counter() - started


def decode_one_token(decoder: Decoder, token: int) -> np.ndarray:
    return decoder.forward([token])


def decode_n_tokens(
    decoder: Decoder,
    prompt: Sequence[int],
    *,
    max_tokens: int,
    sampler: Sampler,
    stop_ids: Iterable[int] = (),
    cancel: threading.Event | None = None,
    speculative: bool = True,
    stats: SpeculationStats | None = None,
    fusion: Fusion | None = None,
    adaptive: bool = True,
    reuse_min: int | None = None,
    spelling: SpellingConstraint | None = None,
) -> Iterator[int]:
    """Generate up to `max_tokens` ids after `prompt`, stopping before any id in `stop_ids`.

    With a greedy sampler and `speculative`, drafts from prompt lookup are verified in one
    batched pass: position i of that pass predicts the token after draft[:i], so every draft
    token that equals the model's own choice is accepted, the first one that does not is
    replaced by that choice, and the cache is rolled back past it. The output is the same
    token sequence plain greedy decoding gives. `adaptive` pauses drafting while it yields
    tokens slower than plain steps do (the decoder's `LookupPayoff`, which learns across
    generations); without it every token for which a draft is found is verified with it.
    `reuse_min` is prefill's: keep cached runs of that many tokens after a change.
    `spelling` (token healing) holds the first tokens to spelling its text; no drafts are
    verified until it is spelt, and the tokens that spell it are not counted in `max_tokens`.
    """
    stops = frozenset(stop_ids)
    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    history = list(prompt)
    if max_tokens <= 0 or cancelled():
        return
    try:
        logits = prefill(decoder, prompt, fusion, reuse_min, cancelled if cancel else None)
    except PrefillCancelled:
        return

    spelt = 0  # tokens chosen under `spelling`: not counted in max_tokens

    def choose(logits: np.ndarray) -> int:
        nonlocal spelt
        if spelling is None or not spelling.active:
            return sampler.sample(logits, history)
        token = sampler.sample(spelling.mask(logits), history)
        spelling.advance(token)
        spelt += 1
        return token

    token = choose(logits)
    speculate = speculative and sampler.params.greedy
    draft_length = DraftLength()
    payoff = decoder.lookup_payoff if speculate and adaptive else None
    if payoff is not None:
        payoff.start()
    produced = 0
    while True:
        if token in stops:
            return
        yield token
        produced += 1
        history.append(token)
        room = decoder.n_ctx - decoder.cache.length  # free positions; `token` needs one
        if produced - spelt >= max_tokens or room <= 0 or cancelled():
            return
        limit = min(draft_length.n, room - 1, max_tokens - produced + spelt, PREFILL_CHUNK - 1)
        drafting = speculate and (payoff is None or payoff.drafting())
        drafting = drafting and not (spelling is not None and spelling.active)
        if speculate and not drafting:
            draft_length.restart()
        draft = draft_tokens(history, limit) if drafting else []
        if not draft:
            started = time.perf_counter()
            logits = decode_one_token(decoder, token)
            if payoff is not None:
                payoff.record(time.perf_counter() - started, 1)
            token = choose(logits)
            continue
        base = decoder.cache.length
        if stats is not None:
            stats.passes += 1
            stats.drafted += len(draft)
        started = time.perf_counter()
        logits = decoder.forward([token, *draft], all_logits=True, as_decode=True)
        pass_s = time.perf_counter() - started
        for i in range(len(draft) + 1):
            choice = sampler.sample(logits[i], history)
            if i == len(draft) or choice != draft[i]:
                break
            # draft[i] is the model's own choice: emit it as plain decoding would.
            if stats is not None:
                stats.accepted += 1
            if choice in stops:
                decoder.cache.rollback(base + 1 + i)
                return
            yield choice
            produced += 1
            history.append(choice)
            if produced - spelt >= max_tokens or cancelled():
                decoder.cache.rollback(base + 2 + i)
                return
        decoder.cache.rollback(base + 1 + i)  # keep `token` and the accepted draft[:i]
        draft_length.update(len(draft), i)
        if payoff is not None:
            payoff.record(pass_s, i + 1)
        token = choice


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that could be the start of a stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def stream_text(
    decode: Callable[[list[int]], str], tokens: Iterable[int], stop: Sequence[str] = ()
) -> Iterator[str]:
    """Turn a token stream into text pieces. A piece never ends inside a UTF-8 character, and
    text that might begin a stop string is held back until it is known not to; at a stop
    string the stream ends, the stop string itself not included.

    Each step decodes only the tokens since the last complete piece, re-decoded together with
    the piece before them (so a tokenizer that drops a leading space at the start of a
    sequence still spells the join right): the cost per token stays constant."""
    stop = [s for s in stop if s]
    longest_stop = max((len(s) for s in stop), default=0)
    ids: list[int] = []
    prefix_at = read_at = 0  # ids[prefix_at:read_at] is context, ids[read_at:] is new
    text = ""  # everything decoded so far
    emitted = 0  # how much of `text` has been yielded
    token_iter = iter(tokens)
    try:
        for token in token_iter:
            ids.append(token)
            context = decode(ids[prefix_at:read_at])
            fresh = decode(ids[prefix_at:])
            if fresh.endswith("\ufffd") or len(fresh) <= len(context):
                continue  # a multi-byte character split across tokens, or nothing visible
            text += fresh[len(context) :]
            prefix_at, read_at = read_at, len(ids)
            search_from = max(0, emitted - longest_stop)
            hits = [i for s in stop if (i := text.find(s, search_from)) >= 0]
            if hits:
                end = min(hits)
                if end > emitted:
                    yield text[emitted:end]
                return
            safe = len(text) - _held_back(text[-longest_stop:] if stop else "", stop)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        fresh = decode(ids[prefix_at:])
        context = decode(ids[prefix_at:read_at])
        text += fresh[len(context) :] if fresh.startswith(context) else ""
        if len(text) > emitted:
            yield text[emitted:]
    finally:
        close = getattr(token_iter, "close", None)
        if close is not None:
            close()
