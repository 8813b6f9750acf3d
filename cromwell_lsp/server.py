"""The language server: pygls glue only. Each handler translates LSP into calls to the plain
modules (`actions`, `context`, `edits`, `patches`, `workspace`) and their results back.

Nothing here writes a file: every edit goes to the client as a WorkspaceEdit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from engine.runtime.prompt_window import WindowSettings, split_lines

from . import (
    actions,
    context,
    domain,
    edits,
    lsp_edits,
    lsp_transport,
    patches,
    prompts,
    request_checks,
    screenshot,
)
from .ghost import GhostSettings, Suggestion
from .ghost_session import GhostSession
from .model_service import ModelService, load_failure
from .protocol import CromwellProtocol
from .settings import SECTION, Settings, SettingsError, merge
from .workspace import FileRefused, WorkspaceIndex

log = logging.getLogger(__name__)
PROGRESS_EVERY = 4  # tokens between two $/progress reports
WATCHER_ID = "cromwell-watch-files"
_WORD_END = re.compile(r"\w+$")  # the word a completion item replaces


def _fail(message: str) -> JsonRpcException:
    return JsonRpcInvalidParams(message=message)


class CromwellServer(LanguageServer):
    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            own_version = version("cromwell")
        except PackageNotFoundError:
            own_version = "0"
        super().__init__(
            "cromwell",
            own_version,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=CromwellProtocol,
        )
        self.settings = Settings()
        self.index = WorkspaceIndex(self.settings.max_file_bytes)
        self.models = ModelService()
        self._progress_ids = itertools.count(1)
        self.ghosts = GhostSession(self.models)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Transport-level problems (a frame that is not JSON...) go to the log, not to a
        pop-up: the client cannot fix them and the server carries on."""
        if source is JsonRpcException:
            self.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Warning, message=f"Cromwell: ignored a message: {error}"
                )
            )
            return
        super().report_server_error(error, source)

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        lsp_transport.serve_io(self, stdin, stdout)  # a reader that survives bad frames

    def start_tcp(self, host: str, port: int) -> None:
        lsp_transport.serve_tcp(self, host, port)

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        """Let `$/cancelRequest` for the current request cancel the running task."""
        msg_id = self.protocol.msg_id
        task = asyncio.current_task()
        running = self.protocol.running  # type: ignore[attr-defined]
        if msg_id is not None and task is not None:
            running[msg_id] = task
        try:
            yield
        finally:
            running.pop(msg_id, None)

    # --- documents -------------------------------------------------------------------------
    def document(self, uri: str) -> edits.DocumentView:
        """The document as pygls holds it (open), else from disk; refused with a clear error
        when it is unknown, not a file, outside the workspace, binary, too large or not valid
        Unicode (the checks live in `request_checks`, the server's one door)."""
        return request_checks.read_document(self, uri)

    def relative(self, uri: str) -> str:
        fs = to_fs_path(uri) if uri.startswith("file:") else None
        if fs is None:
            return uri
        path = Path(fs).resolve()
        root = self.index.root_of(path)
        return path.relative_to(root).as_posix() if root else path.name

    def candidates(self, exclude: str) -> list[context.SourceFile]:
        """Workspace files for the context manager (domain.nearest_files chooses them), open
        documents with their live text."""
        fs = to_fs_path(exclude) if exclude.startswith("file:") else None
        here = Path(fs).resolve().parent if fs else None
        out = []
        for path in domain.nearest_files((f.path for f in self.index.files()), here,
                                         self.index.recency()):
            uri = from_fs_path(str(path))
            if uri is None or uri == exclude:
                continue
            doc = self.workspace.text_documents.get(uri)
            try:
                text = doc.source if doc is not None else self.index.text(path)
            except (FileRefused, OSError):
                continue
            out.append(context.SourceFile(self.relative(uri), text))
        return out

    def recency(self) -> dict[str, int]:
        return {
            self.relative(from_fs_path(str(p)) or ""): t for p, t in self.index.recency().items()
        }

    # --- settings --------------------------------------------------------------------------
    def apply_settings(self, payload: Any) -> None:
        try:
            self.settings = merge(self.settings, payload)
        except SettingsError as exc:
            self.show(str(exc) + ". The previous settings stay in force.", types.MessageType.Error)
            return
        self.index.max_file_bytes = self.settings.max_file_bytes

    async def pull_settings(self) -> None:
        caps = self.client_capabilities.workspace
        if caps is None or not caps.configuration:
            return
        try:
            result = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
            )
        except Exception as exc:  # a client that fails this request keeps current settings
            log.warning("workspace/configuration failed: %s", exc)
            return
        if result and result[0] is not None:
            self.apply_settings(result[0])

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Cromwell: {message}"))

    # --- capabilities ----------------------------------------------------------------------
    def _supports_resolve(self) -> bool:
        ca = (
            self.client_capabilities.text_document
            and self.client_capabilities.text_document.code_action
        )
        props = ca.resolve_support.properties if ca and ca.resolve_support else []
        return "edit" in props

    def _supports_document_changes(self) -> bool:
        we = (
            self.client_capabilities.workspace and self.client_capabilities.workspace.workspace_edit
        )
        return bool(we and (we.document_changes or we.resource_operations))

    def _supports_create(self) -> bool:
        ws = self.client_capabilities.workspace
        we = ws.workspace_edit if ws else None
        return bool(we and we.resource_operations and "create" in we.resource_operations)

    def _supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    # --- code actions ----------------------------------------------------------------------
    def list_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        doc = self.document(params.text_document.uri)
        lines = doc.text.splitlines(keepends=True)
        codec = self.workspace.position_codec
        rng = codec.range_from_client_units(lines, params.range)
        start = types.Position(rng.start.line, rng.start.character)
        end = types.Position(rng.end.line, rng.end.character)
        line_text = lines[start.line] if start.line < len(lines) else ""
        image = actions.image_under_cursor(line_text, start.character)
        cursor_image = self._image_path(doc.uri, image) if image else None
        images = [str(p) for p in self.index.images()]
        offered = actions.offer(
            self.settings,
            doc.uri,
            doc.version,
            doc.text,
            start,
            end,
            params.context.diagnostics,
            Path(doc.path).suffix.lower(),
            cursor_image,
            images,
        )
        only = params.context.only
        resolve = self._supports_resolve()
        out = []
        for item in offered:
            if only and not any(item.kind == k or item.kind.startswith(k + ".") for k in only):
                continue
            data = item.request.to_json()
            command_name = (
                actions.COMMAND_EDIT_SELECTION
                if item.request.action == "editSelection"
                else actions.COMMAND_RUN
            )
            command = types.Command(title=item.title, command=command_name, arguments=[data])
            needs_command = item.request.action == "editSelection" or not resolve
            out.append(
                types.CodeAction(
                    title=item.title,
                    kind=item.kind,
                    diagnostics=[item.diagnostic] if item.diagnostic else None,
                    data=None if needs_command else data,
                    command=command if needs_command else None,
                )
            )
        return out

    def _image_path(self, doc_uri: str, written: str) -> str | None:
        """Resolve an image path written in a document: beside the document, then from each
        workspace root."""
        fs = to_fs_path(doc_uri) if doc_uri.startswith("file:") else None
        bases = ([Path(fs).parent] if fs else []) + list(self.index.roots)
        for base in bases:
            candidate = (base / written).resolve()
            if candidate.is_file():
                return str(candidate)
        return None

    async def compute_edit(
        self, request: actions.ActionRequest, title: str, token: types.ProgressToken | None
    ) -> tuple[types.WorkspaceEdit, str]:
        """The checked WorkspaceEdit for an action, and its unified diff: the domain's
        pipeline (prompt, generation, checked patch) with the document as the editor holds
        it, `$/progress` while it generates."""
        doc = self.document(request.uri)
        if (
            request.version is not None
            and doc.version is not None
            and request.version != doc.version
        ):
            raise JsonRpcException(
                message=f"the document changed since the action was listed (version "
                f"{request.version} -> {doc.version}): ask for code actions again",
                code=types.LSPErrorCodes.ContentModified,
            )
        if request.action == "editSelection" and not (request.instruction or "").strip():
            raise _fail(
                "Edit selection needs an instruction: run workspace/executeCommand "
                f"'{actions.COMMAND_EDIT_SELECTION}' with the action's argument plus "
                '"instruction": "what to change"'
            )
        action = domain.ActionInput(request, doc, self.candidates(doc.uri), self.recency())
        try:
            domain.check_action(action)
        except domain.RequestError as exc:
            raise _fail(str(exc)) from exc
        new_uri = None
        if request.action == "fromScreenshot":
            action, new_uri = await self._screenshot_action(action)

        model = await self._model()
        s = self.settings
        try:
            prepared = await asyncio.to_thread(
                domain.prepare_action, model, action, s.max_new_tokens, s.context_budget)
        except domain.RequestError as exc:
            raise _fail(str(exc)) from exc
        async with self.generation_progress(title, token, s.max_new_tokens) as job:
            try:
                result = await self.models.run(lambda flag: domain.run_action(
                    model, action, prepared, temperature=s.temperature, cancel=flag,
                    on_piece=job.piece, on_retry=job.retry), job.stop_flag)
            except domain.Cancelled as exc:
                job.end_message = "cancelled"
                raise JsonRpcRequestCancelled(message="generation cancelled") from exc
            except patches.PatchError as exc:
                job.end_message = "no edit"
                raise _fail(f"no edit: {exc}") from exc
            except domain.RequestError as exc:
                job.end_message = "failed"
                raise _fail(str(exc)) from exc
            except Exception as exc:  # the engine's error goes to the client, not the log only
                job.end_message = "failed"
                message = f"generation failed: {type(exc).__name__}: {exc}"
                self.show(f"{message}. Try again, or set cromwell.modelPath to another model.")
                raise JsonRpcInternalError(message=message) from exc
        patch = result.patch
        if new_uri is not None:
            edit = lsp_edits.workspace_edit(
                new_uri, patch, self.workspace.position_codec, title, True, create=True
            )
            return edit, patch.diff
        current = self.document(request.uri)
        if current.version != doc.version or current.text != doc.text:
            raise _fail("no edit: the document changed during generation: ask again")
        edit = lsp_edits.workspace_edit(
            doc.uri, patch, self.workspace.position_codec, title, self._supports_document_changes()
        )
        return edit, patch.diff

    async def _screenshot_action(
        self, action: domain.ActionInput
    ) -> tuple[domain.ActionInput, str]:
        """The screenshot action with its new file's name and the reader's transcript, and
        the new file's URI."""
        if not self._supports_create():
            raise _fail(
                "this editor does not accept new files in an edit (resourceOperations"
                " 'create'), so a screenshot cannot become a file here"
            )
        image = self._check_image(action.request.image)
        new_fs = actions.screenshot_target(
            image,
            Path(action.doc.path).suffix or ".py",
            {str(f.path) for f in self.index.files()},
        )
        new_uri = from_fs_path(new_fs) or ""
        new_path = self.relative(new_uri)
        reading = await asyncio.to_thread(screenshot.read, image, Path(new_path).suffix or ".py")
        return dataclasses.replace(action, new_path=new_path, image=image,
                                   reading=reading), new_uri

    def _check_image(self, image: str | None) -> str:
        if not image:
            raise _fail("fromScreenshot needs an image path")
        try:
            return str(domain.check_image(image))
        except domain.RequestError as exc:
            raise _fail(str(exc)) from exc

    async def _model(self) -> Any:
        path = self.settings.model_path
        try:
            return await self.models.model(path, self.settings.threads)
        except Exception as exc:
            message = (f"{load_failure(path, exc)}; set cromwell.modelPath to a Cromwell or"
                       " llama GGUF file, or null for the embedded model")
            self.show(message)
            raise JsonRpcInternalError(message=f"model unavailable: {message}") from exc

    @contextlib.asynccontextmanager
    async def generation_progress(
        self, title: str, token: types.ProgressToken | None, max_tokens: int
    ) -> AsyncIterator[GenerationProgress]:
        """`$/progress` begin/report/end around a generation, and its stop flag: cancelled
        from `$/cancelRequest` (the awaiting task is cancelled, which sets the flag) and from
        the progress (the token's future)."""
        progress = self.work_done_progress
        job = GenerationProgress(asyncio.get_running_loop(), progress, token, max_tokens)
        if token is None and self._supports_progress():
            job.token = f"cromwell-{next(self._progress_ids)}"
            try:
                await progress.create_async(job.token)
            except Exception as exc:  # a client may refuse; generation goes on without
                log.warning("progress create refused: %s", exc)
                job.token = None
        if job.token is not None:
            progress.begin(
                job.token,
                types.WorkDoneProgressBegin(
                    title=title, cancellable=True, message="generating", percentage=0
                ),
            )
            future = progress.tokens.get(job.token)
            if future is not None:
                future.add_done_callback(lambda f: f.cancelled() and job.stop_flag.set())
        try:
            yield job
        except asyncio.CancelledError:
            job.end_message = "cancelled"
            raise
        finally:
            # A cancelled worker runs on until its next token, and the pieces it has queued
            # on the event loop arrive after this point: no report may follow the end.
            job.ended = True
            if job.token is not None:
                message = job.end_message or f"{job.tokens} tokens"
                progress.end(job.token, types.WorkDoneProgressEnd(message=message))
                progress.tokens.pop(job.token, None)

    # --- context explanation ---------------------------------------------------------------
    async def explain(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            data = {"action": "editSelection", "start_line": 0, "end_line": 1, **data}
        try:
            request = actions.ActionRequest.from_json(data)
        except actions.BadRequest as exc:
            raise _fail(f"explainContext: {exc}") from exc
        doc = self.document(request.uri)
        action = domain.ActionInput(request, doc, self.candidates(doc.uri), self.recency())
        model = await self._model()
        s = self.settings
        try:
            explained = await asyncio.to_thread(
                domain.explain_action, model, action, s.max_new_tokens, s.context_budget)
        except domain.RequestError as exc:
            raise _fail(str(exc)) from exc
        explained.pop("prompt")  # the editor shows the plan; the prompt is the HTTP door's extra
        return explained

    # --- ghost text ------------------------------------------------------------------------
    def ghost_settings(self) -> GhostSettings:
        s = self.settings
        window = WindowSettings(prefix_lines=s.inline_prefix_lines,
                                suffix_lines=s.inline_suffix_lines)
        return GhostSettings(window, s.inline_max_tokens, s.inline_max_lines, s.inline_max_ms,
                             s.fim_format)

    async def ghost_at(self, uri: str, position: types.Position) -> Suggestion | None:
        """The ghost-text suggestion at a client position; None when there is none (a newer
        request superseded it, or the position is not in the document)."""
        doc = self.document(uri)
        lines = split_lines(doc.text)
        if position.line > len(lines):
            return None  # a stale position: the document is shorter now
        pos = self.workspace.position_codec.position_from_client_units(lines, position)
        if self.settings.inline_debounce_ms:
            await asyncio.sleep(self.settings.inline_debounce_ms / 1000)
        model = await self._model()
        self.ghosts.ring.max_chunks = self.settings.inline_extra_chunks
        try:
            return await self.ghosts.suggest(
                model, self.ghost_settings(), doc.path, doc.text, pos.line, pos.character
            )
        except ValueError:
            return None  # a column past the line's end: the client's view is stale
        except Exception as exc:  # the engine's error goes to the client, not the log only
            raise JsonRpcInternalError(message=f"ghost text failed: {exc}") from exc

    def offer_related(self, uri: str, text: str) -> None:
        """Rank the workspace against an opened file, off the event loop, for ghost text's
        extra context (the ranking reads and scores up to domain.MAX_CANDIDATES files)."""
        if self.settings.inline_extra_chunks == 0 or not self.settings.inline_completion:
            return
        target = context.Target(self.relative(uri), text, 0, min(40, text.count("\n") + 1))

        loop = asyncio.get_running_loop()

        def work() -> None:
            chunks = self.ghosts.related(target, self.candidates(uri), self.recency())
            loop.call_soon_threadsafe(self.ghosts.offer, chunks)

        task = loop.run_in_executor(None, work)
        task.add_done_callback(lambda f: f.cancelled() or f.exception())  # best effort

    async def inline(self, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        if not self.settings.inline_completion:
            return types.InlineCompletionList(items=[])
        suggestion = await self.ghost_at(params.text_document.uri, params.position)
        if suggestion is None or not suggestion.text.strip():
            return types.InlineCompletionList(items=[])
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=suggestion.text, range=here)]
        )

    def _client_has_inline(self) -> bool:
        text_document = self.client_capabilities.text_document
        return bool(text_document and text_document.inline_completion)

    async def completion_items(self, params: types.CompletionParams) -> types.CompletionList:
        """The ghost-text suggestion as a completion item, for clients that cannot show ghost
        text (Neovim 0.11, Helix, Kate): it replaces the word before the cursor by that word
        and the suggestion, so the client's own filtering keeps it while the user types."""
        mode = self.settings.completion_items
        if mode == "never" or (mode == "auto" and self._client_has_inline()):
            return types.CompletionList(is_incomplete=False, items=[])
        uri, position = params.text_document.uri, params.position
        suggestion = await self.ghost_at(uri, position)
        if suggestion is None or not suggestion.text.strip():
            return types.CompletionList(is_incomplete=True, items=[])
        lines = split_lines(self.document(uri).text)
        codec = self.workspace.position_codec
        pos = codec.position_from_client_units(lines, position)
        line = lines[pos.line] if pos.line < len(lines) else ""
        word = _WORD_END.search(line[: pos.character])
        typed = word.group(0) if word else ""
        start = codec.position_to_client_units(
            lines, types.Position(pos.line, pos.character - len(typed))
        )
        new_text = typed + suggestion.text
        label = new_text.strip().splitlines()[0]
        item = types.CompletionItem(
            label=label if len(label) <= 60 else label[:59] + "\u2026",
            kind=types.CompletionItemKind.Snippet,
            detail="Cromwell",
            documentation=types.MarkupContent(
                kind=types.MarkupKind.Markdown,
                value=f"```{prompts.fence_language(uri)}\n{new_text}\n```",
            ),
            filter_text=new_text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(types.Range(start, position), new_text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])


