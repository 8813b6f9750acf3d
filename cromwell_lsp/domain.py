"""The edit pipeline without a transport: context, prompt, generation, checked patch.

The command line, the HTTP server and the Python API call these functions with a loaded
model (anything with `stream`, `tokenizer`, `apply_chat_template`, `n_ctx`, as
`engine.runtime.load` returns). They are synchronous and run wherever the caller has its
model worker; generation stops between two tokens when `cancel` is set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine import edit_format

from . import context, edits, patches, screenshot
from .actions import ActionRequest, screenshot_target
from .apply import resolve_inside, sha256
from .ghost import (
    GhostCancelled,
    GhostRequest,
    GhostSettings,
    Suggestion,
    cursor_after,
    ghost_for,
)
from .ghost_ring import Chunk
from .model_service import stream_to_end
from .patches import PatchError
from .workspace import FileRefused, WorkspaceIndex, read_text

MAX_CANDIDATES = 300  # workspace files scored for one request, nearest first
MAX_FILE_BYTES = 1_000_000
RESCAN_S = 10.0  # a long-lived workspace (the HTTP server) re-reads its folder this often
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
# Linux's PATH_MAX and NAME_MAX: a longer path or name cannot name a file, so it is refused
# here with a sentence rather than by the file system with "File name too long".
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
# A prompt longer than the model's context times this many bytes cannot fit in its context
# whatever the tokenizer does with it: code averages 3 to 4 bytes per token, and only long
# runs of one character (indentation, rulers) reach 16. Refusing by bytes costs nothing,
# whereas tokenizing 8 MB takes seconds and leaves the process hundreds of MB larger.
MAX_PROMPT_BYTES_PER_TOKEN = 32


class RequestError(ValueError):
    """The request cannot be served as asked; the message says what was wrong."""


class Cancelled(RuntimeError):
    """Generation was cancelled before it finished."""


def find_root(path: Path) -> Path:
    """The workspace a file belongs to: the nearest folder above it holding .git, else its
    own folder."""
    path = path.resolve()
    for folder in [path.parent, *path.parent.parents]:
        if (folder / ".git").exists():
            return folder
    return path.parent


class Workspace:
    """A folder's text files for the context manager: read on first use, and again when the
    last reading is over RESCAN_S old (no file watcher outside the language server)."""

    def __init__(self, root: Path | str, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.root = Path(root).resolve()
        self.max_file_bytes = max_file_bytes
        self._index: WorkspaceIndex | None = None
        self._read_at = 0.0

    @property
    def index(self) -> WorkspaceIndex:
        now = time.monotonic()
        if self._index is None or now - self._read_at > RESCAN_S:
            index = WorkspaceIndex(self.max_file_bytes)
            index.add_root(self.root)
            self._index, self._read_at = index, now
        return self._index

    def relative(self, path: Path) -> str:
        path = path.resolve()
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) \
            else path.name

    def candidates(self, exclude: Path | None) -> list[context.SourceFile]:
        """Related-file candidates, nearest in the folder tree first."""
        here = exclude.resolve().parent if exclude is not None else self.root
        out = []
        for path in nearest_files((f.path for f in self.index.files()), here):
            if exclude is not None and path == exclude.resolve():
                continue
            try:
                out.append(context.SourceFile(self.relative(path), self.index.text(path)))
            except (FileRefused, OSError):
                continue
        return out


def nearest_files(paths: Iterable[Path], here: Path | None,
                  recency: Mapping[Path, int] | None = None) -> list[Path]:
    """The files a request's context is chosen from, at most MAX_CANDIDATES of them: those
    the user touched (most recent first), then the nearest to `here` in the folder tree.

    Reading and scoring every file of a large workspace for each request would take longer
    than the edit; these are the files most likely to matter."""
    touched = recency or {}

    def priority(path: Path) -> tuple[int, int, str]:
        distance = 0
        if here is not None:
            common = len(_common_parts(path.parent, here))
            distance = len(path.parent.parts) + len(here.parts) - 2 * common
        return (-touched.get(path, 0), distance, str(path))

    return sorted(paths, key=priority)[:MAX_CANDIDATES]


def _common_parts(a: Path, b: Path) -> list[str]:
    out = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        out.append(x)
    return out


@dataclass(frozen=True)
class Source:
    """The file an operation is about: its path, text, and the hash of its bytes on disk
    (None for text the caller supplied)."""

    path: Path
    relative: str
    text: str
    disk_hash: str | None


def _shown(name: str) -> str:
    """A path as an error message quotes it: escaped, and cut short when it is long."""
    shown = repr(name)[1:-1]
    return shown if len(shown) <= 80 else f"{shown[:60]}...({len(name)} characters)"


def check_path(name: Path | str) -> Path:
    """The checks every door makes on a path it was given, before any file system call: no
    NUL byte, valid Unicode, within PATH_MAX and NAME_MAX. RequestError says which failed."""
    text = str(name)
    if "\x00" in text:
        raise RequestError(f"path {_shown(text)}: contains a NUL byte")
    try:
        encoded = os.fsencode(text)
    except UnicodeError as exc:
        raise RequestError(f"path {_shown(text)}: not valid Unicode") from exc
    if len(encoded) > MAX_PATH_BYTES:
        raise RequestError(f"path {_shown(text)}: longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise RequestError(f"path {_shown(text)}: a name in it is longer than "
                           f"{MAX_NAME_BYTES} bytes")
    return Path(text)


def absolute_path(name: Path | str) -> Path:
    """`name` checked (check_path) and resolved against the working folder."""
    try:
        return check_path(name).resolve()
    except OSError as exc:
        raise RequestError(f"path {_shown(str(name))}: {exc.strerror or exc}") from exc


def path_inside(ws: Workspace, name: Path | str) -> Path:
    """`name` checked (check_path) as a path relative to the workspace that stays inside it,
    symbolic links followed: what a door serving a fixed root accepts."""
    try:
        return resolve_inside(ws.root, str(check_path(name)))
    except PatchError as exc:
        raise RequestError(str(exc)) from exc
    except OSError as exc:
        raise RequestError(f"path {_shown(str(name))}: {exc.strerror or exc}") from exc


def _over(text: str, limit: int) -> bool:
    # The length in code points first: it refuses a huge text without encoding it.
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


def check_text_size(text: str, limit: int, what: str) -> None:
    """Refuse `text` over `limit` UTF-8 bytes, before anything reads it."""
    if _over(text, limit):
        raise RequestError(f"{what} is over the limit of {limit} bytes")


def prompt_byte_limit(model: Any) -> int:
    return int(model.n_ctx) * MAX_PROMPT_BYTES_PER_TOKEN


def check_prompt_size(model: Any, prompt: str, what: str = "the prompt") -> None:
    """Refuse a prompt that cannot fit in the model's context by its bytes, before it is
    tokenized (MAX_PROMPT_BYTES_PER_TOKEN says why this bound is safe)."""
    limit = prompt_byte_limit(model)
    if _over(prompt, limit):
        raise RequestError(f"{what} is over the limit of {limit} bytes ({model.n_ctx} tokens"
                           f" of context at most {MAX_PROMPT_BYTES_PER_TOKEN} bytes each)")


def load_source(ws: Workspace, path: Path | str, text: str | None = None, *,
                confine: bool = False) -> Source:
    """The file a request is about, its path checked (check_path); with `confine`, the path
    must be relative and stay inside the workspace. Text the caller supplies is held to the
    same size limit as a file read from disk."""
    if confine:
        path = path_inside(ws, path)
    else:
        path = check_path(path)
        if not path.is_absolute():
            path = ws.root / path
    relative = ws.relative(path)
    if text is not None:
        check_text_size(text, ws.max_file_bytes, f"the text of {relative}")
        return Source(path, relative, text, None)
    try:
        if not path.is_file():
            raise RequestError(f"{path}: no such file")
        text, _ = read_text(path, ws.max_file_bytes)
    except FileRefused as exc:
        raise RequestError(str(exc)) from exc
    except OSError as exc:
        raise RequestError(f"{relative}: cannot read ({exc.strerror or exc})") from exc
    # The decoded text keeps its own line endings; the hash guards the bytes for --apply.
    return Source(path, relative, text, sha256(path.read_bytes()))


def line_range(text: str, lines: tuple[int, int] | None) -> tuple[int, int]:
    """1-based inclusive lines (A, B) as a 0-based [start, end) region; the whole file
    when None."""
    n = len(text.splitlines())
    if lines is None:
        return 0, n
    a, b = lines
    if a < 1 or b < a:
        raise RequestError(f"lines {a}:{b}: need 1 <= A <= B")
    if b > max(n, 1):
        raise RequestError(f"lines {a}:{b} are outside the {n}-line file")
    return a - 1, b


def render_chat(model: Any) -> edit_format.RenderChat:
    return edit_format.chat_renderer(model)


def generate(
    model: Any,
    prompt: str,
    *,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int | None = None,
    stop: list[str] | None = None,
    image: str | None = None,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
    stop_when: Callable[[str], bool] | None = None,
    task: str | None = None,
) -> str:
    """Stream a generation to the end (or until `cancel`), returning the text; raises
    Cancelled when it was cut short. `stop_when(text so far)` ends it early as complete (the
    prompt's own end condition: a dedent after a body, a closed fence). `task` picks the
    model's weights (Model.stream)."""
    check_prompt_size(model, prompt)
    text, cancelled = stream_to_end(model, prompt, max_tokens=max_tokens,
                                    temperature=temperature, seed=seed, stop=stop, image=image,
                                    cancel=cancel, on_piece=on_piece, stop_when=stop_when,
                                    task=task)
    if cancelled:
        raise Cancelled("generation cancelled")
    return text


@dataclass(frozen=True)
class EditProposal:
    """A checked edit of one file: the unified diff (paths relative to `root`) and what is
    needed to apply it safely later."""

    root: Path
    path: str  # relative to root
    diff: str
    new_text: str
    old_hash: str | None  # the file's bytes when read (None for caller-supplied text)
    prompt_tokens: int
    output: str
    tries: int = 1  # 2 when the first answer was no edit and a second sample was taken, 3 when
    # the base weights answered after two tuned answers were no edit (run_action)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "diff": self.diff, "new_text": self.new_text,
                "old_sha256": self.old_hash, "prompt_tokens": self.prompt_tokens,
                "tries": self.tries}


