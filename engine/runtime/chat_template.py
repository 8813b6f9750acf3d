"""Chat templates as Hugging Face renders them: Jinja2 in a sandbox, blocks trimmed, with the
`raise_exception` helper and a `tojson` filter that keeps non-ASCII text as it is."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


@lru_cache(maxsize=8)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise_exception
    env.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent)
    return env.from_string(source)


def render_chat_template(source: str, messages: list[dict[str, str]], *,
                         add_generation_prompt: bool = True, bos_token: str = "",
                         eos_token: str = "") -> str:
    for i, message in enumerate(messages):
        if "role" not in message or "content" not in message:
            raise ValueError(f"message #{i} needs 'role' and 'content', got {sorted(message)}")
    return str(_compile(source).render(messages=messages,
                                       add_generation_prompt=add_generation_prompt,
                                       bos_token=bos_token, eos_token=eos_token))
