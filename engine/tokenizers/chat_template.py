"""Chat templates (Jinja2 source shipped in `tokenizer.chat_template`) rendered safely.

The template comes from a model file, so it runs in Jinja2's immutable sandbox. The
environment matches the one chat templates are written against (HF `transformers`):
trim_blocks + lstrip_blocks, the loopcontrols extension, a `tojson` filter that keeps
non-ASCII characters, and the globals `raise_exception` and `strftime_now`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

# jinja2 is imported on first use: most tokenizer users never render a chat template, and the
# editor path should not pay for the import.

Message = Mapping[str, Any]


class ChatTemplateError(ValueError):
    """The template does not compile, or it rejected the messages (`raise_exception`)."""


def _raise_exception(message: str) -> None:
    import jinja2

    raise jinja2.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes HTML characters, which would change the prompt text.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def compile_template(source: str) -> jinja2.Template:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ChatTemplateError(f"chat template does not compile (line {e.lineno}): {e}") from e


def render(
    source: str,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool,
    special_tokens: Mapping[str, str | None],
    **extra: Any,
) -> str:
    """Render `messages` with the template `source`; `special_tokens` supplies the template
    variables `bos_token`, `eos_token`, ... ."""
    for i, m in enumerate(messages):
        if "role" not in m or "content" not in m:
            raise ChatTemplateError(f"message {i} needs 'role' and 'content', got {dict(m)!r}")
    import jinja2

    template = compile_template(source)
    try:
        return template.render(
            messages=[dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            **special_tokens,
            **extra,
        )
    except jinja2.TemplateError as e:
        raise ChatTemplateError(f"chat template rejected the messages: {e}") from e
