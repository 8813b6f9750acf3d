"""The Python API: Cromwell for programs.

    from cromwell_lsp import api

    proposal = api.propose_edit("src/app.py", "rename x to count", lines=(10, 24))
    print(proposal.diff)
    api.apply_patch(proposal.diff, proposal.root, expected={proposal.path: proposal.old_hash})

The model loads once and stays loaded for later calls until one names another model or
thread count; every call runs on the program's one model service (model_service.py). Every
function raises `RequestError` for a request it cannot serve as asked, `PatchError` when the
model's answer cannot become a safe edit, and `FileChanged` when a file changed under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import domain
from .apply import CheckedPatch, FileChanged
from .apply import apply_patch as _apply_patch
from .domain import EditProposal, GeneratedFile, RequestError
from .model_service import ModelService
from .patches import PatchError, StaleDocument

__all__ = [
    "CheckedPatch", "EditProposal", "FileChanged", "GeneratedFile", "PatchError",
    "RequestError", "StaleDocument", "apply_patch", "complete", "explain_context", "load_model",
    "model_service", "propose_edit", "screenshot_to_code",
]

_service: ModelService | None = None
_service_lock = threading.Lock()


def model_service() -> ModelService:
    """The program's model service: every call of this API runs on its one worker."""
    global _service
    with _service_lock:
        if _service is None:
            _service = ModelService()
        return _service


def load_model(model: str | None = None, threads: int | None = None) -> Any:
    """The runtime model for a GGUF path (None: the embedded default), loaded once and kept
    until a call names another model or thread count."""
    return model_service().call(model, threads, lambda loaded, _: loaded)


def _workspace(path: Path, root: Path | str | None) -> domain.Workspace:
    return domain.Workspace(Path(root) if root is not None else domain.find_root(path))


def propose_edit(
    path: Path | str,
    instruction: str,
    *,
    lines: tuple[int, int] | None = None,
    root: Path | str | None = None,
    model: str | None = None,
    threads: int | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    on_piece: Callable[[str], None] | None = None,
) -> EditProposal:
    """A checked unified diff that rewrites `lines` (1-based, inclusive; default the whole
    file) of `path` as `instruction` asks. Nothing is written: pass `proposal.diff` to
    `apply_patch` with `expected={proposal.path: proposal.old_hash}` to write it."""
    file = domain.absolute_path(path)
    ws = _workspace(file, root)
    source = domain.load_source(ws, file)
    return model_service().call(model, threads, lambda m, cancel: domain.propose_edit(
        m, ws, source, instruction, lines, max_new_tokens=max_new_tokens,
        temperature=temperature, cancel=cancel, on_piece=on_piece))


def explain_context(
    path: Path | str,
    instruction: str = "",
    *,
    lines: tuple[int, int] | None = None,
    root: Path | str | None = None,
    model: str | None = None,
    threads: int | None = None,
    max_new_tokens: int = 512,
) -> dict[str, Any]:
    """What the context manager would send for an edit of `path`, and why."""
    file = domain.absolute_path(path)
    ws = _workspace(file, root)
    source = domain.load_source(ws, file)
    return model_service().call(model, threads, lambda m, _: domain.explain_context(
        m, ws, source, instruction, lines, max_new_tokens))


def complete(
    path: Path | str,
    line: int,
    column: int,
    *,
    root: Path | str | None = None,
    model: str | None = None,
    threads: int | None = None,
    max_tokens: int = 64,
    on_piece: Callable[[str], None] | None = None,
) -> str:
    """The text to insert at (line, column) of `path`, both 0-based (greedy, as ghost text)."""
    file = domain.absolute_path(path)
    ws = _workspace(file, root)
    source = domain.load_source(ws, file)
    return model_service().call(model, threads, lambda m, cancel: domain.complete(
        m, ws, source, line, column, max_tokens=max_tokens, cancel=cancel, on_piece=on_piece))


def screenshot_to_code(
    image: Path | str,
    *,
    target: str | None = None,
    root: Path | str | None = None,
    language_suffix: str = ".py",
    model: str | None = None,
    threads: int | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    on_piece: Callable[[str], None] | None = None,
    raw: bool = False,
) -> GeneratedFile:
    """Code for a new file that reproduces the screenshot: the code reader's transcript,
    mended by the model (`.transcript` is the reading, `.source` says which was kept).
    `raw`: the transcript alone, without loading a model."""
    picture = domain.absolute_path(image)
    ws = domain.Workspace(Path(root) if root is not None else picture.parent)

    def job(m: Any, cancel: threading.Event) -> GeneratedFile:
        return domain.screenshot_to_code(m, ws, picture, target,
                                         language_suffix=language_suffix,
                                         max_new_tokens=max_new_tokens,
                                         temperature=temperature, cancel=cancel,
                                         on_piece=on_piece, raw=raw)

    if raw:  # the reader alone: no model is loaded
        return job(None, threading.Event())
    return model_service().call(model, threads, job)


def apply_patch(
    diff: str,
    root: Path | str = ".",
    *,
    dry_run: bool = False,
    backup: bool = False,
    expected: Mapping[str, str | None] | None = None,
) -> CheckedPatch:
    """Apply a unified diff to the files under `root`, all or nothing (see cromwell_lsp.apply).
    `expected` maps relative paths to the SHA-256 their bytes must still have."""
    hashes = {k: v for k, v in (expected or {}).items() if v is not None}
    return _apply_patch(diff, root, dry_run=dry_run, backup=backup, expected=hashes)


