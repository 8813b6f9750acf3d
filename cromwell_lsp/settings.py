"""The language server's settings: one typed object, each key documented.

Settings arrive three ways, merged in this order: the defaults below, the client's
`initializationOptions`, then every `workspace/configuration` pull (section "cromwell") and
`workspace/didChangeConfiguration` push. Keys are camelCase on the wire (the editors'
convention) and snake_case here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.runtime.fim_format import FAMILY_NAMES as FIM_FORMATS

SECTION = "cromwell"

ACTION_IDS = ("editSelection", "fix", "completeBody", "addDocstring", "fromScreenshot")


@dataclass(frozen=True)
class Settings:
    model_path: str | None = None
    """Path of a GGUF model file. None (the default) loads the model embedded in the package."""

    threads: int | None = None
    """CPU threads for generation. None lets the engine choose (physical cores)."""

    temperature: float = 0.0
    """Sampling temperature; 0 is greedy, which makes edits reproducible."""

    max_new_tokens: int = 512
    """Most tokens one code action may generate; reserved out of the context window."""

    context_budget: int | None = None
    """Most prompt tokens (context included). None uses the model's window less
    `maxNewTokens`; a larger value is clipped to that."""

    actions: tuple[str, ...] = ACTION_IDS
    """Code actions offered: any of editSelection, fix, completeBody, addDocstring,
    fromScreenshot."""

    inline_completion: bool = True
    """Answer `textDocument/inlineCompletion` (ghost text)."""

    inline_debounce_ms: int = 0
    """Wait this long after an inline completion request before generating. A newer request
    always replaces an older one (stopped between two tokens), and requests that come in a
    burst are coalesced, so no wait is needed; raise it to spare a slow machine."""

    inline_max_tokens: int = 64
    """Most tokens one inline completion may generate."""

    inline_max_lines: int = 8
    """Most lines of a suggestion made from a blank line (on a line with code a suggestion
    finishes that line only)."""

    inline_max_ms: int = 1000
    """Generation for one suggestion stops this long after its first token; its complete
    lines are shown."""

    inline_prefix_lines: int = 128
    """Lines above the cursor in the prompt (at least; the window starts on a 16-line grid
    so that it moves rarely)."""

    inline_suffix_lines: int = 32
    """Lines below the cursor given to a model that fills in the middle."""

    inline_extra_chunks: int = 8
    """Chunks of recently opened or edited code kept as extra context (0: none)."""

    fim_format: str | None = None
    """The fill-in-the-middle format: null reads it from the model file; or one of qwen,
    starcoder, codellama, deepseek, codegemma, codestral, gguf (the ids in the file's
    metadata), or none (prefix-only completion)."""

    completion_items: str = "auto"
    """Offer the ghost-text suggestion as a `textDocument/completion` item: auto (only to
    clients without inline completion, such as Neovim 0.11), always, or never."""

    max_file_bytes: int = 1_000_000
    """Files larger than this are left out of the workspace index and refused as targets."""


_WIRE_NAMES = {
    "modelPath": "model_path",
    "threads": "threads",
    "temperature": "temperature",
    "maxNewTokens": "max_new_tokens",
    "contextBudget": "context_budget",
    "actions": "actions",
    "inlineCompletion": "inline_completion",
    "inlineDebounceMs": "inline_debounce_ms",
    "inlineMaxTokens": "inline_max_tokens",
    "inlineMaxLines": "inline_max_lines",
    "inlineMaxMs": "inline_max_ms",
    "inlinePrefixLines": "inline_prefix_lines",
    "inlineSuffixLines": "inline_suffix_lines",
    "inlineExtraChunks": "inline_extra_chunks",
    "fimFormat": "fim_format",
    "completionItems": "completion_items",
    "maxFileBytes": "max_file_bytes",
}


class SettingsError(ValueError):
    """A settings payload with keys or values we cannot use; the message names each one."""


def _check(name: str, value: Any) -> Any:
    """Validate one value; return it in the type the dataclass wants."""
    if name == "model_path":
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        raise SettingsError(f"modelPath must be a file path or null, got {value!r}")
    if name in ("threads", "context_budget"):
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise SettingsError(f"{_wire(name)} must be a positive integer or null, got {value!r}")
    if name == "temperature":
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 2:
            return float(value)
        raise SettingsError(f"temperature must be a number in [0, 2], got {value!r}")
    if name in ("max_new_tokens", "inline_max_tokens", "max_file_bytes", "inline_max_lines",
                "inline_max_ms", "inline_prefix_lines"):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise SettingsError(f"{_wire(name)} must be a positive integer, got {value!r}")
    if name == "inline_debounce_ms":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000:
            return value
        raise SettingsError(f"inlineDebounceMs must be an integer in [0, 10000], got {value!r}")
    if name in ("inline_suffix_lines", "inline_extra_chunks"):
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000:
            return value
        raise SettingsError(f"{_wire(name)} must be a non-negative integer, got {value!r}")
    if name == "fim_format":
        if value is None or value in FIM_FORMATS:
            return value
        raise SettingsError(
            f"fimFormat must be null or one of {', '.join(FIM_FORMATS)}, got {value!r}"
        )
    if name == "completion_items":
        if value in ("auto", "always", "never"):
            return value
        raise SettingsError(f"completionItems must be auto, always or never, got {value!r}")
    if name == "inline_completion":
        if isinstance(value, bool):
            return value
        raise SettingsError(f"inlineCompletion must be true or false, got {value!r}")
    if name == "actions":
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            unknown = [v for v in value if v not in ACTION_IDS]
            if unknown:
                raise SettingsError(
                    f"actions: unknown {unknown}; choose from {', '.join(ACTION_IDS)}"
                )
            return tuple(value)
        raise SettingsError(f"actions must be a list of action names, got {value!r}")
    raise AssertionError(name)


def _wire(name: str) -> str:
    return next(k for k, v in _WIRE_NAMES.items() if v == name)


def merge(base: Settings, payload: Any) -> Settings:
    """Return `base` updated with a client payload (camelCase keys).

    The payload may be the settings themselves or wrap them under "cromwell". Every problem
    is collected and raised together, and nothing is applied unless all keys are valid, so a
    typo never leaves the server half-configured.
    """
    if payload is None:
        return base
    if not isinstance(payload, Mapping):
        raise SettingsError(f"settings must be an object, got {type(payload).__name__}")
    if SECTION in payload and isinstance(payload[SECTION], Mapping):
        payload = payload[SECTION]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in payload.items():
        name = _WIRE_NAMES.get(key)
        if name is None:
            problems.append(f"unknown key {key!r} (known: {', '.join(_WIRE_NAMES)})")
            continue
        try:
            changes[name] = _check(name, value)
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("Cromwell settings: " + "; ".join(problems))
    return dataclasses.replace(base, **changes)


def to_wire(settings: Settings) -> dict[str, Any]:
    """The settings as the client would send them (for explainContext and logs)."""
    out = {}
    for wire, name in _WIRE_NAMES.items():
        value = getattr(settings, name)
        out[wire] = list(value) if isinstance(value, tuple) else value
    return out


def documentation() -> dict[str, str]:
    """Each wire key with its docstring, read from this module's source (for the README)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            name = node.target.id  # type: ignore[union-attr]
            docs[_wire(name)] = " ".join(str(nxt.value.value).split())  # type: ignore[attr-defined]
    return docs


__all__ = [
    "ACTION_IDS",
    "SECTION",
    "Settings",
    "SettingsError",
    "documentation",
    "merge",
    "to_wire",
]
