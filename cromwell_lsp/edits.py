"""An action's prompt and its answer's patch: the edit actions' steps of the pipeline.

`prompt_for` fits an action's prompt (context, task, the answer's opening) to the window;
`patch_from_output` turns the model's answer into a checked patch. Transport-free: the
domain (domain.py) runs them for every door, and lsp_edits.py turns a patch into the LSP's
WorkspaceEdit.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from engine import edit_format

from . import context, patches, prompts
from .actions import ActionRequest, body_is_empty, enclosing_definition
from .context import ContextPlan, SourceFile, Target


@dataclass(frozen=True)
class DocumentView:
    """The document an action edits, as pygls holds it now."""

    uri: str
    path: str  # workspace-relative POSIX path (the name the model sees)
    text: str
    version: int | None


@dataclass(frozen=True)
class Continuation:
    """Where a raw continuation's answer goes: the model continued the file after line
    `insert_line` (0-based, exclusive), and its answer replaces lines
    [insert_line, replace_end) (an empty range inserts)."""

    kind: str  # "body" or "docstring"
    def_indent: int  # columns of the `def`/`class` line
    body_indent: str  # the indentation of the definition's body
    insert_line: int
    replace_end: int


@dataclass(frozen=True)
class PreparedPrompt:
    plan: ContextPlan
    prompt: str
    tokens: int
    max_new_tokens: int
    target_path: str | None = None  # the new file, for screenshots
    continuation: Continuation | None = None
    answer_prefix: str = ""  # what the prompt already wrote of the answer (a fence opener)

    def stop_when(self, text: str) -> bool:
        """Whether the streamed answer so far is complete (checked after every piece)."""
        c = self.continuation
        if c is None:
            # A chat answer is complete when the fence opened for it closes.
            return bool(self.answer_prefix) and edit_format.answer_is_complete(text)
        if c.kind == "body":
            return prompts.dedent_cut(text, c.def_indent) is not None
        return '"""' in text


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
    transcript: str = "",
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
        name = new_file or doc.path
        # With a transcript the answer's fence is opened for the model, as for edits: it
        # goes straight into the code and stops where the fence closes.
        opened = edit_format.answer_opening(name) if transcript.strip() else ""

        def render(plan: ContextPlan) -> str:
            return render_chat(prompts.screenshot_messages(plan, name, transcript)) + opened

        plan, prompt, tokens = context.fit(target, candidates, recency, counter, limit, render)
        return PreparedPrompt(plan, prompt, tokens, max_new_tokens, new_file, None, opened)
    elif (cont := _continuation(request, doc)) is not None:
        # The head of the definition (decorators to the line before the body) is the region
        # kept whole; the lines above it are the surroundings the budget may trim.
        # The model sees nothing after the insertion point, so the target is the text up
        # to it: the whole budget goes to the lines above and to related files.
        head = "".join(doc.text.splitlines(keepends=True)[: cont.insert_line])
        target = Target(doc.path, head, request.start_line, cont.insert_line)
        opener = cont.body_indent + ('"""' if cont.kind == "docstring" else "")

        def render(plan: ContextPlan) -> str:
            return prompts.continuation_prompt(plan, opener)

        plan, prompt, tokens = context.fit(target, candidates, recency, counter, limit, render)
        return PreparedPrompt(plan, prompt, tokens, max_new_tokens, None, cont)
    else:
        target = Target(doc.path, doc.text, request.start_line, request.end_line)
        node = enclosing_definition(doc.text, request.start_line)
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        task = prompts.task_text(request.action, request.instruction, kind)

        # The one edit format (engine/edit_format.py), the one training teaches: the answer's
        # fence is opened in the assistant turn, so the model goes straight into code.
        def render(plan: ContextPlan) -> str:
            return edit_format.edit_prompt(render_chat, prompts.edit_ask(plan, task))

        plan, prompt, tokens = context.fit(target, candidates, recency, counter, limit, render)
        return PreparedPrompt(plan, prompt, tokens, max_new_tokens, new_file, None,
                              edit_format.answer_opening(doc.path))

    plan, prompt, tokens = context.fit(target, candidates, recency, counter, limit, render)
    return PreparedPrompt(plan, prompt, tokens, max_new_tokens, new_file)


