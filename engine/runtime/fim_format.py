"""A model's own fill-in-the-middle format, read from its GGUF file (DESIGN decision 9).

    fim = detect_fim(f.metadata, tokenizer)            # or detect_fim(..., override="qwen")
    ids = fim.assemble([fim.chunk_ids(tok, "util.py", text)], prefix_ids, suffix_ids, bos=1)

The markers are token ids, never text: a prompt spelt `<|fim_prefix|>` in a vocabulary that
lacks that token becomes a dozen plain-text tokens, and the model continues the wrong text.
Where they come from, first to last:

1. a user's override (a family name, or "none");
2. the ids llama.cpp's converters write into the file (`tokenizer.ggml.fim_pre_token_id` ...,
   older files `tokenizer.ggml.prefix_token_id` ...), the family named from their spelling;
3. the families' known spellings looked up as single tokens of the vocabulary.

A vocabulary's spellings alone do not make a `cromwell` file a FIM model: cromwell-smol gains
`<fim_prefix>` and its kin when it is built from SmolLM2, but its weights never saw them.
Only ids in its metadata, which an export writes once FIM was trained, count there. A model
with no FIM gets family "none": a prefix-only completion that ends at the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from engine.tokenizer import CodeTokenizer

META = "tokenizer.ggml."
# role -> llama.cpp's metadata key and the key older converters wrote (None: no older key).
FIM_METADATA_KEYS: dict[str, tuple[str, str | None]] = {
    "prefix": (META + "fim_pre_token_id", META + "prefix_token_id"),
    "suffix": (META + "fim_suf_token_id", META + "suffix_token_id"),
    "middle": (META + "fim_mid_token_id", META + "middle_token_id"),
    "pad": (META + "fim_pad_token_id", None),
    "repo_name": (META + "fim_rep_token_id", None),
    "file_sep": (META + "fim_sep_token_id", None),
}
ROLES = tuple(FIM_METADATA_KEYS)  # prefix, suffix, middle, pad, repo_name, file_sep
_BODY_ROLES = ROLES[:3]
# Ids the file names as ending generation, whatever its family.
_END_KEYS = (META + "eos_token_id", META + "eot_token_id", META + "eom_token_id")
# End-of-text, end-of-turn and end-of-file spellings: whichever the vocabulary has end a middle.
_END_TEXTS = (
    "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
    "<EOT>", "\u2581<EOT>", "<|EOT|>", "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<|file_separator|>",
)

NO_FIM = "none"
FROM_METADATA = "gguf"  # ids from the file whose spelling is no known family's


class _Spellings(NamedTuple):
    """A family's markers, each role's spellings in the order they are tried."""

    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    middle: tuple[str, ...] = ()
    pad: tuple[str, ...] = ()
    repo_name: tuple[str, ...] = ()
    file_sep: tuple[str, ...] = ()
    spm: bool = False


# In the order auto-detection tries them. CodeGemma spells its body as Qwen does; it is told
# apart by its file separator or a gemma architecture (see _family_of).
FAMILIES: dict[str, _Spellings] = {
    "qwen": _Spellings(
        ("<|fim_prefix|>",), ("<|fim_suffix|>",), ("<|fim_middle|>",), ("<|fim_pad|>",),
        ("<|repo_name|>",), ("<|file_sep|>",),
    ),
    "codegemma": _Spellings(
        ("<|fim_prefix|>",), ("<|fim_suffix|>",), ("<|fim_middle|>",), ("<|fim_pad|>",),
        (), ("<|file_separator|>",),
    ),
    "starcoder": _Spellings(
        ("<fim_prefix>",), ("<fim_suffix>",), ("<fim_middle>",), ("<fim_pad>",),
        ("<repo_name>", "<reponame>"), ("<file_sep>",),
    ),
    "codellama": _Spellings(
        ("\u2581<PRE>", "<PRE>"), ("\u2581<SUF>", "<SUF>"), ("\u2581<MID>", "<MID>"),
    ),
    "deepseek": _Spellings(
        ("<\uff5cfim\u2581begin\uff5c>",), ("<\uff5cfim\u2581hole\uff5c>",),
        ("<\uff5cfim\u2581end\uff5c>",),
    ),
    # Codestral: [SUFFIX] suffix [PREFIX] prefix, and the middle is generated at once.
    "codestral": _Spellings(("[PREFIX]",), ("[SUFFIX]",), spm=True),
}
FAMILY_NAMES: tuple[str, ...] = (*FAMILIES, FROM_METADATA, NO_FIM)
# Every family's marker spellings, and StarCoder 1's file marker: a control token of these in
# the output means the model has left the text at the cursor, whatever the format in use.
_MARKER_TEXTS = frozenset(
    t for s in FAMILIES.values() for role in ROLES for t in getattr(s, role)
) | {"<filename>"}

# A header line naming an extra chunk's file, as a comment of the file's language where its
# suffix says which: the model reads on as it would at a file boundary, not copying a marker.
_LINE_COMMENT = {
    "//": (".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".java", ".js", ".jsx", ".kt",
           ".rs", ".scala", ".swift", ".ts", ".tsx", ".dart", ".php", ".zig"),
    "--": (".sql", ".lua", ".hs", ".elm"),
    ";": (".lisp", ".clj", ".el", ".scm", ".asm"),
    "%": (".tex", ".erl", ".m"),
}
_BLOCK_COMMENT = {".html": ("<!--", " -->"), ".xml": ("<!--", " -->"), ".vue": ("<!--", " -->"),
                  ".md": ("<!--", " -->"), ".css": ("/*", " */"), ".scss": ("/*", " */")}


def chunk_header(path: str) -> str:
    """The plain-text line that names an extra chunk's file where the vocabulary has no file
    separator: `\\n# util.py\\n` for Python, `\\n// util.ts\\n` for TypeScript, ..."""
    suffix = PurePosixPath(path.replace("\\", "/")).suffix.lower()
    if suffix in _BLOCK_COMMENT:
        start, end = _BLOCK_COMMENT[suffix]
        return f"\n{start} {path}{end}\n"
    mark = next((m for m, suffixes in _LINE_COMMENT.items() if suffix in suffixes), "#")
    return f"\n{mark} {path}\n"


@dataclass(frozen=True)
class FimFormat:
    """The FIM markers of one model as token ids, and how a prompt is laid out with them."""

    family: str  # a name of FAMILY_NAMES
    prefix: int | None
    suffix: int | None
    middle: int | None
    pad: int | None
    repo_name: int | None  # <|repo_name|> / <repo_name> where the vocabulary has it
    file_sep: int | None  # <|file_sep|> / <file_sep> where it has it
    spm: bool  # the family's own order puts the suffix before the prefix (Codestral)
    end_ids: frozenset[int]  # ids that end a middle

    @property
    def fills(self) -> bool:
        """Whether the model can fill in the middle: prefix and suffix markers known, and a
        middle marker unless the order is suffix-first (which generates right after the
        prefix)."""
        if self.family == NO_FIM or self.prefix is None or self.suffix is None:
            return False
        return self.middle is not None or self.spm

    @property
    def order(self) -> str:
        """"psm" (prefix, suffix, middle), "spm" (suffix first) or "prefix-only"."""
        if not self.fills:
            return "prefix-only"
        return "spm" if self.spm else "psm"

    def assemble(
        self,
        extra: Sequence[Sequence[int]],
        prefix: Sequence[int],
        suffix: Sequence[int],
        *,
        bos: int | None = None,
    ) -> list[int]:
        """[bos] + the extra chunks in order (from `chunk_ids`, `repo_head`, `file_head`) +
        the FIM body: PRE prefix SUF suffix MID; SUF suffix PRE prefix in spm order; the
        prefix alone (the suffix ignored) when the model does not fill in the middle."""
        ids: list[int] = [] if bos is None else [bos]
        for chunk in extra:
            ids.extend(chunk)
        if not self.fills:
            ids.extend(prefix)
            return ids
        assert self.prefix is not None and self.suffix is not None  # fills says so
        if self.spm:
            ids.append(self.suffix)
            ids.extend(suffix)
            ids.append(self.prefix)
            ids.extend(prefix)
            return ids
        assert self.middle is not None
        ids.append(self.prefix)
        ids.extend(prefix)
        ids.append(self.suffix)
        ids.extend(suffix)
        ids.append(self.middle)
        return ids

    def chunk_ids(self, tokenizer: CodeTokenizer, path: str, text: str) -> list[int]:
        """One extra-context chunk: [file_sep] + "path\\ntext" where the model has a file
        separator, else a comment line naming the path (`chunk_header`) + text. File text is
        encoded with special tokens spelt out: a marker written in a file stays text."""
        if self.file_sep is not None:
            return [self.file_sep, *tokenizer.encode(f"{path}\n{text}", parse_special=False)]
        return tokenizer.encode(chunk_header(path) + text, parse_special=False)

    def repo_head(self, tokenizer: CodeTokenizer, repo: str) -> list[int]:
        """[repo_name] + "repo\\n" where the vocabulary has a repository marker, else []."""
        if self.repo_name is None:
            return []
        return [self.repo_name, *tokenizer.encode(repo + "\n", parse_special=False)]

    def file_head(self, tokenizer: CodeTokenizer, path: str) -> list[int]:
        """The current file's header before the FIM body, [file_sep] + "path\\n", where the
        model has a file separator, else []."""
        if self.file_sep is None:
            return []
        return [self.file_sep, *tokenizer.encode(path + "\n", parse_special=False)]

    def describe(self, tokenizer: CodeTokenizer) -> dict[str, Any]:
        """What `cromwell info` shows: the family, its order, each marker's id and spelling."""
        markers = {
            role: {"id": tid, "text": tokenizer.id_to_token(tid)}
            for role in ROLES
            if (tid := getattr(self, role)) is not None
        }
        return {
            "family": self.family,
            "fills": self.fills,
            "order": self.order,
            "markers": markers,
            "repo_markers": self.repo_name is not None or self.file_sep is not None,
            "end_ids": sorted(self.end_ids),
        }


