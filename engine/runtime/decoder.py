"""The llama-family decoder on the native kernels: one forward over n new tokens at a position.

Three plain structures, as in llama2.c: the config (`DecoderConfig`), the weights
(`DecoderWeights`, views of the mapped file) and the run state (`RunState`, every activation
buffer allocated once). A decode step (n = 1) is one native call over all layers
(`_native.DecodeStep`, matrix-vector kernels); the same step as a Python loop over the kernels
stays beside it (`fused=False`) as its readable twin and test partner. A speculative
verification (a draft's few tokens, each computed as its decode step would be) is one native
call too (`DecodeStep.run_span`); a prefill runs matrix-matrix kernels on [n, ...] buffers from
Python. Every kernel
writes into a preallocated buffer (`out=`), so a step allocates almost nothing. An architecture
whose blocks the fused step does not compute (starcoder2: LayerNorm, a GELU MLP, biases;
DecoderConfig.fused_step_runs_it) decodes on the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine import _native as K
from engine.runtime.cache_reuse import PrefillStats
from engine.runtime.decoder_config import DecoderConfig
from engine.runtime.decoder_weights import DecoderWeights, ExpertWeights, LayerWeights, Matrix
from engine.runtime.gguf_file import GGUFFile
from engine.runtime.kv_cache import KVCache
from engine.runtime.speculative import MAX_DRAFT, LookupPayoff

# Prompts longer than this are prefilled in chunks, which bounds the [n, ffn_dim] buffers.
PREFILL_CHUNK = 512
# Up to this many rows `matmul` computes each row with the decode step's kernels, bit for bit
# what matvec gives; from one more on it takes the prefill GEMM (integer for quantized weights,
# float for F16/F32), whose sums differ in the last bits. A speculative verification feeds at
# most this many rows per call so its logits are those of decode steps. Defined once, in
# native/src/matmul.h, so the two cannot drift apart.
MATMUL_DECODE_ROWS: int = K.MATMUL_DECODE_ROWS
# The most tokens one fused call runs: a speculative draft of speculative.MAX_DRAFT tokens
# after the last decoded one.
FUSED_MAX_TOKENS = MAX_DRAFT + 1
# Keys moved in the cache are turned in at most this many groups (one per kernel thread, and
# more rows than any thread count divides).
ROTATE_GROUPS = 32


class RunState:
    """Activation buffers for up to `n_max` tokens at once; views of the first n rows are made
    per forward, the arrays themselves never."""

    def __init__(self, cfg: DecoderConfig, n_max: int) -> None:
        self.n_max = n_max
        self.x = np.zeros((n_max, cfg.dim), np.float32)  # the residual stream
        self.xb = np.zeros((n_max, cfg.dim), np.float32)  # normed input of a sub-block
        self.xb2 = np.zeros((n_max, cfg.dim), np.float32)  # output of a sub-block
        self.q = np.zeros((n_max, cfg.q_dim), np.float32)
        self.att = np.zeros((n_max, cfg.q_dim), np.float32)
        self.hb = np.zeros((n_max, cfg.ffn_dim), np.float32)  # gate, then swiglu(gate, up)
        self.hb2 = np.zeros((n_max, cfg.ffn_dim), np.float32)  # up
        # New K/V rows as computed, for a half cache (rounded into it after RoPE)
        self.k_new = np.zeros((n_max, cfg.n_kv_heads, cfg.head_dim), np.float32)
        self.v_new = np.zeros((n_max, cfg.n_kv_heads, cfg.head_dim), np.float32)
        self.logits = np.zeros((n_max, cfg.vocab_size), np.float32)


class Decoder:
    """Runs the decoder over a KV cache. Not thread-safe: one forward at a time."""

    def __init__(
        self, f: GGUFFile, n_ctx: int | None = None, fused: bool = True, kv_cache: str = "f16",
        variant: str = "",
    ) -> None:
        """`fused`: run decode steps as one native call over all layers (`_native.DecodeStep`)
        instead of the per-kernel Python loop; both compute the same logits bit for bit.
        `kv_cache`: "f16" (half the bytes per step at long contexts) or "f32". `variant`:
        the prefix of the file's second set of matrices to run on (DecoderWeights)."""
        self.file = f
        self.cfg = cfg = DecoderConfig.from_gguf(f)
        self.weights = DecoderWeights.from_gguf(f, cfg, variant)
        self.n_ctx = min(n_ctx or cfg.default_n_ctx, cfg.n_ctx_train)
        self.cache = KVCache(cfg.n_layers, self.n_ctx, cfg.n_kv_heads, cfg.head_dim, kv_cache)
        self.state = RunState(cfg, PREFILL_CHUNK)
        self.positions = np.arange(self.n_ctx, dtype=np.int32)
        self.scale = cfg.attention_scale
        self.n_rot = cfg.n_rot if cfg.n_rot != cfg.head_dim else -1
        # Per-frequency RoPE divisors: Llama 3's, or phi3's LongRoPE factors for this context
        # (short within the context they were trained for, long beyond, as llama.cpp chooses)
        w = self.weights
        long_context = self.n_ctx > cfg.n_ctx_orig
        self.rope_freqs = (
            w.rope_freqs
            if w.rope_freqs is not None
            else (w.rope_factors_long if long_context else w.rope_factors_short)
        )
        # An architecture the fused step does not compute (starcoder2) decodes on the loop.
        self.fused_step = self._make_fused_step() if fused and cfg.fused_step_runs_it else None
        # A `cromwell` model with an image: before layer `fusion_at` (the AR head's first), the
        # rows of tokens after the prompt go through fusion's text side (`text_hook`, in place).
        # A fused decode step then runs in two spans around the hook (`DecodeStep.run_span`).
        self.fusion_at: int | None = None
        self.text_hook: Callable[[np.ndarray], None] | None = None
        # Whether prompt-lookup drafts pay on this machine and model, learnt across generations.
        self.lookup_payoff = LookupPayoff()
        # What the last prefill (generate.prefill) computed and what it kept from the cache.
        self.last_prefill: PrefillStats | None = None

    def _make_fused_step(self) -> K.DecodeStep:
        cfg, w = self.cfg, self.weights
        if not cfg.fused_step_runs_it:
            raise ValueError(f"the fused decode step does not run {cfg.arch!r} models")

        def mat(m: Matrix | None) -> K.DecodeMatrix:
            assert m is not None  # every matrix of the fused step's architectures
            return K.DecodeMatrix(m.data, m.fmt, m.rows, m.k)

        layers = [
            K.DecodeLayerWeights(
                attn_norm=lw.attn_norm,
                wq=mat(lw.wq),
                wk=mat(lw.wk),
                wv=mat(lw.wv),
                bq=lw.bq,
                bk=lw.bk,
                bv=lw.bv,
                q_norm=lw.q_norm,
                k_norm=lw.k_norm,
                wo=mat(lw.wo),
                ffn_norm=lw.ffn_norm,
                w_gate=mat(lw.w_gate),
                w_up=mat(lw.w_up),
                w_down=mat(lw.w_down),
            )
            for lw in w.layers
        ]
        dims = K.DecodeDims(
            dim=cfg.dim,
            n_heads=cfg.n_heads,
            n_kv_heads=cfg.n_kv_heads,
            head_dim=cfg.head_dim,
            ffn_dim=cfg.ffn_dim,
            vocab=cfg.vocab_size,
            n_rot=cfg.n_rot,
            n_ctx=self.n_ctx,
            norm_eps=cfg.norm_eps,
            rope_base=cfg.rope_base,
            interleaved=cfg.rope_layout == "interleaved",
            scale=self.scale,
            rope_freq_scale=cfg.rope_freq_scale,
            sliding_window=cfg.sliding_window,
        )
        return K.DecodeStep(
            layers,
            mat(w.token_embd),
            mat(w.output),
            w.output_norm,
            dims,
            self.cache.k,
            self.cache.v,
            FUSED_MAX_TOKENS,
            rope_freq_factors=self.rope_freqs,
        )

    def rotate_keys(self, k: np.ndarray, shift: int) -> None:
        """Move float32 keys k[n, n_kv_heads, head_dim] by `shift` positions in place: RoPE
        rotations compose, so a key rotated for position p turned by `shift` is the key
        rotated for p + shift (KVCache.move_rows calls this for rows kept from a prompt)."""
        cfg = self.cfg
        if not k.flags.c_contiguous:  # a reshaped copy would be turned instead
            raise ValueError("rotate_keys: expected a C-contiguous array")
        if len(k) == 0:
            return
        # Every row turns by the same angles: rope's rows as a few groups of many heads, so
        # its sines and cosines are computed once per group, not once per row (6x faster).
        if cfg.swa_layers:  # layers of two RoPE bases (gemma2/3): each layer's rows by its own
            for layer, rows in enumerate(k.reshape(cfg.n_layers, -1, cfg.head_dim)):
                self._rope(rows[None], np.full(1, shift, np.int32), layer)
            return
        groups = next(g for g in range(min(ROTATE_GROUPS, len(k)), 0, -1) if len(k) % g == 0)
        rows = k.reshape(groups, -1, cfg.head_dim)
        self._rope(rows, np.full(groups, shift, np.int32), 0)

    def _rope(self, x: np.ndarray, positions: np.ndarray, layer: int) -> None:
        """RoPE in place on x[n, heads, head_dim] for `layer`, with the file's scaling (linear,
        Llama 3's per-frequency factors; gemma3's windowed layers' own base) as the fused step
        applies it."""
        cfg = self.cfg
        base, freq_scale = cfg.layer_rope(layer)
        K.rope(x, positions, base, cfg.rope_layout, self.n_rot, self.rope_freqs, freq_scale)

    def _attend(
        self,
        q: np.ndarray,
        k_cache: np.ndarray,
        v_cache: np.ndarray,
        end: int,
        out: np.ndarray,
        layer: int,
    ) -> None:
        """One query row q[n_heads, head_dim] over cache rows [0, end), or over the last
        `sliding_window` of them in a windowed layer."""
        window = self.cfg.layer_window(layer)
        start = max(0, end - window) if window else 0
        if self.cfg.attn_softcap:
            self._attend_softcapped(q, k_cache[start:end], v_cache[start:end], out)
            return
        K.attention_decode(q, k_cache[start:], v_cache[start:], end - start, self.scale, out=out)

    def _attend_softcapped(
        self, q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray
    ) -> None:
        """gemma2's attention of one query row over keys k[T, n_kv_heads, head_dim]: scores
        soft-capped (cap * tanh(s / cap)) before the softmax. numpy, as the native attention
        kernels have no cap: it costs a few T x head_dim products per head, which for an
        editor's context stay small next to the layer's weight products."""
        cfg = self.cfg
        group = cfg.n_heads // cfg.n_kv_heads
        keys = np.asarray(k, np.float32)
        values = np.asarray(v, np.float32)
        qh = q.reshape(cfg.n_kv_heads, group, cfg.head_dim)
        scores = np.einsum("kgd,tkd->kgt", qh, keys) * self.scale
        scores = cfg.attn_softcap * np.tanh(scores / cfg.attn_softcap)
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        out[:] = np.einsum("kgt,tkd->kgd", probs, values).reshape(cfg.n_heads, cfg.head_dim)

    # --- the forward ---------------------------------------------------------------------------

    def forward(
        self, ids: list[int] | np.ndarray, all_logits: bool = False, as_decode: bool = False
    ) -> np.ndarray:
        """Run `ids` at the next positions of the cache and append them to it. Returns the
        logits f32[vocab] of the last token, or f32[n, vocab] for every token if `all_logits`.
        `as_decode` computes each position exactly as a decode step would (speculative
        verification: its greedy choices must equal plain decoding's), still batching the
        weight reads. The returned array is a buffer of the run state: valid until the next
        forward."""
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        n = len(ids)
        if n == 0:
            raise ValueError("forward needs at least one token")
        self.cache.check_room(n)
        if n > PREFILL_CHUNK:
            if all_logits:
                raise ValueError(f"all_logits needs at most {PREFILL_CHUNK} tokens, got {n}")
            for start in range(0, n, PREFILL_CHUNK):
                logits = self.forward(ids[start : start + PREFILL_CHUNK], as_decode=as_decode)
            return logits
        pos = self.cache.length
        # One token, or a speculative draft whose every row is wanted: one native call.
        fused = n == 1 or (as_decode and all_logits and n <= FUSED_MAX_TOKENS)
        if fused and self.fused_step is not None and self._fused_spans_fit():
            self._fused_run(ids, pos)
            self.cache.length = pos + n
            self.cache.tokens.extend(int(t) for t in ids)
            return self.state.logits[:n] if all_logits else self.state.logits[n - 1]
        if n == 1:
            self._decode_step(ids, pos)
        else:
            self._prefill_step(ids, pos, as_decode)
        self.cache.length = pos + n
        self.cache.tokens.extend(int(t) for t in ids)
        return self._logits(n, all_logits, as_decode)

    def forward_at(self, ids: list[int] | np.ndarray, rows: list[int] | np.ndarray) -> np.ndarray:
        """Run `ids` at the cache rows `rows` (increasing) in one pass over the weights, the
        rows between them left as they are: the gaps between runs kept from an earlier prompt
        and its last token (cache_reuse.py), which one forward per gap would each cost a pass.
        Token i attends to rows [0, rows[i]]: those not among `rows` must hold their final
        keys and values. The cache's length and tokens are the caller's to set. Returns the
        last token's logits (a run state buffer, as forward's)."""
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        at = np.ascontiguousarray(rows, dtype=np.int32)
        n = len(ids)
        if not 0 < n <= PREFILL_CHUNK or len(at) != n:
            raise ValueError(f"forward_at takes 1 to {PREFILL_CHUNK} tokens, one row each")
        if at[0] < 0 or at[-1] >= self.n_ctx or np.any(np.diff(at) <= 0):
            raise ValueError(f"forward_at: rows must increase within the context of {self.n_ctx}")
        if self.fused_step is not None and self.text_hook is None and n <= FUSED_MAX_TOKENS:
            # A keystroke's few tokens: one native call, each row as its decode step computes
            # it, where the layer loop here would cost about two decode steps.
            logits = self.state.logits[0]
            self.fused_step.run_rows(ids, at, logits)
            return logits
        self._prefill_step(ids, int(at[0]), False, rows=at)
        return self._logits(n, False)

    def _fused_spans_fit(self) -> bool:
        at = self.fusion_at
        return self.text_hook is None or (at is not None and 0 < at < self.cfg.n_layers)

    def _fused_run(self, ids: np.ndarray, pos: int) -> None:
        """`ids` (a token, or a speculative draft's few) in one native call, each computed as
        its decode step computes it: the same kernels in the same order as _decode_step, so
        the same logits. A model with an image runs two spans around fusion's text side, which
        they only hand the residual stream to and take it back from."""
        assert self.fused_step is not None
        n, layers = len(ids), self.cfg.n_layers
        at, hook = self.fusion_at, self.text_hook
        x, logits = self.state.x[:n], self.state.logits[:n]
        if hook is None or at is None:
            self.fused_step.run_span(ids, pos, 0, layers, x, logits)
            return
        self.fused_step.run_span(ids, pos, 0, at, x)
        hook(x)
        self.fused_step.run_span(ids, pos, at, layers, x, logits)

    def _decode_step(self, ids: np.ndarray, pos: int) -> None:
        s, w, cfg = self.state, self.weights, self.cfg
        x, xb, xb2 = s.x[0], s.xb[:1], s.xb2[0]
        q, att, hb, hb2 = s.q[0], s.att[0], s.hb[0], s.hb2[0]
        q3 = s.q[:1].reshape(1, cfg.n_heads, cfg.head_dim)
        q2 = q3[0]
        att2 = s.att[0].reshape(cfg.n_heads, cfg.head_dim)
        positions = self.positions[pos : pos + 1]
        x[:] = K.get_rows(w.token_embd.data, w.token_embd.fmt, ids, cfg.dim)[0]
        self._scale_embedding(s.x[:1])
        for i, lw in enumerate(w.layers):
            if i == self.fusion_at and self.text_hook is not None:
                self.text_hook(s.x[:1])
            k_cache, v_cache = self.cache.k_layers[i], self.cache.v_layers[i]
            k_new, v_new = self._new_rows(k_cache, v_cache, pos, 1)  # (1, n_kv_heads, head_dim)
            self._norm(s.x[:1], lw.attn_norm, lw.attn_norm_b, xb)
            K.matvec(lw.wq.data, lw.wq.fmt, xb[0], out=q)
            K.matvec(lw.wk.data, lw.wk.fmt, xb[0], out=k_new.reshape(-1))
            K.matvec(lw.wv.data, lw.wv.fmt, xb[0], out=v_new.reshape(-1))
            if lw.bq is not None:
                self._add_qkv_bias(lw, q, k_new.reshape(-1), v_new.reshape(-1))
            self._norm_heads(lw, q3, k_new)
            self._rope(q3, positions, i)
            self._rope(k_new, positions, i)
            self._store_rows(k_cache, v_cache, k_new, v_new, pos)
            self._attend(q2, k_cache, v_cache, pos + 1, att2, i)
            K.matvec(lw.wo.data, lw.wo.fmt, att, out=xb2)
            self._add_bias(xb2, lw.bo)
            self._post_norm(s.xb2[:1], lw.post_attn_norm)
            self._scale_residual(xb2)
            K.add(x, xb2, out=x)
            self._norm(s.x[:1], lw.ffn_norm, lw.ffn_norm_b, xb)
            if lw.experts is not None:
                self._moe(lw.experts, xb, s.xb2[:1], self._linear_as_decode)
            else:
                assert lw.w_up is not None and lw.w_down is not None
                if lw.w_gate is None:
                    K.matvec(lw.w_up.data, lw.w_up.fmt, xb[0], out=hb)
                    self._gelu_tanh(hb, lw.b_up)
                else:
                    K.matvec(lw.w_gate.data, lw.w_gate.fmt, xb[0], out=hb)
                    K.matvec(lw.w_up.data, lw.w_up.fmt, xb[0], out=hb2)
                    self._gated(hb, hb2)
                K.matvec(lw.w_down.data, lw.w_down.fmt, hb, out=xb2)
            self._add_bias(xb2, lw.b_down)
            self._post_norm(s.xb2[:1], lw.post_ffn_norm)
            self._scale_residual(xb2)
            K.add(x, xb2, out=x)

    def _prefill_step(
        self,
        ids: np.ndarray,
        pos: int,
        as_decode: bool,
        lo: int = 0,
        hi: int | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Layers [lo, hi) over n tokens at rows pos.., or at `rows` (increasing, forward_at);
        from lo > 0 the caller has put their input in x."""
        s, w, cfg = self.state, self.weights, self.cfg
        n = len(ids)
        x, xb, xb2 = s.x[:n], s.xb[:n], s.xb2[:n]
        q, att, hb, hb2 = s.q[:n], s.att[:n], s.hb[:n], s.hb2[:n]
        q3 = q.reshape(n, cfg.n_heads, cfg.head_dim)
        att3 = att.reshape(n, cfg.n_heads, cfg.head_dim)
        positions = self.positions[pos : pos + n] if rows is None else rows
        linear = self._linear_as_decode if as_decode else self._linear
        group = self._linear_group_as_decode if as_decode else self._linear_group
        attention = self._attention_as_decode if as_decode else self._attention
        if lo == 0:
            x[:] = K.get_rows(w.token_embd.data, w.token_embd.fmt, ids, cfg.dim)
            self._scale_embedding(x)
        for i in range(lo, cfg.n_layers if hi is None else hi):
            lw = w.layers[i]
            if i == self.fusion_at and self.text_hook is not None:
                self.text_hook(x)
            k_cache, v_cache = self.cache.k_layers[i], self.cache.v_layers[i]
            if rows is None:
                k_new, v_new = self._new_rows(k_cache, v_cache, pos, n)  # (n, kv_heads, hd)
            else:
                k_new, v_new = s.k_new[:n], s.v_new[:n]
            self._norm(x, lw.attn_norm, lw.attn_norm_b, xb)
            kv_shape = (n, cfg.kv_dim)
            group([lw.wq, lw.wk, lw.wv], xb, [q, k_new.reshape(kv_shape), v_new.reshape(kv_shape)])
            if lw.bq is not None:
                self._add_qkv_bias(lw, q, k_new.reshape(n, -1), v_new.reshape(n, -1))
            self._norm_heads(lw, q3, k_new)
            self._rope(q3, positions, i)
            self._rope(k_new, positions, i)
            if rows is None:
                self._store_rows(k_cache, v_cache, k_new, v_new, pos)
                attention(q3, k_cache, v_cache, pos, att3, i)
            else:
                k_cache[rows], v_cache[rows] = k_new, v_new  # a half cache rounds to nearest
                for j, row in enumerate(rows):
                    self._attend(q3[j], k_cache, v_cache, int(row) + 1, att3[j], i)
            linear(lw.wo, att, out=xb2)
            self._add_bias(xb2, lw.bo)
            self._post_norm(xb2, lw.post_attn_norm)
            self._scale_residual(xb2)
            K.add(x, xb2, out=x)
            self._norm(x, lw.ffn_norm, lw.ffn_norm_b, xb)
            if lw.experts is not None:
                self._moe(lw.experts, xb, xb2, linear)
            else:
                assert lw.w_up is not None and lw.w_down is not None
                if lw.w_gate is None:
                    linear(lw.w_up, xb, out=hb)
                    self._gelu_tanh(hb, lw.b_up)
                else:
                    group([lw.w_gate, lw.w_up], xb, [hb, hb2])
                    self._gated(hb, hb2)
                linear(lw.w_down, hb, out=xb2)
            self._add_bias(xb2, lw.b_down)
            self._post_norm(xb2, lw.post_ffn_norm)
            self._scale_residual(xb2)
            K.add(x, xb2, out=x)

    def prefill_fused(self, ids: list[int], fuse: Callable[[np.ndarray], None]) -> np.ndarray:
        """Run a whole prompt from position 0 with `fuse` applied to all of its rows at once
        between the language layers and the AR head (V->L reads the whole prompt), in chunks
        on either side. Returns the last token's logits."""
        ids_arr = np.ascontiguousarray(ids, dtype=np.int32)
        n_all, at = len(ids_arr), self.fusion_at
        if at is None:
            raise ValueError("this model has no fusion point")
        self.cache.rollback(0)
        self.cache.check_room(n_all)
        self.text_hook = None  # the prompt is fused by `fuse`; the caller sets the hook after
        s = self.state
        h = np.empty((n_all, self.cfg.dim), np.float32)  # the language stream of the prompt
        chunks = [(a, min(a + PREFILL_CHUNK, n_all)) for a in range(0, n_all, PREFILL_CHUNK)]
        for a, b in chunks:
            self._prefill_step(ids_arr[a:b], a, False, 0, at)
            h[a:b] = s.x[: b - a]
        fuse(h)
        for a, b in chunks:
            s.x[: b - a] = h[a:b]
            self._prefill_step(ids_arr[a:b], a, False, at, None)
        self.cache.length = n_all
        self.cache.tokens[:] = [int(t) for t in ids_arr]
        return self._logits(chunks[-1][1] - chunks[-1][0], False)

    def _new_rows(
        self, k_cache: np.ndarray, v_cache: np.ndarray, pos: int, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where the n new K/V rows are computed: in place in a float cache, in the run
        state's buffers for a half one (_store_rows then rounds them into it)."""
        if self.cache.half:
            return self.state.k_new[:n], self.state.v_new[:n]
        return k_cache[pos : pos + n], v_cache[pos : pos + n]

    def _store_rows(
        self,
        k_cache: np.ndarray,
        v_cache: np.ndarray,
        k_new: np.ndarray,
        v_new: np.ndarray,
        pos: int,
    ) -> None:
        if self.cache.half:  # round to nearest, as the fused step rounds its rows
            n = len(k_new)
            k_cache[pos : pos + n] = k_new
            v_cache[pos : pos + n] = v_new

    @staticmethod
    def _linear(m: Matrix, x: np.ndarray, out: np.ndarray) -> None:
        K.matmul(m.data, m.fmt, x, out=out)

    @staticmethod
    def _linear_group(ms: list[Matrix], x: np.ndarray, outs: list[np.ndarray]) -> None:
        """Matrices that read the same x (query, key and value; gate and up): x quantized
        once and one pool job for all, each result what _linear gives."""
        K.matmul_group([m.data for m in ms], [m.fmt for m in ms], x, outs)

    @classmethod
    def _linear_group_as_decode(
        cls, ms: list[Matrix], x: np.ndarray, outs: list[np.ndarray]
    ) -> None:
        for m, out in zip(ms, outs, strict=True):
            cls._linear_as_decode(m, x, out)

    @staticmethod
    def _linear_as_decode(m: Matrix, x: np.ndarray, out: np.ndarray) -> None:
        for i in range(0, len(x), MATMUL_DECODE_ROWS):
            rows = slice(i, i + MATMUL_DECODE_ROWS)
            K.matmul(m.data, m.fmt, x[rows], out=out[rows])

    def _attention(
        self,
        q: np.ndarray,
        k_cache: np.ndarray,
        v_cache: np.ndarray,
        pos: int,
        out: np.ndarray,
        layer: int,
    ) -> None:
        n = len(q)
        window = self.cfg.layer_window(layer)
        if (window and pos + n > window) or self.cfg.attn_softcap:
            # The causal kernel has no window and no cap: such rows are attended one by one
            # (of windows, only prompts longer than the window, e.g. Mistral's 4096).
            self._attention_as_decode(q, k_cache, v_cache, pos, out, layer)
            return
        K.attention_prefill(
            q, k_cache[: pos + n], v_cache[: pos + n], pos, True, self.scale, out=out
        )

    def _attention_as_decode(
        self,
        q: np.ndarray,
        k_cache: np.ndarray,
        v_cache: np.ndarray,
        pos: int,
        out: np.ndarray,
        layer: int,
    ) -> None:
        for i in range(len(q)):
            self._attend(q[i], k_cache, v_cache, pos + i + 1, out[i], layer)

    def _norm(
        self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, out: np.ndarray
    ) -> None:
        """The block norm: RMSNorm, or starcoder2's LayerNorm with a bias."""
        if self.cfg.layer_norm:
            K.layer_norm(x, weight, bias, self.cfg.norm_eps, out=out)
        else:
            K.rms_norm(x, weight, self.cfg.norm_eps, out=out)

    def _scale_embedding(self, x: np.ndarray) -> None:
        if self.cfg.embedding_scale != 1.0:  # gemma: sqrt(dim); granite: its multiplier
            np.multiply(x, np.float32(self.cfg.embedding_scale), out=x)

    def _post_norm(self, y: np.ndarray, weight: np.ndarray | None) -> None:
        """gemma2/gemma3's RMSNorm of a sub-block's output y[n, dim], in place."""
        if weight is not None:
            K.rms_norm(y, weight, self.cfg.norm_eps, out=y)

    def _gated(self, gate: np.ndarray, up: np.ndarray) -> None:
        """gate = act(gate) * up in place: SwiGLU, or the gemma family's tanh GELU."""
        if self.cfg.ffn_act == "gelu":
            self._gelu_tanh(gate, None)
            np.multiply(gate, up, out=gate)
        else:
            K.swiglu(gate, up, out=gate)

    def _moe(
        self,
        experts: ExpertWeights,
        x: np.ndarray,
        out: np.ndarray,
        linear: Callable[[Matrix, np.ndarray, np.ndarray], None],
    ) -> None:
        """qwen3moe's MLP of x[n, dim] into out[n, dim]: each token's n_expert_used best experts
        by the router's softmax, their SwiGLU outputs summed with the chosen probabilities
        renormalized. Only the chosen experts' matrices are read, each once for all the rows
        that chose it. The outputs are summed per token in rank order, so a row's result does
        not depend on the rows beside it (a decode step equals its row of a verification)."""
        cfg = self.cfg
        n, k = len(x), cfg.n_expert_used
        scores = np.empty((n, cfg.n_expert), np.float32)
        linear(experts.router, x, scores)
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        chosen = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        weights = np.take_along_axis(probs, chosen, axis=1)
        weights /= weights.sum(axis=1, keepdims=True)
        y = np.empty((n, k, cfg.dim), np.float32)
        for e in np.unique(chosen):
            rows, ranks = np.nonzero(chosen == e)
            xe = np.ascontiguousarray(x[rows])
            gate = np.empty((len(rows), cfg.expert_ffn_dim), np.float32)
            up = np.empty_like(gate)
            linear(experts.gate[e], xe, gate)
            linear(experts.up[e], xe, up)
            K.swiglu(gate, up, out=gate)
            down = np.empty((len(rows), cfg.dim), np.float32)
            linear(experts.down[e], gate, down)
            y[rows, ranks] = down
        np.multiply(y[:, 0], weights[:, :1], out=out)
        for r in range(1, k):
            out += y[:, r] * weights[:, r : r + 1]

    def _scale_residual(self, y: np.ndarray) -> None:
        if self.cfg.residual_scale != 1.0:  # granite
            np.multiply(y, np.float32(self.cfg.residual_scale), out=y)

    def _soft_cap_logits(self, logits: np.ndarray) -> np.ndarray:
        if self.cfg.logit_scale != 1.0:  # granite divides its logits
            np.divide(logits, np.float32(self.cfg.logit_scale), out=logits)
        cap = self.cfg.final_softcap
        if cap:  # gemma2: cap * tanh(logits / cap), in place
            np.divide(logits, np.float32(cap), out=logits)
            np.tanh(logits, out=logits)
            np.multiply(logits, np.float32(cap), out=logits)
        return logits

    @staticmethod
    def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> None:
        if bias is not None:
            np.add(y, bias, out=y)

    @staticmethod
    def _gelu_tanh(h: np.ndarray, bias: np.ndarray | None) -> None:
        """h = gelu_tanh(h + bias) in place (starcoder2's MLP; ggml's GELU is this tanh
        approximation). numpy rather than a kernel: it touches ffn_dim values per token
        against the ffn_dim x dim weights of the products on either side."""
        if bias is not None:
            np.add(h, bias, out=h)
        inner = h * h
        inner *= 0.044715
        inner += 1.0
        inner *= h
        inner *= math.sqrt(2.0 / math.pi)
        np.tanh(inner, out=inner)
        inner += 1.0
        inner *= 0.5
        np.multiply(h, inner, out=h)

    def _norm_heads(self, lw: LayerWeights, q: np.ndarray, k: np.ndarray) -> None:
        """qwen3's RMSNorm of each head of q[n, n_heads, head_dim] and k[n, n_kv_heads,
        head_dim], in place, before RoPE."""
        if lw.q_norm is not None and lw.k_norm is not None:
            K.rms_norm(q, lw.q_norm, self.cfg.norm_eps, out=q)
            K.rms_norm(k, lw.k_norm, self.cfg.norm_eps, out=k)

    @staticmethod
    def _add_qkv_bias(lw: LayerWeights, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
        np.add(q, lw.bq, out=q)
        np.add(k, lw.bk, out=k)
        np.add(v, lw.bv, out=v)

    def _logits(self, n: int, all_logits: bool, as_decode: bool = False) -> np.ndarray:
        s, w = self.state, self.weights
        out = w.output
        if all_logits and n > 1:
            self._norm(s.x[:n], w.output_norm, w.output_norm_b, s.xb[:n])
            linear = self._linear_as_decode if as_decode else self._linear
            linear(out, s.xb[:n], s.logits[:n])
            return self._soft_cap_logits(s.logits[:n])
        self._norm(s.x[n - 1 : n], w.output_norm, w.output_norm_b, s.xb[:1])
        K.matvec(out.data, out.fmt, s.xb[0], out=s.logits[0])
        self._soft_cap_logits(s.logits[:1])
        return s.logits[:1] if all_logits else s.logits[0]
