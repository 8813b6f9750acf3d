"""Type stubs for the native kernels (native/src/bind_*.cpp)."""

import numpy as np
import numpy.typing as npt

def cpu_features() -> dict[str, bool | int | str]: ...
def set_force_scalar(force: bool) -> None: ...
def force_scalar() -> bool: ...
def set_force_avx2(force: bool) -> None: ...
def force_avx2() -> bool: ...
def set_no_avx_vnni(off: bool) -> None: ...
def no_avx_vnni() -> bool: ...
def set_no_avx512_vnni(off: bool) -> None: ...
def no_avx512_vnni() -> bool: ...
def set_no_amx(off: bool) -> None: ...
def no_amx() -> bool: ...
def set_no_int_gemm(off: bool) -> None: ...
def use_int_gemm() -> bool: ...
def set_num_threads(n: int) -> None: ...
def num_threads() -> int: ...
def set_pinning(pin: bool) -> None: ...
def dot_f32(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float: ...

# Transformer ops (native/src/ops*, bind_ops.cpp). float32, C-contiguous; `out` (same shape,
# float32, C-contiguous) is written in place and returned when given.
def rms_norm(
    x: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
    eps: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def layer_norm(
    x: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32] | None,
    bias: npt.NDArray[np.float32] | None,
    eps: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def softmax(
    x: npt.NDArray[np.float32], out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]: ...
def silu(
    x: npt.NDArray[np.float32], out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]: ...
def gelu(
    x: npt.NDArray[np.float32], out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]: ...
def swiglu(
    gate: npt.NDArray[np.float32],
    up: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def add(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def rope(
    x: npt.NDArray[np.float32],
    positions: npt.NDArray[np.int32],
    base: float,
    layout: str,
    n_rot: int = -1,
    freq_factors: npt.NDArray[np.float32] | None = None,
    freq_scale: float = 1.0,
) -> npt.NDArray[np.float32]: ...

# Attention (native/src/attention*). Caches and k/v are float32 or float16
# [T, kv_heads, head_dim]; query head h reads kv head h // (heads // kv_heads).
def attention_decode(
    q: npt.NDArray[np.float32],
    k_cache: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    v_cache: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    n_ctx: int,
    scale: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def attention_prefill(
    q: npt.NDArray[np.float32],
    k: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    v: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    q_offset: int,
    causal: bool,
    scale: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def window_attention_2d(
    q: npt.NDArray[np.float32],
    k: npt.NDArray[np.float32],
    v: npt.NDArray[np.float32],
    window: int,
    scale: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...

# Weight formats and matrix kernels (native/src/bind_quant.cpp). fmt is a ggml format name:
# "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "Q5_1". A weight
# matrix is any C-contiguous array (uint8 for any format; float32 / float16 / uint16 for F32 /
# F16 / BF16) holding whole rows of row_bytes(fmt, k) bytes.
def block_size(fmt: str) -> int: ...
def row_bytes(fmt: str, k: int) -> int: ...
def quantize(x: npt.NDArray[np.float32], fmt: str) -> npt.NDArray[np.generic]: ...
def dequantize(w: npt.NDArray[np.generic], fmt: str, k: int) -> npt.NDArray[np.float32]: ...
def matvec(
    w: npt.NDArray[np.generic],
    fmt: str,
    x: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def matmul_shared(
    ws: list[npt.NDArray[np.generic]], fmts: list[str], x: npt.NDArray[np.float32]
) -> list[npt.NDArray[np.float32]]: ...
# Each output exactly what matmul gives for its matrix alone; x quantized once for all.
def matmul_group(
    ws: list[npt.NDArray[np.generic]],
    fmts: list[str],
    x: npt.NDArray[np.float32],
    outs: list[npt.NDArray[np.float32] | None],
) -> list[npt.NDArray[np.float32]]: ...
# Up to this many activation rows, matmul gives each row bit for bit what matvec gives (the
# decode step's kernels); from one row more, the prefill GEMM (native/src/matmul.h).
MATMUL_DECODE_ROWS: int

def matmul(
    w: npt.NDArray[np.generic],
    fmt: str,
    x: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def get_rows(
    w: npt.NDArray[np.generic], fmt: str, ids: npt.NDArray[np.int32], k: int
) -> npt.NDArray[np.float32]: ...
def stream_read(a: npt.NDArray[np.generic]) -> int: ...

# The fused llama/qwen2 decode step (native/src/bind_decode.cpp): every layer of one token in
# one call, built from typed structures (a misspelled or missing field is a TypeError where they
# are made). The step holds every array it is given for as long as it lives; none is copied.
class DecodeMatrix:
    """A weight matrix `rows` x `k` in a ggml format; its bytes are checked when it is made."""

    def __init__(self, data: npt.NDArray[np.generic], fmt: str, rows: int, k: int) -> None: ...
    @property
    def data(self) -> npt.NDArray[np.generic]: ...
    @property
    def fmt(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def k(self) -> int: ...

class DecodeLayerWeights:
    """One layer's tensors; float32 vectors, and the biases all three or none (qwen2)."""

    def __init__(
        self,
        *,
        attn_norm: npt.NDArray[np.float32],
        wq: DecodeMatrix,
        wk: DecodeMatrix,
        wv: DecodeMatrix,
        wo: DecodeMatrix,
        ffn_norm: npt.NDArray[np.float32],
        w_gate: DecodeMatrix,
        w_up: DecodeMatrix,
        w_down: DecodeMatrix,
        bq: npt.NDArray[np.float32] | None = None,
        bk: npt.NDArray[np.float32] | None = None,
        bv: npt.NDArray[np.float32] | None = None,
        q_norm: npt.NDArray[np.float32] | None = None,
        k_norm: npt.NDArray[np.float32] | None = None,
    ) -> None: ...
    @property
    def attn_norm(self) -> npt.NDArray[np.float32]: ...
    @property
    def wq(self) -> DecodeMatrix: ...
    @property
    def wk(self) -> DecodeMatrix: ...
    @property
    def wv(self) -> DecodeMatrix: ...
    @property
    def bq(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def bk(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def bv(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def q_norm(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def k_norm(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def wo(self) -> DecodeMatrix: ...
    @property
    def ffn_norm(self) -> npt.NDArray[np.float32]: ...
    @property
    def w_gate(self) -> DecodeMatrix: ...
    @property
    def w_up(self) -> DecodeMatrix: ...
    @property
    def w_down(self) -> DecodeMatrix: ...

class DecodeDims:
    """The sizes and constants of a decode step. interleaved: ggml "normal" RoPE (pairs 2i,
    2i+1), else NEOX; scale: the attention scale, 1/sqrt(head_dim); rope_freq_scale: linear
    RoPE scaling's 1/factor; sliding_window: the most cache rows a token attends to (0: all)."""

    def __init__(
        self,
        *,
        dim: int,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        ffn_dim: int,
        vocab: int,
        n_rot: int,
        n_ctx: int,
        norm_eps: float,
        rope_base: float,
        interleaved: bool,
        scale: float,
        rope_freq_scale: float = 1.0,
        sliding_window: int = 0,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...
    @property
    def ffn_dim(self) -> int: ...
    @property
    def vocab(self) -> int: ...
    @property
    def n_rot(self) -> int: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def norm_eps(self) -> float: ...
    @property
    def rope_base(self) -> float: ...
    @property
    def interleaved(self) -> bool: ...
    @property
    def scale(self) -> float: ...
    @property
    def rope_freq_scale(self) -> float: ...
    @property
    def sliding_window(self) -> int: ...

class DecodeStep:
    def __init__(
        self,
        layers: list[DecodeLayerWeights],
        embd: DecodeMatrix,
        head: DecodeMatrix,
        out_norm: npt.NDArray[np.float32],
        dims: DecodeDims,
        k_cache: npt.NDArray[np.float32] | npt.NDArray[np.float16],
        v_cache: npt.NDArray[np.float32] | npt.NDArray[np.float16],
        max_tokens: int = 1,
        rope_freq_factors: npt.NDArray[np.float32] | None = None,
    ) -> None: ...
    def run(self, token: int, pos: int, out: npt.NDArray[np.float32]) -> None: ...
    def run_span(
        self,
        tokens: npt.NDArray[np.int32],
        pos: int,
        lo: int,
        hi: int,
        x: npt.NDArray[np.float32],
        out: npt.NDArray[np.float32] | None = None,
    ) -> None: ...
    def run_rows(
        self,
        tokens: npt.NDArray[np.int32],
        rows: npt.NDArray[np.int32],
        out: npt.NDArray[np.float32],
    ) -> None: ...
# Vision ops (native/src/vision*), NHWC. 1x1 convs are `matmul` over the H*W rows.
def conv_stem(
    x: npt.NDArray[np.float32],
    w: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    stride: int,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def depthwise_conv3x3(
    x: npt.NDArray[np.float32],
    w: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    stride: int = 1,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def global_avg_pool(
    x: npt.NDArray[np.float32], out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]: ...
def vocab_objects(
    tokens_utf8: bytes | memoryview,
    n_tokens: int,
    lefts: npt.NDArray[np.int32],
    rights: npt.NDArray[np.int32],
) -> tuple[list[str], dict[str, int], list[tuple[str, str]]]: ...
def vocab_tables(
    tokens: list[str], merges: list[str]
) -> tuple[bytes, npt.NDArray[np.int32], npt.NDArray[np.int32]] | None: ...