@dataclass(frozen=True)
class ActionInput:
    """What a code action works on, whichever door it came through: the request, the
    document as the door sees it, the files its context is chosen from, and for a screenshot
    the new file's name, the picture and what the code reader read in it."""

    request: ActionRequest
    doc: edits.DocumentView
    candidates: Sequence[context.SourceFile]
    recency: Mapping[str, int]
    new_path: str | None = None  # a screenshot's new file, relative to the workspace
    image: str | None = None
    reading: screenshot.Reading = screenshot.Reading("", 0.0, None)


def check_action(action: ActionInput) -> None:
    """The checks that need no model: an edit says what to change, and its lines are in
    the document. RequestError says which failed."""
    request = action.request
    if request.action == "editSelection" and not (request.instruction or "").strip():
        raise RequestError("the instruction is empty: say what to change")
    n_lines = len(action.doc.text.splitlines())
    if request.end_line > max(n_lines, 1) or request.start_line > n_lines:
        raise RequestError(f"lines [{request.start_line}, {request.end_line}) are outside "
                           f"the {n_lines}-line document")


def prepare_action(model: Any, action: ActionInput, max_new_tokens: int,
                   context_budget: int | None = None) -> edits.PreparedPrompt:
    """The action's prompt, fitted to the model's window with `max_new_tokens` kept free;
    RequestError when it cannot be asked."""
    request = action.request
    check_action(action)
    check_prompt_size(model, request.instruction or "", "the instruction")
    if action.image is not None and not action.reading.transcript.strip() \
            and not model.takes_images:
        raise RequestError(f"{action.reading.note}, and this model does not take images")
    try:
        return edits.prompt_for(request, action.doc, action.candidates, action.recency,
                                model.tokenizer, render_chat(model), model.n_ctx,
                                max_new_tokens, context_budget, action.new_path,
                                action.reading.transcript)
    except (context.ContextTooLarge, ValueError) as exc:
        raise RequestError(str(exc)) from exc


