"""A CodeTokenizer written back as GGUF tokenizer metadata (what `from_gguf` reads).

The exporter calls `add_vocab_to_writer` when it writes a model file, so that a model whose
vocabulary was extended (cromwell-smol) or trained here (cromwell-300m) carries its exact
tokenizer. Token texts are in the byte-level alphabet, as llama.cpp expects of 'gpt2' models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.tokenizers.gguf_import import TokenType
from engine.tokenizers.pretokenizers import GGUF_PRE_REGEXES, UnknownPreTokenizerError
from engine.tokenizers.special_tokens import FIM_ALIASES, FIM_GGUF_KEYS

if TYPE_CHECKING:
    from engine.tokenizer import CodeTokenizer


def vocab_metadata(tok: CodeTokenizer, pre: str, fim_trained: bool = False) -> dict[str, Any]:
    """`tokenizer.*` keys for `tok`, its words cut by the pre-tokenizer named `pre`. The FIM
    token ids are written only for a model `fim_trained` on them: llama.cpp and our runtime
    (engine/runtime/fim_format.py) take those keys as the model's word that it fills in the
    middle, and a vocabulary merely extended with the tokens (cromwell-smol) does not."""
    if pre not in GGUF_PRE_REGEXES:
        raise UnknownPreTokenizerError(pre)
    added = tok.added_tokens
    tokens: list[str] = []
    types: list[int] = []
    for i in range(tok.vocab_size):
        text = tok.id_to_token(i)
        if text is None:
            raise ValueError(f"{tok.name} has no token with id {i}; ids must be contiguous")
        tokens.append(text)
        a = added.get(i)
        if a is None:
            types.append(TokenType.NORMAL)
        else:
            types.append(TokenType.CONTROL if a.special else TokenType.USER_DEFINED)
    merges = tok.merges()

    meta: dict[str, Any] = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [int(t) for t in types],
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.add_bos_token": tok.add_bos,
        "tokenizer.ggml.add_eos_token": tok.add_eos,
    }
    for key, value in (
        ("tokenizer.ggml.bos_token_id", tok.bos_id),
        ("tokenizer.ggml.eos_token_id", tok.eos_id),
        ("tokenizer.ggml.padding_token_id", tok.pad_id),
    ):
        if value is not None:
            meta[key] = value
    if fim_trained:
        for fim, key in FIM_GGUF_KEYS.items():
            for spelling in (fim, *FIM_ALIASES[fim]):
                if (fid := tok.token_to_id(spelling)) is not None:
                    meta[key] = fid
                    break
    if tok.chat_template:
        meta["tokenizer.chat_template"] = tok.chat_template
    return meta


def add_vocab_to_writer(writer: Any, tok: CodeTokenizer, pre: str, fim_trained: bool = False
                        ) -> None:
    """Add `tok`'s metadata to an open `gguf.GGUFWriter` (before its header is written)."""
    meta = vocab_metadata(tok, pre, fim_trained)
    writer.add_tokenizer_model(meta["tokenizer.ggml.model"])
    writer.add_tokenizer_pre(meta["tokenizer.ggml.pre"])
    writer.add_token_list(meta["tokenizer.ggml.tokens"])
    writer.add_token_types(meta["tokenizer.ggml.token_type"])
    writer.add_token_merges(meta["tokenizer.ggml.merges"])
    writer.add_add_bos_token(meta["tokenizer.ggml.add_bos_token"])
    writer.add_add_eos_token(meta["tokenizer.ggml.add_eos_token"])
    scalar_keys = [k for k in meta if k.endswith("_token_id")]
    for key in scalar_keys:
        writer.add_uint32(key, meta[key])
    if "tokenizer.chat_template" in meta:
        writer.add_chat_template(meta["tokenizer.chat_template"])
