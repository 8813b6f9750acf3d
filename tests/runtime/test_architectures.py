"""Each architecture and variant the runtime reads, on a tiny random-weight GGUF of its real
tensor layout, against the plain-numpy reference (numpy_reference.py): prefill rows and decode
steps on the fused native step and on the per-kernel loop, in F32, F16 and a quantized format,
and greedy tokens equal to the reference's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from architecture_cases import CASES, write_case
from gguf import GGUFWriter, Keys, RopeScalingType
from numpy_reference import ReferenceDecoder
from tiny_gguf import write_tiny_gguf

from engine.runtime.decoder import Decoder
from engine.runtime.decoder_config import FUSED_ARCHITECTURES, SUPPORTED_ARCHITECTURES
from engine.runtime.decoder_weights import Matrix
from engine.runtime.gguf_file import GGUFError, GGUFFile

IDS = [5, 17, 3, 99, 42, 7, 7, 120, 1, 64, 2, 33]


def tiny_file(tmp_path: Path, arch: str, variant: str, fmt: str) -> GGUFFile:
    return GGUFFile(write_case(tmp_path / f"{arch}-{variant}-{fmt}.gguf", arch, variant, fmt))


def prefill_then_decode(decoder: Decoder, ids: list[int], n_prefill: int) -> np.ndarray:
    rows = [decoder.forward(ids[:n_prefill], all_logits=True).copy()]
    rows += [decoder.forward([t])[None].copy() for t in ids[n_prefill:]]
    return np.concatenate(rows)


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def reference_greedy(ref: ReferenceDecoder, prompt: list[int], n: int) -> list[int]:
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(ref.forward(ids)[-1].argmax()))
    return ids[len(prompt) :]


def our_greedy(decoder: Decoder, prompt: list[int], n: int) -> list[int]:
    logits = decoder.forward(prompt)
    out: list[int] = []
    for _ in range(n):
        out.append(int(logits.argmax()))
        logits = decoder.forward([out[-1]])
    return out


@pytest.mark.parametrize(("arch", "variant"), list(CASES))
@pytest.mark.parametrize("fmt", ["F32", "F16", "Q8_0"])
def test_prefill_and_decode_steps_match_the_reference(
    tmp_path: Path, arch: str, variant: str, fmt: str
) -> None:
    f = tiny_file(tmp_path, arch, variant, fmt)
    ref = ReferenceDecoder(f).forward(IDS)
    # F32 weights with a float cache compute the reference's math to float precision; F16
    # weights are exact in both, F16 activations are not rounded; Q8_0 rounds activations to
    # 8 bits in the integer products.
    tolerance = {"F32": 1e-4, "F16": 1e-4, "Q8_0": 0.03}[fmt]
    for fused in (True, False):
        for n_prefill in (1, 3, 9):  # one prefill row only, a prefill within the window, beyond
            decoder = Decoder(f, fused=fused, kv_cache="f32")
            assert (decoder.fused_step is not None) == (fused and arch in FUSED_ARCHITECTURES)
            ours = prefill_then_decode(decoder, IDS, n_prefill)
            assert relative_error(ours, ref) < tolerance, (fused, n_prefill)


@pytest.mark.parametrize(
    ("arch", "variant"), [case for case in CASES if case[0] in FUSED_ARCHITECTURES]
)
def test_the_fused_step_equals_the_kernel_loop_bit_for_bit(
    tmp_path: Path, arch: str, variant: str
) -> None:
    f = tiny_file(tmp_path, arch, variant, "Q8_0")
    fused, loop = Decoder(f, fused=True), Decoder(f, fused=False)
    for decoder in (fused, loop):
        decoder.forward(IDS[:6])
    for token in IDS[6:]:
        assert np.array_equal(fused.forward([token]), loop.forward([token]))
    draft = [11, 3, 3, 70, 2]  # a speculative verification, one native call
    assert np.array_equal(
        fused.forward(draft, all_logits=True, as_decode=True),
        loop.forward(draft, all_logits=True, as_decode=True),
    )


@pytest.mark.parametrize(("arch", "variant"), list(CASES))
def test_greedy_tokens_equal_the_reference(tmp_path: Path, arch: str, variant: str) -> None:
    f = tiny_file(tmp_path, arch, variant, "F32")
    ref = ReferenceDecoder(f)
    prompt = IDS[:5]
    expected = reference_greedy(ref, prompt, 10)
    assert our_greedy(Decoder(f, kv_cache="f32"), prompt, 10) == expected
    assert our_greedy(Decoder(f, kv_cache="f32", fused=False), prompt, 10) == expected


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "phi3"])
def test_llama_family_files_decode_on_the_fused_step(tmp_path: Path, arch: str) -> None:
    assert Decoder(GGUFFile(write_tiny_gguf(tmp_path / "t.gguf", arch))).fused_step is not None


def test_a_starcoder2_file_decodes_on_the_kernel_loop(tmp_path: Path) -> None:
    # The fused step has neither LayerNorm nor the GELU MLP: the choice is the config's, and
    # building the step for such a file is refused rather than run with the wrong blocks.
    decoder = Decoder(tiny_file(tmp_path, "starcoder2", "plain", "F32"))
    assert not decoder.cfg.fused_step_runs_it and decoder.fused_step is None
    with pytest.raises(ValueError, match="does not run 'starcoder2' models"):
        decoder._make_fused_step()


def test_the_variants_change_the_logits(tmp_path: Path) -> None:
    # Each variant's tiny file differs from the plain one only in what the variant adds, so
    # if the runtime ignored it the logits would equal the plain file's.
    plain = Decoder(tiny_file(tmp_path, "llama", "plain", "F32")).forward(IDS).copy()
    for variant in ("llama3-rope", "linear-rope", "sliding-window"):
        logits = Decoder(tiny_file(tmp_path, "llama", variant, "F32")).forward(IDS)
        assert relative_error(logits, plain) > 1e-3, variant


def test_yarn_scaling_is_refused_by_name(tmp_path: Path) -> None:
    def yarn(writer: GGUFWriter) -> None:
        writer.add_rope_scaling_type(RopeScalingType.YARN)
        writer.add_rope_scaling_factor(4.0)

    f = GGUFFile(write_tiny_gguf(tmp_path / "yarn.gguf", extra=yarn))
    with pytest.raises(
        GGUFError,
        match=r"'llama.rope.scaling.type' is 'yarn'; supported RoPE "
        r"scalings: none, linear",
    ):
        Decoder(f)


def test_an_architecture_not_run_is_one_sentence_with_the_supported_list(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "f.gguf", metadata_arch="falcon")
    supported = ", ".join(SUPPORTED_ARCHITECTURES)
    with pytest.raises(GGUFError) as err:
        Decoder(GGUFFile(path))
    message = str(err.value)
    assert "'general.architecture' is 'falcon', which this runtime does not run" in message
    assert message.endswith(f"(supported: {supported})") and "\n" not in message
    assert {"llama", "qwen2", "qwen3", "starcoder2", "gemma", "gemma2", "gemma3"} <= set(
        SUPPORTED_ARCHITECTURES
    )


def test_longrope_with_partial_rotation_is_refused(tmp_path: Path) -> None:
    # LongRoPE's factor on cos and sin is folded into the attention scale, which is only that
    # where every dim of a head is rotated.
    def partial(writer: GGUFWriter) -> None:
        writer.add_float32(Keys.Rope.SCALING_ATTN_FACTOR.format(arch=writer.arch), 1.2)
        writer.add_rope_dimension_count(8)

    f = GGUFFile(write_tiny_gguf(tmp_path / "p.gguf", "phi3", extra=partial))
    with pytest.raises(
        GGUFError,
        match=r"RoPE attention factor \(1.2\) with partial rotation "
        r"\(8 of 16 dims per head\) is not supported",
    ):
        Decoder(f)


def test_a_phi3_window_is_ignored_as_llamacpp_ignores_it(tmp_path: Path) -> None:
    f = GGUFFile(write_case(tmp_path / "w.gguf", "phi3", "plain", "F32"))
    windowed = GGUFFile(
        write_tiny_gguf(
            tmp_path / "pw.gguf", "phi3", extra=CASES[("llama", "sliding-window")]["extra"]
        )
    )
    assert Decoder(windowed).cfg.sliding_window == 0
    assert np.array_equal(Decoder(windowed).forward(IDS), Decoder(f).forward(IDS))


def test_a_granite_file_without_rope_is_refused(tmp_path: Path) -> None:
    def no_rope(writer: GGUFWriter) -> None:  # llama.cpp's switch for granite without RoPE
        writer.add_bool(Keys.Rope.SCALING_FINETUNED.format(arch=writer.arch), False)

    f = GGUFFile(write_tiny_gguf(tmp_path / "n.gguf", "granite", extra=no_rope))
    with pytest.raises(GGUFError, match="a granite model without RoPE is not supported"):
        Decoder(f)


def test_qwen3moe_multiplies_only_the_chosen_experts(tmp_path: Path) -> None:
    decoder = Decoder(tiny_file(tmp_path, "qwen3moe", "plain", "F32"))
    experts = decoder.weights.layers[0].experts
    assert experts is not None and decoder.fused_step is None
    read: list[int] = []

    def linear(m: Matrix, x: np.ndarray, out: np.ndarray) -> None:
        read.append(id(m))
        Decoder._linear(m, x, out)

    x = np.random.default_rng(0).standard_normal((3, decoder.cfg.dim)).astype(np.float32)
    decoder._moe(experts, x, np.empty_like(x), linear)
    chosen = {i for i, m in enumerate(experts.gate) if id(m) in read}
    assert read[0] == id(experts.router)
    assert len(read) == 1 + 3 * len(chosen)  # each chosen expert once, for all its rows
    read.clear()
    decoder._moe(experts, x[:1], np.empty_like(x[:1]), linear)  # a decode step's one row
    assert len(read) == 1 + 3 * decoder.cfg.n_expert_used < 1 + 3 * decoder.cfg.n_expert


def test_a_qwen3moe_verification_equals_its_decode_steps_bit_for_bit(tmp_path: Path) -> None:
    f = tiny_file(tmp_path, "qwen3moe", "plain", "Q8_0")
    decoder = Decoder(f)
    decoder.forward(IDS[:5])
    draft = IDS[5:10]
    batched = decoder.forward(draft, all_logits=True, as_decode=True).copy()
    decoder.cache.rollback(5)
    steps = np.stack([decoder.forward([t]).copy() for t in draft])
    assert np.array_equal(batched, steps)