def model_image(model: Any, action: ActionInput) -> str | None:
    """The picture the model itself is shown: only to a model that takes images."""
    return action.image if model.takes_images else None


def screenshot_code(action: ActionInput, prepared: edits.PreparedPrompt,
                    output: str) -> screenshot.Choice:
    """The code a screenshot becomes: the model's answer where it stays close to the
    reader's transcript, else the transcript (cromwell_lsp/screenshot.py)."""
    name = action.new_path or action.doc.path
    answer = patches.extract_code(prepared.answer_prefix + output)
    chosen = screenshot.choose(answer, action.reading.transcript, Path(name).suffix or ".py")
    if not chosen.code.strip():
        raise patches.PatchError("the model's answer contains no code")
    return chosen


def action_patch(action: ActionInput, prepared: edits.PreparedPrompt, output: str,
                 current_version: int | None = None) -> patches.Patch:
    """The checked patch the model's `output` makes of the action, or PatchError saying why
    it cannot be an edit. A screenshot's patch creates its new file."""
    if action.request.action == "fromScreenshot":
        name = action.new_path or action.doc.path
        code = screenshot_code(action, prepared, output).code
        return patches.Patch(name, None, "", code, new_file_diff(name, code))
    # The answer may continue a fence the prompt opened.
    return edits.patch_from_output(action.request, action.doc, prepared, output,
                                   current_version)


