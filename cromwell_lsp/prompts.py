"""Prompt formats: what the model is asked for each action, as chat messages (rendered by the
model's own chat template) or raw continuations. Inline completion (ghost text) builds its
prompts on token ids in the model's own FIM format: ghost.py.

The edit of some lines is the one edit format the model is also trained and evaluated on
(engine/edit_format.py); this module fills it from the context plan. Each chat format asks
for one fenced block; `patches.extract_code` copes with answers that add prose or forget
the fence anyway.
"""

from __future__ import annotations

from engine.edit_format import EditAsk, fence_language

from .context import ContextPlan, snippet_header

SYSTEM = (
    "You are Cromwell, a careful code-editing assistant. Answer with code only, in one "
    "fenced block, and change nothing the task does not ask for."
)


def task_text(action: str, instruction: str | None, kind: str = "function") -> str:
    """The sentence that tells the model what to do."""
    if action == "editSelection":
        return instruction or ""
    if action == "fix":
        return f"Fix this problem: {instruction}"
    if action == "completeBody":
        return "Complete the body of this function. Keep its signature and docstring."
    if action == "addDocstring":
        return f"Add a docstring to this {kind}. Change nothing else."
    if action == "fromScreenshot":
        return "Write the code that reproduces this screenshot."
    raise ValueError(f"unknown action {action!r}")


def _related(plan: ContextPlan) -> str:
    if not plan.snippets:
        return ""
    parts = [snippet_header(s.path, s.start_line, s.end_line) + s.text for s in plan.snippets]
    return "Related code from the workspace:\n" + "".join(parts) + "\n"


def edit_ask(plan: ContextPlan, task: str) -> EditAsk:
    """The edit request for the region of `plan`: its surroundings as the budget left them,
    the related snippets first."""
    return EditAsk(plan.target_path, plan.region, plan.region_lines, plan.before, plan.after,
                   task, _related(plan))


def screenshot_messages(plan: ContextPlan, target_path: str,
                        transcript: str = "") -> list[dict[str, str]]:
    """The screenshot's file; with the code reader's transcript of it when there is one (the
    reading can miss a character here and there: the model mends, it does not rewrite)."""
    lang = fence_language(target_path)
    if transcript.strip():
        user = (
            f"{_related(plan)}"
            f"This code was read from a screenshot and may have a few reading errors:\n"
            f"```{lang}\n{transcript.rstrip()}\n```\n"
            f"Write the file {target_path} exactly as the screenshot shows it, mending only "
            f"reading errors. Reply with the whole file in one ```{lang} block."
        )
    else:
        user = (
            f"{_related(plan)}"
            f"Write {lang or 'the'} code for a new file {target_path} that reproduces the "
            f"screenshot. Reply with the whole file in one ```{lang} block."
        )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


# --- continuations -----------------------------------------------------------------------
# Small code models are far better at continuing a file than at following an instruction to
# rewrite part of it, so "complete the body" and "add a docstring" are asked as raw
# continuations (no chat template): the file up to the point where the new code goes, and
# the model writes on from there.


def related_preamble(plan: ContextPlan) -> str:
    """Related snippets as a comment block at the head of the continuation: the model sees
    the workspace's names and patterns without taking them for code of this file."""
    if not plan.snippets:
        return ""
    out = ["# Related code from the workspace:\n"]
    for s in plan.snippets:
        out.append(snippet_header(s.path, s.start_line, s.end_line))
        out.extend(f"#   {line}" if line.strip() else "#\n" for line in s.text.splitlines(True))
    out.append(f"# ---- file: {plan.target_path} ----\n")
    return "".join(out)


def continuation_prompt(plan: ContextPlan, opener: str = "") -> str:
    """The text the model continues: preamble, the file's lines before the region, the
    region (the definition's head: decorators, signature, docstring), then `opener` (the
    body's indentation, so the model writes a statement of the body and not a comment or a
    new definition at the margin)."""
    return f"{related_preamble(plan)}{plan.before}{plan.region}{opener}"


def indent_width(line: str) -> int:
    """Columns of a line's indentation, tabs counted as four."""
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def dedent_cut(text: str, def_indent: int) -> int | None:
    """Where a continued body ends: the offset of the first line after the first (which
    continues the indentation the prompt ended with) that starts with non-blank text at or
    left of the definition's indentation (`def_indent` columns), or None while there is
    none. A line counts as soon as its first non-blank character is there, so generation
    can stop at once."""
    offset = text.find("\n")
    while offset >= 0:
        start = offset + 1
        end = text.find("\n", start)
        line = text[start : end if end >= 0 else len(text)]
        if line.strip() and indent_width(line) <= def_indent:
            return start
        offset = end
    return None