def detect_fim(
    metadata: Mapping[str, Any], tokenizer: CodeTokenizer, override: str | None = None
) -> FimFormat:
    """The FIM format of a model from its GGUF metadata and its tokenizer. `override` (a user
    setting): a family name of FAMILY_NAMES, "none", or None / "auto" to detect."""
    if override is not None and override != "auto":
        return _forced(metadata, tokenizer, override)
    declared: dict[str, int | None] = dict(_metadata_ids(metadata, tokenizer))
    if any(role in declared for role in _BODY_ROLES):
        family = _family_of(declared.get("prefix"), metadata, tokenizer)
        if family != FROM_METADATA:  # the roles the file left out, from the family's spellings
            found = _vocab_ids(FAMILIES[family], tokenizer)
            declared = {role: declared.get(role, found[role]) for role in found}
        fmt = _build(family, declared, metadata, tokenizer)
        if fmt.fills:
            return fmt
    if str(metadata.get("general.architecture", "")) == "cromwell":
        return _build(NO_FIM, {}, metadata, tokenizer)  # see the module docstring
    for family, spellings in FAMILIES.items():
        found = _vocab_ids(spellings, tokenizer)
        if found["prefix"] is None or _family_of(found["prefix"], metadata, tokenizer) != family:
            continue
        if found["suffix"] is not None and (found["middle"] is not None or spellings.spm):
            return _build(family, found, metadata, tokenizer)
    return _build(NO_FIM, {}, metadata, tokenizer)


