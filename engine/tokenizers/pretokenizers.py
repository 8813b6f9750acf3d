"""Pre-tokenizers: how text is cut into words before BPE merges run inside each word.

Two families live here:
- `code_pretokenizer()`, the one Cromwell's own BPE is trained and run with;
- `gguf_pretokenizer(name)`, the pre-tokenizers that llama.cpp selects by the GGUF key
  `tokenizer.ggml.pre`. llama.cpp applies a list of regexes one after the other, each one
  re-cutting the pieces the previous one left (unmatched stretches stay pieces of their own);
  a `Sequence` of `Split(..., "isolated")` does exactly that, so each list is copied here
  regex for regex, then bytes are mapped to the byte-level alphabet without further splitting.
"""

from __future__ import annotations

from functools import cache

import regex
from tokenizers import Regex, pre_tokenizers

# Cromwell's code pre-tokenizer, one alternation tried left to right at each position:
#   indentation  a run of spaces/tabs at the start of a line stays whole, so "        " (8
#                spaces) can be one token and the keyword after it starts clean;
#   digits       one digit per piece (a leading space may ride along), so numbers are spelt
#                digit by digit and never memorised as wholes;
#   words        letters, marks and underscores (identifiers such as `__init__` stay one
#                piece) with at most one leading non-newline symbol (" foo", ".append", "(self");
#   symbols      runs of punctuation with an optional leading space and the newlines that end
#                the line ("):\n");
#   whitespace   trailing spaces plus newlines; other runs of whitespace.
CODE_SPLIT_REGEX = (
    r"(?<![^\r\n])[ \t]+"
    r"| ?\p{N}"
    r"|[^\r\n\p{L}\p{M}\p{N}_]?[\p{L}\p{M}_]+"
    r"| ?[^\s\p{L}\p{M}\p{N}_]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)

CROMWELL_PRE = "cromwell-code"

# llama.cpp's regex lists, by pre-tokenizer family (src/llama-vocab.cpp, llm_tokenizer_bpe).
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_DEFAULT = (r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]")

GGUF_PRE_REGEXES: dict[str, tuple[str, ...]] = {
    "default": _DEFAULT,
    "gpt-2": (_GPT2,),
    "llama3": (_LLAMA3,),
    "llama-v3": (_LLAMA3,),
    "llama-bpe": (_LLAMA3,),
    "qwen2": (_QWEN2,),
    "smollm": (r"\p{N}", _GPT2),
    "starcoder": (r"\p{N}", _GPT2),
    # Cromwell's own code pre-tokenizer, the name our exporter writes for the Cromwell BPE.
    # llama.cpp does not know it: such files are tokenized by Cromwell's runtime only.
    CROMWELL_PRE: (CODE_SPLIT_REGEX,),
}

# Families whose vocabularies are looked up whole before merging (llama.cpp `ignore_merges`).
GGUF_PRE_IGNORE_MERGES = frozenset({"llama3", "llama-v3", "llama-bpe"})


class UnknownPreTokenizerError(ValueError):
    """The GGUF names a pre-tokenizer this module does not implement."""

    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(GGUF_PRE_REGEXES))
        super().__init__(
            f"unknown GGUF pre-tokenizer {name!r} (tokenizer.ggml.pre); supported: {known}"
        )
        self.name = name


def _byte_level() -> pre_tokenizers.PreTokenizer:
    # Regex splitting is done by the Splits before it; this only maps bytes to symbols.
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)


def _splits(regexes: tuple[str, ...]) -> list[pre_tokenizers.PreTokenizer]:
    return [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in regexes]


def code_pretokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([*_splits((CODE_SPLIT_REGEX,)), _byte_level()])


def gguf_pretokenizer(name: str) -> pre_tokenizers.PreTokenizer:
    """The HF pre-tokenizer equivalent to llama.cpp's for `tokenizer.ggml.pre` == `name`."""
    regexes = GGUF_PRE_REGEXES.get(name)
    if regexes is None:
        raise UnknownPreTokenizerError(name)
    return pre_tokenizers.Sequence([*_splits(regexes), _byte_level()])


@cache
def _compiled(name: str) -> tuple[regex.Pattern[str], ...]:
    regexes = GGUF_PRE_REGEXES.get(name)
    if regexes is None:
        raise UnknownPreTokenizerError(name)
    # VERSION1 for the set syntax the patterns share with the tokenizer library's Oniguruma.
    return tuple(regex.compile(r, regex.VERSION1) for r in regexes)


def gguf_words(name: str, text: str) -> list[str]:
    """`text` cut into words as `gguf_pretokenizer(name)` cuts it (engine/tokenizers/native_bpe.py
    merges inside them): each regex re-cuts the pieces the previous one left, and the
    stretches no match covers stay pieces of their own."""
    pieces = [text] if text else []
    for pattern in _compiled(name):
        cut: list[str] = []
        for piece in pieces:
            at = 0
            for m in pattern.finditer(piece):
                start, end = m.span()
                if start == end:
                    continue
                if start > at:
                    cut.append(piece[at:start])
                cut.append(piece[start:end])
                at = end
            if at < len(piece):
                cut.append(piece[at:])
        pieces = cut
    return pieces
