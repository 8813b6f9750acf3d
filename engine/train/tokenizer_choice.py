"""Which tokenizer a model's training data and exported file use, from one spec string:

    "cromwell-bpe"   Cromwell's own code BPE (50,000 tokens; cromwell-300m)
    PATH.gguf        the vocabulary of a llama GGUF, grown by Cromwell's special and FIM
                     tokens when the model's vocabulary is that much larger (cromwell-smol)
    "auto"           whichever of those fits the config's vocabulary size (SmolLM2 from the
                     model cache); None when none does (cromwell-tiny trains on synthetic data)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import ModelConfig

CROMWELL_BPE = "cromwell-bpe"
# The vocabulary sizes "auto" matches a config against, so that choosing costs nothing; the
# tokenizer chosen is then loaded and its real size checked (`load_tokenizer`).
_AUTO_SIZES = {CROMWELL_BPE: 50_000, "smollm2": 49_152 + 13}  # SmolLM2 + Cromwell's 13 tokens


def load_tokenizer(spec: str, vocab_size: int) -> tuple[Any, str]:
    """-> (CodeTokenizer, GGUF pre-tokenizer name), checked against `vocab_size`."""
    from engine.tokenizer import extend_with_cromwell_tokens, from_gguf, load_cromwell_bpe

    if spec == CROMWELL_BPE:
        from engine.tokenizers.pretokenizers import CROMWELL_PRE

        tok, pre = load_cromwell_bpe(), CROMWELL_PRE
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"tokenizer {spec!r}: neither {CROMWELL_BPE!r} nor a GGUF file")
        import gguf

        tok = from_gguf(path)
        field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
        pre = str(field.contents()) if field is not None else "default"
        if tok.vocab_size < vocab_size:
            extend_with_cromwell_tokens(tok)
    if tok.vocab_size != vocab_size:
        raise ValueError(f"tokenizer {spec!r} has {tok.vocab_size} tokens, the model's "
                         f"vocabulary {vocab_size}")
    return tok, pre


def resolve_tokenizer_spec(spec: str | None, cfg: ModelConfig) -> str | None:
    """The concrete spec for `spec` ("auto" resolved; None stays None)."""
    if spec != "auto":
        return spec
    from engine.runtime.model_store import SMOLLM2_135M, cached_path

    vocab = cfg.language.vocab_size
    if vocab == _AUTO_SIZES[CROMWELL_BPE]:
        return CROMWELL_BPE
    if vocab == _AUTO_SIZES["smollm2"] and cached_path(SMOLLM2_135M).is_file():
        return str(cached_path(SMOLLM2_135M))
    return None