class GenerationProgress:
    """One generation's `$/progress` and stop flag. `piece` and `retry` are called on the
    model's worker thread; the reports are sent from the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, progress: Any,
                 token: types.ProgressToken | None, max_tokens: int) -> None:
        self.loop, self.progress, self.token = loop, progress, token
        self.max_tokens = max_tokens
        self.stop_flag = threading.Event()
        self.tokens = 0
        self.ended = False
        self.end_message: str | None = None

    def piece(self, _: str) -> None:
        self.loop.call_soon_threadsafe(self._count)

    def retry(self, why: str) -> None:
        self.loop.call_soon_threadsafe(self._report, f"no edit ({why}): asking once more")

    def _count(self) -> None:
        self.tokens += 1
        if self.tokens % PROGRESS_EVERY == 0:
            self._report(f"{self.tokens} tokens",
                         min(99, 100 * self.tokens // max(1, self.max_tokens)))

    def _report(self, message: str, percentage: int | None = None) -> None:
        if self.token is not None and not self.ended:
            self.progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage))


def _action_title(request: actions.ActionRequest) -> str:
    return {
        "editSelection": "Cromwell: Edit selection",
        "fix": f"Cromwell: Fix: {request.instruction or ''}",
        "completeBody": "Cromwell: Complete function body",
        "addDocstring": "Cromwell: Add docstring",
        "fromScreenshot": "Cromwell: Generate code from screenshot",
    }[request.action]


def _request_from(data: Any) -> actions.ActionRequest:
    try:
        return actions.ActionRequest.from_json(data)
    except actions.BadRequest as exc:
        raise _fail(f"bad action data: {exc}") from exc


def create_server() -> CromwellServer:
    server = CromwellServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: CromwellServer, params: types.InitializeParams) -> None:
        ls.apply_settings(params.initialization_options)
        for folder in ls.workspace.folders.values():
            if (fs := to_fs_path(folder.uri)) is not None:
                ls.index.add_root(Path(fs))
        if not ls.index.roots and ls.workspace.root_path:
            ls.index.add_root(Path(ls.workspace.root_path))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CromwellServer, params: types.InitializedParams) -> None:
        await ls.pull_settings()
        watched = (
            ls.client_capabilities.workspace
            and ls.client_capabilities.workspace.did_change_watched_files
        )
        if watched and watched.dynamic_registration:
            try:
                await ls.client_register_capability_async(
                    types.RegistrationParams(
                        registrations=[
                            types.Registration(
                                id=WATCHER_ID,
                                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                    watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
                                ),
                            )
                        ]
                    )
                )
            except Exception as exc:
                log.warning("file watcher registration refused: %s", exc)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CromwellServer, params: types.DidOpenTextDocumentParams) -> None:
        if (fs := to_fs_path(params.text_document.uri)) is not None:
            ls.index.touch(Path(fs), edited=False)
            doc = params.text_document
            ls.ghosts.opened(ls.relative(doc.uri), doc.text)
            ls.offer_related(doc.uri, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CromwellServer, params: types.DidChangeTextDocumentParams) -> None:
        if (fs := to_fs_path(params.text_document.uri)) is not None:
            ls.index.touch(Path(fs), edited=True)
            uri = params.text_document.uri
            doc = ls.workspace.text_documents.get(uri)
            first = params.content_changes[0] if params.content_changes else None
            if doc is not None and isinstance(first, types.TextDocumentContentChangePartial):
                ls.ghosts.edited(ls.relative(uri), doc.source, first.range.start.line)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: CromwellServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            if (fs := to_fs_path(change.uri)) is None:
                continue
            if change.type == types.FileChangeType.Deleted:
                ls.index.remove(Path(fs))
            else:
                ls.index.update(Path(fs))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders(ls: CromwellServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        for folder in params.event.removed:
            if (fs := to_fs_path(folder.uri)) is not None:
                ls.index.remove_root(Path(fs))
        for folder in params.event.added:
            if (fs := to_fs_path(folder.uri)) is not None:
                ls.index.add_root(Path(fs))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CromwellServer, params: types.DidChangeConfigurationParams
    ) -> None:
        payload = params.settings
        if isinstance(payload, dict) and isinstance(payload.get(SECTION), dict):
            ls.apply_settings(payload[SECTION])
        else:  # the pull model: the notification only says "something changed"
            await ls.pull_settings()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.QuickFix,
                types.CodeActionKind.Refactor,
                types.CodeActionKind.RefactorRewrite,
            ],
            resolve_provider=True,
        ),
    )
    def code_action(ls: CromwellServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.list_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: CromwellServer, action: types.CodeAction) -> types.CodeAction:
        request = _request_from(action.data)
        action.edit, _ = await ls.compute_edit(request, action.title, None)
        return action

    async def run(ls: CromwellServer, args: tuple[Any, ...], token: Any) -> dict[str, Any]:
        if len(args) != 1:
            raise _fail(f"expected one argument (the action's data), got {len(args)}")
        request = _request_from(args[0])
        title = _action_title(request)
        with ls.cancellable():
            edit, diff = await ls.compute_edit(request, title, None)
        result = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=title)
        )
        if not result.applied:
            ls.show(
                f"the edit was not applied ({result.failure_reason or 'declined'})",
                types.MessageType.Warning,
            )
        return {"applied": result.applied, "diff": diff}

    @server.command(actions.COMMAND_RUN)
    async def run_action(ls: CromwellServer, *args: Any) -> dict[str, Any]:
        return await run(ls, args, None)

    @server.command(actions.COMMAND_EDIT_SELECTION)
    async def edit_selection(ls: CromwellServer, *args: Any) -> dict[str, Any]:
        return await run(ls, args, None)

    @server.command(actions.COMMAND_EXPLAIN)
    async def explain_context(ls: CromwellServer, *args: Any) -> dict[str, Any]:
        if len(args) != 1:
            raise _fail(
                f"{actions.COMMAND_EXPLAIN} takes one argument {{uri, start_line, "
                f"end_line}}, got {len(args)}"
            )
        return await ls.explain(args[0])

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CromwellServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        return await ls.inline(params)

    @server.command(actions.COMMAND_GHOST_STATS)
    def ghost_stats(ls: CromwellServer, *args: Any) -> dict[str, Any]:
        return dataclasses.asdict(ls.ghosts.stats)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: CromwellServer, params: types.CompletionParams
    ) -> types.CompletionList:
        return await ls.completion_items(params)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CromwellServer, params: None) -> None:
        ls.models.shutdown()

    return server
