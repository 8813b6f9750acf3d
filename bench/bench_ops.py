"""Times the transformer ops, attention and vision kernels of engine._native against torch's
CPU kernels at the same thread count, in the same run, and prints the ratio (torch time / our
time: above 1 means ours is faster). A measurement script, not a test.

    .venv/bin/python bench/bench_ops.py [--threads N] [--repeat R] [--only NAME]
"""

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine import _native

# With one thread, both sides run on the calling thread, so its CPU time is the measure: it
# leaves out the time the thread waits while other processes have the core (this machine is
# shared). With more threads only wall time says anything.
CLOCK = time.perf_counter


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call: the fastest of `repeat` samples after warm-up (the one least
    disturbed by other load), each sample batching enough calls to last ~2 ms."""
    for _ in range(3):
        fn()
    t0 = CLOCK()
    fn()
    one = max(CLOCK() - t0, 1e-7)
    inner = max(1, int(2e-3 / one))
    samples = []
    for _ in range(repeat):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        samples.append((CLOCK() - t0) / inner)
    return min(samples)


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def cases() -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, ours, torch's) pairs on shapes of the SmolLM2-135M decoder (hidden 576, 9 query /
    3 KV heads of 64, MLP 1536) and of a small vision encoder."""
    out: list[tuple[str, Callable[[], object], Callable[[], object]]] = []
    for n in (1, 512):
        x, w = randn(n, 576), randn(576, seed=1)
        y = np.empty_like(x)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        out.append(
            (
                f"rms_norm [{n},576]",
                lambda x=x, w=w, y=y: _native.rms_norm(x, w, 1e-5, out=y),
                lambda tx=tx, tw=tw: F.rms_norm(tx, (576,), tw, 1e-5),
            )
        )
        b = randn(576, seed=2)
        tb = torch.from_numpy(b)
        out.append(
            (
                f"layer_norm [{n},576]",
                lambda x=x, w=w, b=b, y=y: _native.layer_norm(x, w, b, 1e-5, out=y),
                lambda tx=tx, tw=tw, tb=tb: F.layer_norm(tx, (576,), tw, tb, 1e-5),
            )
        )
    for n in (1, 512):
        g, u = randn(n, 1536), randn(n, 1536, seed=1)
        y = np.empty_like(g)
        tg, tu = torch.from_numpy(g), torch.from_numpy(u)
        out.append(
            (f"silu [{n},1536]", lambda g=g, y=y: _native.silu(g, out=y), lambda tg=tg: F.silu(tg))
        )
        out.append(
            (f"gelu [{n},1536]", lambda g=g, y=y: _native.gelu(g, out=y), lambda tg=tg: F.gelu(tg))
        )
        out.append(
            (
                f"swiglu [{n},1536]",
                lambda g=g, u=u, y=y: _native.swiglu(g, u, out=y),
                lambda tg=tg, tu=tu: F.silu(tg) * tu,
            )
        )
        out.append(
            (
                f"add [{n},1536]",
                lambda g=g, u=u, y=y: _native.add(g, u, out=y),
                lambda tg=tg, tu=tu: tg + tu,
            )
        )
    s = randn(9, 4096)
    ys = np.empty_like(s)
    ts = torch.from_numpy(s)
    out.append(
        ("softmax [9,4096]", lambda: _native.softmax(s, out=ys), lambda: torch.softmax(ts, -1))
    )
    for n in (1, 512):
        q = randn(n, 9, 64)
        pos = np.arange(n, dtype=np.int32) + 100
        inv = 100000.0 ** (-torch.arange(32, dtype=torch.float32) / 32)
        ang = torch.from_numpy(pos).float()[:, None] * inv
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None]
        tq = torch.from_numpy(q.copy())

        def hf_rope(
            tq: torch.Tensor = tq, cos: torch.Tensor = cos, sin: torch.Tensor = sin
        ) -> object:
            rot = torch.cat([-tq[..., 32:], tq[..., :32]], -1)  # HF rotate_half
            return tq * cos + rot * sin

        out.append(
            (
                f"rope half [{n},9,64]",
                lambda q=q, pos=pos: _native.rope(q, pos, 1e5, "half"),
                hf_rope,
            )
        )

    for n_ctx in (256, 1024, 4096):
        q = randn(9, 64)
        k, v = randn(n_ctx, 3, 64, seed=1), randn(n_ctx, 3, 64, seed=2)
        k16, v16 = k.astype(np.float16), v.astype(np.float16)
        o = np.empty_like(q)
        tq = torch.from_numpy(q)[None, :, None]  # [1, 9, 1, 64]
        tk = torch.from_numpy(k).permute(1, 0, 2)[None].contiguous()  # [1, 3, T, 64]
        tv = torch.from_numpy(v).permute(1, 0, 2)[None].contiguous()

        def t_dec(tq: torch.Tensor = tq, tk: torch.Tensor = tk, tv: torch.Tensor = tv) -> object:
            return F.scaled_dot_product_attention(tq, tk, tv, scale=0.125, enable_gqa=True)

        out.append(
            (
                f"attn decode f32 ctx={n_ctx}",
                lambda q=q, k=k, v=v, o=o, n=n_ctx: _native.attention_decode(
                    q, k, v, n, 0.125, out=o
                ),
                t_dec,
            )
        )
        out.append(
            (
                f"attn decode f16 ctx={n_ctx} (torch f32)",
                lambda q=q, k=k16, v=v16, o=o, n=n_ctx: _native.attention_decode(
                    q, k, v, n, 0.125, out=o
                ),
                t_dec,
            )
        )
    for n in (128, 512):
        q, k, v = randn(n, 9, 64), randn(n, 3, 64, seed=1), randn(n, 3, 64, seed=2)
        o = np.empty_like(q)
        tq = torch.from_numpy(q).permute(1, 0, 2)[None].contiguous()
        tk = torch.from_numpy(k).permute(1, 0, 2)[None].contiguous()
        tv = torch.from_numpy(v).permute(1, 0, 2)[None].contiguous()
        out.append(
            (
                f"attn prefill causal n={n}",
                lambda q=q, k=k, v=v, o=o: _native.attention_prefill(
                    q, k, v, 0, True, 0.125, out=o
                ),
                lambda tq=tq, tk=tk, tv=tv: F.scaled_dot_product_attention(
                    tq, tk, tv, is_causal=True, scale=0.125, enable_gqa=True
                ),
            )
        )
    # Windowed attention: 28x28 tokens, 4 heads of 32, 7x7 windows (torch: windows as a batch).
    q, k, v = (randn(28, 28, 4, 32, seed=s) for s in range(3))

    def to_windows(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a).view(4, 7, 4, 7, 4, 32).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(16, 4, 49, 32).contiguous()

    wq, wk, wv = to_windows(q), to_windows(k), to_windows(v)
    out.append(
        (
            "window attn 28x28x4x32 w=7",
            lambda q=q, k=k, v=v: _native.window_attention_2d(q, k, v, 7, 32**-0.5),
            lambda: F.scaled_dot_product_attention(wq, wk, wv),
        )
    )

    # The seed's ViT blocks: 16x16 windows, 6 heads of 64, on a 56x56 grid (partial edge windows).
    q, k, v = (randn(56, 56, 6, 64, seed=s) for s in range(3))
    pad = np.zeros((64, 64, 6, 64), np.float32)

    def seed_windows(a: np.ndarray) -> torch.Tensor:
        # torch has no ragged batch: pad to 64x64 and mask the padding tokens out.
        p = pad.copy()
        p[:56, :56] = a
        t = torch.from_numpy(p).view(4, 16, 4, 16, 6, 64).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(16, 6, 256, 64).contiguous()

    valid = np.zeros((64, 64), bool)
    valid[:56, :56] = True
    key_mask = torch.from_numpy(
        valid.reshape(4, 16, 4, 16).transpose(0, 2, 1, 3).reshape(16, 1, 1, 256)
    )
    sq, sk, sv = seed_windows(q), seed_windows(k), seed_windows(v)
    out.append(
        (
            "window attn 56x56x6x64 w=16",
            lambda q=q, k=k, v=v: _native.window_attention_2d(q, k, v, 16, 0.125),
            lambda: F.scaled_dot_product_attention(sq, sk, sv, attn_mask=key_mask, scale=0.125),
        )
    )

    img, ws, bs = randn(224, 224, 3), randn(64, 4, 4, 3, seed=1), randn(64, seed=2)
    timg = (
        torch.from_numpy(img).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
    )
    tws = torch.from_numpy(ws).permute(0, 3, 1, 2).contiguous()
    tbs = torch.from_numpy(bs)
    out.append(
        (
            "conv_stem 224x224x3->64 k4s4",
            lambda: _native.conv_stem(img, ws, bs, 4),
            lambda: F.conv2d(timg, tws, tbs, stride=4),
        )
    )
    x, wd, bd = randn(56, 56, 96), randn(3, 3, 96, seed=1), randn(96, seed=2)
    tx = torch.from_numpy(x).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
    twd = torch.from_numpy(wd).permute(2, 0, 1)[:, None].contiguous()
    tbd = torch.from_numpy(bd)
    out.append(
        (
            "depthwise3x3 56x56x96",
            lambda: _native.depthwise_conv3x3(x, wd, bd),
            lambda: F.conv2d(tx, twd, tbd, padding=1, groups=96),
        )
    )
    out.append(
        ("global_avg_pool 56x56x96", lambda: _native.global_avg_pool(x), lambda: tx.mean((2, 3)))
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: the physical core count")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    _native.set_num_threads(args.threads)
    n = _native.num_threads()
    torch.set_num_threads(n)
    global CLOCK
    CLOCK = time.thread_time if n == 1 else time.perf_counter
    kernels = _native.cpu_features()["kernels"]
    clock = "thread CPU time" if n == 1 else "wall time"
    print(f"threads: {n} (ours and torch {torch.__version__}); kernels: {kernels}; {clock}")
    print(f"{'case':<40} {'ours us':>10} {'torch us':>10} {'ratio':>7}")
    with torch.inference_mode():
        for name, ours, theirs in cases():
            if args.only not in name:
                continue
            a, b = best_time(ours, args.repeat), best_time(theirs, args.repeat)
            print(f"{name:<40} {a * 1e6:>10.1f} {b * 1e6:>10.1f} {b / a:>7.2f}")


if __name__ == "__main__":
    main()
