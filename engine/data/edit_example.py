"""The edit example: a file cut into prefix, region and suffix, where an edit rewrites the
region only; and how to cut two versions of a file into one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

RENAME_LOCAL = "rename_local"
RENAME_FUNCTION = "rename_function"
ADD_DOCSTRING = "add_docstring"
FILL_BODY = "fill_body"
FIX_SYNTAX = "fix_syntax"
FIX_NAME = "fix_name"
REFORMAT = "reformat"
COMMIT = "commit"
SYNTHETIC_KINDS = (
    RENAME_LOCAL, RENAME_FUNCTION, ADD_DOCSTRING, FILL_BODY, FIX_SYNTAX, FIX_NAME, REFORMAT,
)
MAX_REGION_LINES = 80  # regions longer than this do not fit a 4096-token prompt with context


class EditVerificationError(ValueError):
    """An example whose texts do not show the change its kind and instruction claim."""


@dataclass(frozen=True)
class EditExample:
    kind: str
    path: str
    instruction: str
    prefix: str
    region_before: str
    region_after: str
    suffix: str
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def before(self) -> str:
        return self.prefix + self.region_before + self.suffix

    @property
    def after(self) -> str:
        return self.prefix + self.region_after + self.suffix

def split_lines(text: str) -> list[str]:
    """Lines with their ends, split at "\n" only, as `ast` and `tokenize` count lines
    (`str.splitlines` also splits at form feeds, U+2028 and others, which would shift every
    line number after one)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def example_from_texts(
    kind: str,
    path: str,
    instruction: str,
    before: str,
    after: str,
    region: tuple[int, int] | None = None,
    meta: Mapping[str, str] | None = None,
) -> EditExample:
    """An example whose region is `region` (0-based lines of `before`) or, when None, the
    smallest run of whole lines outside of which `before` and `after` agree."""
    b, a = split_lines(before), split_lines(after)
    if region is None:
        start = 0
        while start < min(len(a), len(b)) and a[start] == b[start]:
            start += 1
        tail = 0
        while tail < min(len(a), len(b)) - start and a[-1 - tail] == b[-1 - tail]:
            tail += 1
        region = (start, len(b) - tail)
        if start == len(b) - tail and b:
            # A pure insertion: anchor it on a neighbouring line, so that the region to
            # rewrite is never empty when the file is not.
            region = (start, start + 1) if tail else (start - 1, start)
    start, end = region
    tail = len(b) - end
    if b[:start] != a[:start] or b[end:] != a[len(a) - tail :] or len(a) < start + tail:
        raise EditVerificationError(f"{path}: before and after differ outside lines {region}")
    return EditExample(
        kind=kind,
        path=path,
        instruction=instruction,
        prefix="".join(b[:start]),
        region_before="".join(b[start:end]),
        region_after="".join(a[start : len(a) - tail]),
        suffix="".join(b[end:]),
        meta=dict(meta or {}),
    )