# What an edit action asks the model for: a file with weights tuned for edits runs it on them
# (a screenshot's action, which has an image, stays on the base: Model.stream_tokens).
EDIT_TASK = "edit"
# An answer that is no edit (it does not parse, changes nothing, holds no code) is asked for
# once more with a different sample: greedy decoding would only repeat it. The second sample's
# seed is fixed, so a request gives the same answer every time.
RETRY_TEMPERATURE = 0.7
RETRY_SEED = 1


def check_parses(patch: patches.Patch) -> None:
    """PatchError when the edit leaves code that does not parse, in a language Cromwell can
    parse (patches.edit_parse_error). This holds whether or not the file parsed before: an
    edit offered to the user must leave code that parses, and a file that was broken before
    (a syntax error to fix) is no reason to offer one that is still broken; only an error in
    another top-level statement, which the edit did not touch, is left to the user."""
    language = patches.language_of(patch.path)
    err = patches.edit_parse_error(language, patch.old, patch.new)
    if err is None:
        return
    before = "" if patch.old == "" or patches.parse_error(language, patch.old) is None \
        else "; it did not parse before the edit either"
    raise patches.PatchError(f"the edited {language} does not parse ({err}{before})")


def neither_is_an_edit(first: patches.PatchError,
                       last: patches.PatchError) -> patches.PatchError:
    """The refusal when no answer was an edit: the first one's reason, and the last's where
    it differs."""
    if str(first) == str(last):
        return patches.PatchError(f"none of the model's answers is an edit: {first}")
    return patches.PatchError(f"none of the model's answers is an edit: {first}; "
                              f"the last: {last}")


@dataclass(frozen=True)
class ActionResult:
    patch: patches.Patch
    output: str  # the model's answer the patch was made from
    tries: int  # 1; 2 when the first answer was no edit; 3 when the base weights answered


