"""The one edit format: how an edit of some lines of a file is asked of the model, and how
its answer ends.

The product's edits (the language server's actions, `cromwell edit`, HTTP's /v1/edit), the
training rows (`engine.data.edit_makers.to_prompt`) and `cromwell eval edits` all build the
request here, so the model is trained on exactly what it is later asked. It is a chat turn,
rendered by the model's own chat template, that shows the file around the lines, then the
lines, then the instruction last (small instruct models follow a short request best when it
comes right after the code it is about); the answer's fence is opened in the assistant turn,
so the model goes straight into code. The answer is the new version of the lines, then the
fence closes. This format was chosen over a region between special markers because the
untuned default model already answers it (8 of 14 edit tasks applied, against none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

FENCE = "```"

FENCE_LANG = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "jsx",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".rs": "rust",
    ".go": "go",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cc": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".sh": "bash",
    ".lua": "lua",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".html": "html",
    ".css": "css",
    ".md": "markdown",
}

Messages = list[dict[str, str]]
RenderChat = Callable[[Messages], str]  # messages -> prompt text, generation prompt added


class ChatTemplated(Protocol):
    """A tokenizer or a loaded model: either applies the model's chat template."""

    def apply_chat_template(
        self, messages: Messages, add_generation_prompt: bool = True
    ) -> str: ...


def chat_renderer(owner: ChatTemplated) -> RenderChat:
    """`owner`'s chat template as the product applies it: the assistant turn opened."""
    return lambda messages: owner.apply_chat_template(messages, add_generation_prompt=True)


def fence_language(path: str) -> str:
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    return FENCE_LANG.get(suffix, "")


def answer_opening(path: str) -> str:
    """What the prompt already writes of the answer: the opened fence."""
    return f"{FENCE}{fence_language(path)}\n"


@dataclass(frozen=True)
class EditAsk:
    """One edit request: rewrite `region` (lines [start, end) of `path`, 0-based) per `task`.
    `before` and `after` are the file's lines around the region that the caller keeps as
    context (all of them, or as many as its budget allows); `related` is text about other
    files, put first ("" for none)."""

    path: str
    region: str
    region_lines: tuple[int, int]
    before: str
    after: str
    task: str
    related: str = ""


def sentence(task: str) -> str:
    """The instruction as a sentence: capitalised, ending in a full stop."""
    task = task.strip()
    if not task:
        return task
    task = task[0].upper() + task[1:]
    return task if task.endswith((".", "!", "?")) else task + "."


def edit_messages(ask: EditAsk) -> Messages:
    """The chat turn asking for the edit (the surroundings first, the instruction last)."""
    lang = fence_language(ask.path)
    start, end = ask.region_lines
    surroundings = ""
    if ask.before or ask.after:
        surroundings = (
            f"The file {ask.path} around it, for context:\n"
            f"{FENCE}{lang}\n{ask.before}{ask.after}{FENCE}\n\n"
        )
    user = (
        f"{ask.related}{surroundings}"
        f"Lines {start + 1}-{end} of {ask.path}:\n{FENCE}{lang}\n{ask.region}{FENCE}\n"
        f"{sentence(ask.task)} Reply with the new version of these lines only."
    )
    return [{"role": "user", "content": user}]


def edit_prompt(render_chat: RenderChat, ask: EditAsk) -> str:
    """The whole prompt: the chat turn in the model's template, then the opened fence."""
    return render_chat(edit_messages(ask)) + answer_opening(ask.path)


def edit_target(region_after: str) -> str:
    """The answer the prompt expects: the new lines, then the closing fence on a line of its
    own (where the product stops generating)."""
    newline = "" if not region_after or region_after.endswith("\n") else "\n"
    return f"{region_after}{newline}{FENCE}"


def answer_is_complete(answer: str) -> bool:
    """Whether a streamed answer (after the opened fence) has closed its fence."""
    return f"\n{FENCE}" in "\n" + answer