def _forced(metadata: Mapping[str, Any], tokenizer: CodeTokenizer, name: str) -> FimFormat:
    valid = ", ".join(FAMILY_NAMES)
    if name == NO_FIM:
        return _build(NO_FIM, {}, metadata, tokenizer)
    if name == FROM_METADATA:
        ids = _metadata_ids(metadata, tokenizer)
        fmt = _build(FROM_METADATA, ids, metadata, tokenizer)
        if not fmt.fills:
            raise ValueError(
                f"FIM format 'gguf' needs FIM token ids in the model file's metadata, which has "
                f"none; choose one of {valid} (or auto)"
            )
        return fmt
    if name not in FAMILIES:
        raise ValueError(f"unknown FIM format {name!r}; choose one of {valid} (or auto)")
    fmt = _build(name, _vocab_ids(FAMILIES[name], tokenizer), metadata, tokenizer)
    if not fmt.fills:
        spellings = FAMILIES[name]
        wanted = " ".join(s[0] for s in (spellings.prefix, spellings.suffix, spellings.middle) if s)
        raise ValueError(
            f"FIM format {name!r} needs the tokens {wanted} in the vocabulary, which lacks "
            f"them; choose one of {valid} (or auto)"
        )
    return fmt


def _metadata_ids(metadata: Mapping[str, Any], tokenizer: CodeTokenizer) -> dict[str, int]:
    """role -> id, for the roles the file's metadata names (llama.cpp's keys first)."""
    ids: dict[str, int] = {}
    n = tokenizer.vocab_size
    for role, keys in FIM_METADATA_KEYS.items():
        key = next((k for k in keys if k is not None and k in metadata), None)
        if key is None:
            continue
        value = int(metadata[key])
        if not 0 <= value < n:
            # llama.cpp warns and ignores it; a silent fallback would hide a broken file.
            raise ValueError(f"{key} = {value} is outside the vocabulary (0..{n - 1})")
        ids[role] = value
    return ids