def run_action(
    model: Any,
    action: ActionInput,
    prepared: edits.PreparedPrompt,
    *,
    temperature: float = 0.0,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> ActionResult:
    """Generate the answer to `prepared` and check it into a patch that, for an edit, leaves
    the file parsing (check_parses); an answer that is no edit gets one more try with a different
    sample (RETRY_TEMPERATURE, RETRY_SEED), and `on_retry(why)` is told. A model whose edits run
    on tuned weights (Model.tuned_tasks) gets a third try, greedy, on its base weights when
    neither tuned answer is an edit: the fine-tune passes more of the edit kinds it learnt,
    the base carries out some plain instructions it leaves undone. When no answer is an edit
    nothing is offered: PatchError (neither_is_an_edit) says why. Every door offers only what
    this returns."""
    def attempt(temperature: float, seed: int | None, n: int, task: str | None) -> ActionResult:
        output = generate(model, prepared.prompt, max_tokens=prepared.max_new_tokens,
                          temperature=temperature, seed=seed, image=model_image(model, action),
                          cancel=cancel, on_piece=on_piece, stop_when=prepared.stop_when,
                          task=task)
        patch = action_patch(action, prepared, output)
        if action.request.action != "fromScreenshot":
            # A screenshot's new file is what the picture shows, and a picture may show a
            # fragment (an indented method); screenshot.choose prefers code that parses.
            check_parses(patch)
        return ActionResult(patch, output, n)

    tries = [(temperature, None, EDIT_TASK), (max(temperature, RETRY_TEMPERATURE), RETRY_SEED,
                                              EDIT_TASK)]
    if EDIT_TASK in getattr(model, "tuned_tasks", ()):  # the edit ran on tuned weights
        tries.append((temperature, None, None))
    errors: list[patches.PatchError] = []
    for n, (temp, seed, task) in enumerate(tries, 1):
        if errors and on_retry is not None:
            on_retry(str(errors[-1]))
        try:
            return attempt(temp, seed, n, task)
        except patches.StaleDocument:
            raise
        except patches.PatchError as err:
            errors.append(err)
    raise neither_is_an_edit(errors[0], errors[-1]) from errors[-1]


def edit_action(ws: Workspace, source: Source, instruction: str,
                lines: tuple[int, int] | None) -> ActionInput:
    """An "edit these lines per the instruction" action on a file of the workspace."""
    start, end = line_range(source.text, lines)
    request = ActionRequest("editSelection", source.path.as_uri(), None, start, end, instruction)
    doc = edits.DocumentView(request.uri, source.relative, source.text, None)
    return ActionInput(request, doc, ws.candidates(source.path), {})


def propose_edit(
    model: Any,
    ws: Workspace,
    source: Source,
    instruction: str,
    lines: tuple[int, int] | None = None,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    context_budget: int | None = None,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> EditProposal:
    """Ask the model to rewrite `lines` of the file per `instruction`; a checked diff, or
    patches.PatchError saying why the answer cannot be an edit."""
    if not instruction.strip():
        raise RequestError("the instruction is empty: say what to change")
    action = edit_action(ws, source, instruction, lines)
    prepared = prepare_action(model, action, max_new_tokens, context_budget)
    result = run_action(model, action, prepared, temperature=temperature, cancel=cancel,
                        on_piece=on_piece)
    return EditProposal(ws.root, source.relative, result.patch.diff, result.patch.new,
                        source.disk_hash, prepared.tokens, result.output, result.tries)


def explain_action(model: Any, action: ActionInput, max_new_tokens: int = 512,
                   context_budget: int | None = None) -> dict[str, Any]:
    """What the context manager would send for this action, and why (no generation). An edit
    with no instruction yet is explained as if it had one."""
    if not (action.request.instruction or "").strip():
        action = replace(action, request=replace(action.request, instruction="(explain)"))
    prepared = prepare_action(model, action, max_new_tokens, context_budget)
    out = context.explain(prepared.plan, prepared.tokens)
    out["prompt"] = prepared.prompt
    return out


def explain_context(
    model: Any, ws: Workspace, source: Source, instruction: str,
    lines: tuple[int, int] | None, max_new_tokens: int = 512,
    context_budget: int | None = None,
) -> dict[str, Any]:
    """What the context manager would send for an edit of these lines, and why."""
    return explain_action(model, edit_action(ws, source, instruction, lines), max_new_tokens,
                          context_budget)


def complete(
    model: Any,
    ws: Workspace,
    source: Source,
    line: int,
    column: int,
    *,
    max_tokens: int = 64,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> str:
    """The text to insert at (line, column), both 0-based, column in code points: the ghost
    text pipeline's suggestion (the model's own FIM format, windows around the cursor)."""
    ghost = ghost_for(model, GhostSettings(max_tokens=max_tokens))
    request = GhostRequest(source.relative, source.text, line, column)
    try:
        return ghost.suggest(request, cancel, on_piece).text
    except GhostCancelled as exc:
        raise Cancelled("generation cancelled") from exc
    except ValueError as exc:  # the cursor is outside the file
        raise RequestError(str(exc)) from exc


def infill(
    model: Any,
    prefix: str,
    suffix: str,
    extra: list[tuple[str, str]] | None = None,
    *,
    path: str = "untitled",
    max_tokens: int = 64,
    max_ms: int = GhostSettings.max_ms,
    cancel: threading.Event | None = None,
) -> Suggestion:
    """Fill in between `prefix` and `suffix` (llama.cpp's /infill): `extra` (file name,
    text) chunks go before them as the model's repo-level context, or as named snippets."""
    check_prompt_size(model, prefix + suffix + "".join(t for _, t in extra or ()),
                      "the prefix, suffix and extra context")
    line, column = cursor_after(prefix)
    chunks = tuple(Chunk(name, 0, text) for name, text in extra or ())
    ghost = ghost_for(model, GhostSettings(max_tokens=max_tokens, max_ms=max_ms))
    try:
        return ghost.suggest(GhostRequest(path, prefix + suffix, line, column, chunks), cancel)
    except GhostCancelled as exc:
        raise Cancelled("generation cancelled") from exc


def check_image(image: Path | str) -> Path:
    """The image path if it names a picture Pillow can read; RequestError otherwise."""
    path = check_path(image)
    if not path.is_file():
        raise RequestError(f"image not found: {image}")
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.verify()
    except Exception as exc:
        raise RequestError(f"{image} is not an image Cromwell can read ({exc})") from exc
    return path


@dataclass(frozen=True)
class GeneratedFile:
    path: str
    code: str
    diff: str  # creates the file (from /dev/null)
    transcript: str = ""  # what the code reader read in the picture ("" when nothing)
    source: str = "model"  # where `code` comes from: "model" or "transcript"


def new_file_diff(name: str, code: str) -> str:
    return patches.unified_diff("", code, name).replace(f"--- a/{name}", "--- /dev/null", 1)


def screenshot_to_code(
    model: Any,
    ws: Workspace,
    image: Path | str,
    target: str | None = None,
    *,
    language_suffix: str = ".py",
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
    raw: bool = False,
) -> GeneratedFile:
    """Code for a new file reproducing the screenshot `image`: the code reader's transcript,
    mended by the model where its answer stays close to it (cromwell_lsp/screenshot.py).
    `raw`: the transcript alone, no model call (`model` may be None)."""
    image_path = check_image(image)
    if target is not None:  # a new file inside the workspace, never beside or above it
        target = ws.relative(path_inside(ws, target))
    name = target or screenshot_target(ws.relative(image_path), language_suffix,
                                       {ws.relative(f.path) for f in ws.index.files()})
    suffix = Path(name).suffix or language_suffix
    reading = screenshot.read(str(image_path), suffix)
    if raw:
        if not reading.transcript.strip():
            raise RequestError(f"nothing to transcribe: {reading.note}")
        return GeneratedFile(name, reading.transcript, new_file_diff(name, reading.transcript),
                             reading.transcript, "transcript")
    request = ActionRequest("fromScreenshot", Path(ws.root / name).as_uri(), None, 0, 0,
                            image=str(image_path))
    doc = edits.DocumentView(request.uri, name, "", None)
    action = ActionInput(request, doc, ws.candidates(None), {}, name, str(image_path), reading)
    prepared = prepare_action(model, action, max_new_tokens)
    try:
        result = run_action(model, action, prepared, temperature=temperature, cancel=cancel,
                            on_piece=on_piece)
    except patches.PatchError:
        raise
    except ValueError as exc:
        raise RequestError(str(exc)) from exc
    chosen = screenshot_code(action, prepared, result.output)
    return GeneratedFile(name, chosen.code, new_file_diff(name, chosen.code),
                         reading.transcript, chosen.source)
