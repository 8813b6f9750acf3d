"""From an action request to a checked WorkspaceEdit: context, prompt, generation, patch.

Transport-free except for the typed lsprotocol results: the server calls `compute` with the
document's current text and a `generate` coroutine; tests of the model path call it the same
way through a real server.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from . import context, patches, prompts
from .actions import ActionRequest, enclosing_definition
from .context import ContextPlan, SourceFile, Target

ANNOTATION_ID = "cromwell"


@dataclass(frozen=True)
class DocumentView:
    """The document an action edits, as pygls holds it now."""

    uri: str
    path: str  # workspace-relative POSIX path (the name the model sees)
    text: str
    version: int | None


@dataclass(frozen=True)
class PreparedPrompt:
    plan: ContextPlan
    prompt: str
    tokens: int
    max_new_tokens: int
    target_path: str | None = None  # the new file, for screenshots


def prompt_for(
    request: ActionRequest,
    doc: DocumentView,
    candidates: Sequence[SourceFile],
    recency: Mapping[str, int],
    counter: context.TokenCounter,
    render_chat: Callable[[list[dict[str, str]]], str],
    n_ctx: int,
    max_new_tokens: int,
    context_budget: int | None,
    new_file: str | None = None,
) -> PreparedPrompt:
    """Fit the action's prompt inside the window, generation reserve taken out first."""
    limit = n_ctx - max_new_tokens
    if context_budget is not None:
        limit = min(limit, context_budget)
    if limit <= 0:
        raise context.ContextTooLarge(
            f"maxNewTokens ({max_new_tokens}) leaves no room in the {n_ctx}-token window"
        )
    if request.action == "fromScreenshot":
        target = Target(doc.path, doc.text, request.start_line, request.start_line)

        def render(plan: ContextPlan) -> str:
            return render_chat(prompts.screenshot_messages(plan, new_file or doc.path))
    else:
        target = Target(doc.path, doc.text, request.start_line, request.end_line)
        node = enclosing_definition(doc.text, request.start_line)
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        task = prompts.task_text(request.action, request.instruction, kind)

        def render(plan: ContextPlan) -> str:
            return render_chat(prompts.edit_messages(plan, task))

    plan, prompt, tokens = context.fit(target, candidates, recency, counter, limit, render)
    return PreparedPrompt(plan, prompt, tokens, max_new_tokens, new_file)


def workspace_edit(
    uri: str,
    patch: patches.Patch,
    codec: PositionCodec,
    title: str,
    document_changes: bool,
    create: bool = False,
) -> types.WorkspaceEdit:
    """The patch as a WorkspaceEdit whose change annotation carries the unified diff and asks
    the user to confirm (clients that honour annotations show it before applying)."""
    annotation = types.ChangeAnnotation(
        label=title, needs_confirmation=True, description=patch.diff
    )
    if create:
        edits_ = [
            types.AnnotatedTextEdit(
                range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                new_text=patch.new,
                annotation_id=ANNOTATION_ID,
            )
        ]
        return types.WorkspaceEdit(
            document_changes=[
                types.CreateFile(
                    uri=uri,
                    options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
                    annotation_id=ANNOTATION_ID,
                ),
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=None
                    ),
                    edits=edits_,
                ),
            ],
            change_annotations={ANNOTATION_ID: annotation},
        )
    text_edits = patches.text_edits(patch.old, patch.new, codec)
    if not document_changes:
        return types.WorkspaceEdit(changes={uri: text_edits})
    annotated = [
        types.AnnotatedTextEdit(range=e.range, new_text=e.new_text, annotation_id=ANNOTATION_ID)
        for e in text_edits
    ]
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=patch.version
                ),
                edits=annotated,
            )
        ],
        change_annotations={ANNOTATION_ID: annotation},
    )