def _vocab_ids(spellings: _Spellings, tokenizer: CodeTokenizer) -> dict[str, int | None]:
    """role -> the id of the first of the role's spellings that is one token, else None."""
    return {
        role: next(
            (i for s in getattr(spellings, role) if (i := tokenizer.token_to_id(s)) is not None),
            None,
        )
        for role in ROLES
    }


def _family_of(prefix_id: int | None, metadata: Mapping[str, Any], tokenizer: CodeTokenizer) -> str:
    """The family whose prefix marker is spelt as token `prefix_id`, else "gguf"."""
    text = None if prefix_id is None else tokenizer.id_to_token(prefix_id)
    matches = [name for name, s in FAMILIES.items() if text in s.prefix]
    if matches[:2] == ["qwen", "codegemma"]:
        arch = str(metadata.get("general.architecture", ""))
        gemma = arch.startswith("gemma") or tokenizer.token_to_id("<|file_separator|>") is not None
        return "codegemma" if gemma else "qwen"
    return matches[0] if matches else FROM_METADATA


def _build(
    family: str,
    ids: Mapping[str, int | None],
    metadata: Mapping[str, Any],
    tokenizer: CodeTokenizer,
) -> FimFormat:
    roles = {r: ids.get(r) for r in ROLES} if family != NO_FIM else {}
    ends = set(tokenizer.eog_ids)
    ends.update(int(metadata[k]) for k in _END_KEYS if k in metadata)
    ends.update(i for t in _END_TEXTS if (i := tokenizer.token_to_id(t)) is not None)
    # A marker in the output means the model has left the middle (llama.cpp ends generation
    # at fim_pad, fim_rep and fim_sep too). Other families' spellings count as control tokens
    # only: `<PRE>` could be a plain word of some vocabulary.
    ends.update(i for i in roles.values() if i is not None)
    special = tokenizer.special_tokens
    ends.update(special[t] for t in _MARKER_TEXTS if t in special)
    return FimFormat(
        family=family,
        prefix=roles.get("prefix"),
        suffix=roles.get("suffix"),
        middle=roles.get("middle"),
        pad=roles.get("pad"),
        repo_name=roles.get("repo_name"),
        file_sep=roles.get("file_sep"),
        spm=family in FAMILIES and FAMILIES[family].spm,
        end_ids=frozenset(ends),
    )
