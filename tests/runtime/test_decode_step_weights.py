"""The fused decode step is built from typed structures (`_native.DecodeMatrix`,
`DecodeLayerWeights`, `DecodeDims`): a misspelled, missing or mistyped field is a TypeError
where they are made, a tensor that does not fit the dims is refused by `DecodeStep` naming its
layer and field, and the step holds the arrays it reads (none copied) for as long as it lives."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_gguf import TINY, write_tiny_gguf

from engine import _native as K
from engine.runtime.decoder import FUSED_MAX_TOKENS, Decoder
from engine.runtime.decoder_weights import LayerWeights, Matrix
from engine.runtime.gguf_file import GGUFFile


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Decoder:
    # qwen2: the layers have the optional Q/K/V biases too
    path = write_tiny_gguf(tmp_path_factory.mktemp("typed") / "t.gguf", arch="qwen2", fmt="Q8_0")
    return Decoder(GGUFFile(Path(path)), n_ctx=32)


def matrix(m: Matrix) -> K.DecodeMatrix:
    return K.DecodeMatrix(m.data, m.fmt, m.rows, m.k)


def layer_fields(lw: LayerWeights) -> dict[str, Any]:
    return {
        "attn_norm": lw.attn_norm,
        "wq": matrix(lw.wq),
        "wk": matrix(lw.wk),
        "wv": matrix(lw.wv),
        "bq": lw.bq,
        "bk": lw.bk,
        "bv": lw.bv,
        "wo": matrix(lw.wo),
        "ffn_norm": lw.ffn_norm,
        "w_gate": matrix(lw.w_gate),
        "w_up": matrix(lw.w_up),
        "w_down": matrix(lw.w_down),
    }


def dims_fields(decoder: Decoder) -> dict[str, Any]:
    cfg = decoder.cfg
    return {
        "dim": cfg.dim,
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "ffn_dim": cfg.ffn_dim,
        "vocab": cfg.vocab_size,
        "n_rot": cfg.n_rot,
        "n_ctx": decoder.n_ctx,
        "norm_eps": cfg.norm_eps,
        "rope_base": cfg.rope_base,
        "interleaved": cfg.rope_layout == "interleaved",
        "scale": decoder.scale,
    }


def make_step(decoder: Decoder, layers: list[dict[str, Any]]) -> K.DecodeStep:
    w = decoder.weights
    return K.DecodeStep(
        [K.DecodeLayerWeights(**fields) for fields in layers],
        matrix(w.token_embd),
        matrix(w.output),
        w.output_norm,
        K.DecodeDims(**dims_fields(decoder)),
        np.zeros_like(decoder.cache.k),
        np.zeros_like(decoder.cache.v),
        FUSED_MAX_TOKENS,
    )


def test_a_misspelled_missing_or_mistyped_field_is_a_type_error(decoder: Decoder) -> None:
    fields = layer_fields(decoder.weights.layers[0])
    with pytest.raises(TypeError, match="DecodeLayerWeights: unknown field 'wgate'; the fields"):
        K.DecodeLayerWeights(**fields, wgate=fields["w_gate"])
    with pytest.raises(TypeError, match="DecodeLayerWeights: missing field 'w_up'"):
        K.DecodeLayerWeights(**{k: v for k, v in fields.items() if k != "w_up"})
    as_pair = (decoder.weights.layers[0].wq.data, "Q8_0")  # the old (array, format) pair
    with pytest.raises(TypeError, match="DecodeLayerWeights: wq: expected a DecodeMatrix, got"):
        K.DecodeLayerWeights(**fields | {"wq": as_pair})
    with pytest.raises(TypeError, match="attn_norm: expected a numpy array, got list"):
        K.DecodeLayerWeights(**fields | {"attn_norm": [1.0] * TINY["dim"]})
    with pytest.raises(TypeError, match="DecodeLayerWeights: takes keyword arguments only"):
        K.DecodeLayerWeights(fields["attn_norm"])
    dims = dims_fields(decoder)
    with pytest.raises(TypeError, match="DecodeDims: unknown field 'n_head'"):
        K.DecodeDims(**dims, n_head=4)
    with pytest.raises(TypeError, match="DecodeDims: missing field 'scale'"):
        K.DecodeDims(**{k: v for k, v in dims.items() if k != "scale"})
    with pytest.raises(TypeError, match="DecodeDims: dim: expected an int, got float"):
        K.DecodeDims(**dims | {"dim": 64.0})
    layer = K.DecodeLayerWeights(**fields)
    with pytest.raises(AttributeError):
        layer.w_gat  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        layer.w_gate = fields["w_up"]  # type: ignore[misc]


def test_the_structures_hold_what_they_are_given(decoder: Decoder) -> None:
    lw = decoder.weights.layers[0]
    m = matrix(lw.w_gate)
    assert m.data is lw.w_gate.data  # not a copy
    assert (m.fmt, m.rows, m.k) == ("Q8_0", TINY["ffn_dim"], TINY["dim"])
    layer = K.DecodeLayerWeights(**layer_fields(lw))
    assert layer.attn_norm is lw.attn_norm and layer.bq is lw.bq
    assert layer.w_down.data is lw.w_down.data
    no_bias = K.DecodeLayerWeights(**layer_fields(lw) | {"bq": None, "bk": None, "bv": None})
    assert no_bias.bq is None and no_bias.bv is None
    dims = K.DecodeDims(**dims_fields(decoder))
    assert (dims.dim, dims.n_ctx, dims.interleaved) == (TINY["dim"], 32, False)


def test_biases_come_all_three_or_none(decoder: Decoder) -> None:
    fields = layer_fields(decoder.weights.layers[0])
    with pytest.raises(ValueError, match="DecodeLayerWeights: biases: give all of bq, bk, bv or"):
        K.DecodeLayerWeights(**fields | {"bk": None})


def test_a_matrix_is_checked_against_its_own_shape_when_made(decoder: Decoder) -> None:
    w_gate = decoder.weights.layers[0].w_gate
    with pytest.raises(ValueError, match=r"DecodeMatrix: expected \d+ bytes \(97 rows of 64 Q8_0"):
        K.DecodeMatrix(w_gate.data, "Q8_0", 97, 64)
    with pytest.raises(ValueError, match="unknown weight format 'Q9_0'"):
        K.DecodeMatrix(w_gate.data, "Q9_0", 96, 64)
    floats = np.zeros((4, 64))
    with pytest.raises(ValueError, match="a F32 weight must have dtype float32 or uint8"):
        K.DecodeMatrix(floats, "F32", 4, 64)
    with pytest.raises(ValueError, match="expected a C-contiguous array"):
        K.DecodeMatrix(floats.astype(np.float32)[:, ::2], "F32", 4, 32)


def test_a_tensor_that_does_not_fit_the_dims_names_its_layer_and_field(decoder: Decoder) -> None:
    def refused(layer: int, **change: Any) -> str:
        layers = [layer_fields(lw) for lw in decoder.weights.layers]
        layers[layer] |= change
        with pytest.raises(ValueError) as e:
            make_step(decoder, layers)
        return str(e.value)

    wq = layer_fields(decoder.weights.layers[1])["wq"]  # 64 rows where w_gate has 96
    assert refused(1, w_gate=wq) == (
        "DecodeStep: layer 1 w_gate: expected 96 rows of 64 Q8_0, got 64 rows of 64"
    )
    assert refused(0, ffn_norm=np.ones(63, np.float32)) == (
        "DecodeStep: layer 0 ffn_norm: expected 64 float32 values, got 63"
    )
    bk = decoder.weights.layers[1].bk
    assert bk is not None
    assert refused(1, bk=bk.astype(np.float64)) == (
        "layer 1 bk: expected dtype float32, got float64"
    )


def test_the_step_holds_the_arrays_it_reads(decoder: Decoder) -> None:
    want = np.empty(TINY["vocab"], np.float32)
    make_step(decoder, [layer_fields(lw) for lw in decoder.weights.layers]).run(5, 0, want)

    def copies(lw: LayerWeights) -> LayerWeights:
        def m(x: Matrix) -> Matrix:
            return Matrix(x.data.copy(), x.fmt, x.rows, x.k)

        def bias(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x.copy()

        return LayerWeights(
            lw.attn_norm.copy(), m(lw.wq), m(lw.wk), m(lw.wv), bias(lw.bq), bias(lw.bk),
            bias(lw.bv), m(lw.wo), lw.ffn_norm.copy(), m(lw.w_gate), m(lw.w_up), m(lw.w_down),
        )  # fmt: skip

    layers = [layer_fields(copies(lw)) for lw in decoder.weights.layers]
    held = [weakref.ref(f["w_down"].data) for f in layers] + [
        weakref.ref(f["attn_norm"]) for f in layers
    ]
    step = make_step(decoder, layers)
    del layers
    gc.collect()
    assert all(r() is not None for r in held)  # the step's, and only the step's
    _ = [np.full(4096, np.nan, np.float32) for _ in range(64)]  # fresh allocations
    got = np.empty(TINY["vocab"], np.float32)
    step.run(5, 0, got)
    np.testing.assert_array_equal(got, want)
    del step
    gc.collect()
    assert all(r() is None for r in held)  # and let go of with it