def _continuation(request: ActionRequest, doc: DocumentView) -> Continuation | None:
    """The continuation for completeBody / addDocstring on a Python definition whose body
    starts on a line of its own, else None (those go through the chat prompt)."""
    if request.action not in ("completeBody", "addDocstring"):
        return None
    if patches.language_of(doc.path) != "python":
        return None
    node = enclosing_definition(doc.text, request.start_line)
    if node is None or not node.body:  # type: ignore[attr-defined]
        return None
    body = node.body  # type: ignore[attr-defined]
    lines = doc.text.splitlines(keepends=True)
    first = body[0]
    if first.lineno <= node.lineno:  # type: ignore[attr-defined]
        return None  # `def f(): pass` on one line: no line to continue from
    first_line = lines[first.lineno - 1]
    body_indent = first_line[: len(first_line) - len(first_line.lstrip())]
    def_line = lines[node.lineno - 1]  # type: ignore[attr-defined]
    def_indent = prompts.indent_width(def_line)
    if request.action == "addDocstring":
        start = first.lineno - 1
        return Continuation("docstring", def_indent, body_indent, start, start)
    has_doc = ast.get_docstring(node) is not None  # type: ignore[arg-type]
    rest = body[1:] if has_doc else body
    end = node.end_lineno or node.lineno  # type: ignore[attr-defined]
    start = rest[0].lineno - 1 if rest else end
    return Continuation("body", def_indent, body_indent, start, end)


def continued_text(doc: DocumentView, cont: Continuation, answer: str) -> str:
    """The document with the continuation's answer in place, or PatchError when the answer
    holds nothing usable."""
    lines = doc.text.splitlines(keepends=True)
    head, tail = "".join(lines[: cont.insert_line]), "".join(lines[cont.replace_end :])
    if cont.kind == "docstring":
        closed = '"""' in answer
        text = answer.split('"""', 1)[0]
        if not closed:  # cut at the token limit: keep the whole lines only
            text = text[: text.rfind("\n") + 1] if "\n" in text else ""
        body = [ln.rstrip() for ln in text.strip().splitlines()]
        if not body or not body[0]:
            raise patches.PatchError("the model wrote no docstring")
        ind = cont.body_indent
        if len(body) == 1:
            doc_text = f'{ind}"""{body[0]}"""\n'
        else:
            rest = "".join(f"{ind}{ln.strip()}\n" if ln.strip() else "\n" for ln in body[1:])
            doc_text = f'{ind}"""{body[0]}\n{rest}{ind}"""\n'
        return head + doc_text + tail
    cut = prompts.dedent_cut(answer, cont.def_indent)
    code = answer[:cut] if cut is not None else answer
    code = _realign(cont.body_indent, code)
    code = code.rstrip() + "\n" if code.strip() else ""
    language = patches.language_of(doc.path)
    code = patches.complete_lines(language, lambda b: head + b + tail, code)
    if not code.strip() or _still_empty(head + code + tail, cont.insert_line):
        raise patches.PatchError(
            "the model wrote no usable body (still empty, or cut off at maxNewTokens before"
            " a whole statement: raise cromwell.maxNewTokens)"
        )
    return head + code + tail


def _realign(body_indent: str, answer: str) -> str:
    """The answer with its first line at the body's indentation.

    The prompt ended in that indentation, and a tokenizer whose indentation tokens split it
    differently often makes the model add a space: the first line then reads " return x",
    and the model keeps the same extra margin on the lines after it. The extra is taken off
    every line that has it, so the body lines up again."""
    lines = answer.splitlines(keepends=True)
    if not lines:
        return ""
    first = lines[0]
    extra = first[: len(first) - len(first.lstrip(" \t"))]
    margin = body_indent + extra
    rest = [ln[len(extra) :] if extra and ln.startswith(margin) else ln for ln in lines[1:]]
    return body_indent + first.lstrip(" \t") + "".join(rest)


def _still_empty(text: str, body_line: int) -> bool:
    """Whether the definition whose body starts at `body_line` still has an empty body
    (only `pass`, `...` or a docstring): no use offering that as a completed body."""
    node = enclosing_definition(text, body_line)
    return node is None or body_is_empty(node)


def patch_from_output(
    request: ActionRequest,
    doc: DocumentView,
    prepared: PreparedPrompt,
    output: str,
    current_version: int | None,
) -> patches.Patch:
    """The checked patch for a model answer to `prepared` (continuation or chat)."""
    if prepared.continuation is not None:
        new = continued_text(doc, prepared.continuation, output)
        return patches.make_patch(doc.path, doc.version, doc.text, new, current_version)
    return patches.from_model_output(
        doc.path,
        doc.version,
        doc.text,
        (request.start_line, request.end_line),
        prepared.answer_prefix + output,
        current_version,
    )
