"""Strict JSON request bodies for every HTTP endpoint.

Python's `json` accepts the literals `NaN`, `Infinity` and `-Infinity`, which RFC 8259 does not
have. Let through, a NaN passes pydantic's range checks (every comparison with it is false) and
then fails deep inside a handler, or in rendering an error that quotes it: a 500. Likewise an
escaped lone surrogate (`"\ud800"`) parses into a string that is not Unicode text, which the
tokenizer and every encoder refuse with a TypeError. The route class below parses bodies with
both refused, so the client gets a 400 that names the problem, once for every endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

NON_JSON_CONSTANTS = ("NaN", "Infinity", "-Infinity")


def refuse_constant(literal: str) -> Any:
    raise HTTPException(
        400,
        f"the request body is not valid JSON: {literal} is not a JSON number "
        "(JSON has no NaN or Infinity): send a finite number",
    )


def loads_strict(body: bytes | str) -> Any:
    """`json.loads` that refuses NaN, Infinity, -Infinity and lone surrogates with a 400."""
    value = json.loads(body, parse_constant=refuse_constant)
    if "\\u" in (body if isinstance(body, str) else body.decode("utf-8", "replace")):
        refuse_lone_surrogates(value)  # only an escape can spell one: UTF-8 cannot
    return value


def refuse_lone_surrogates(value: Any) -> None:
    strings = [value] if isinstance(value, str) else []
    if isinstance(value, dict):
        strings = list(value)
        for item in value.values():
            refuse_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            refuse_lone_surrogates(item)
    for text in strings:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HTTPException(400, "the request body is not valid JSON text: a string holds "
                                f"a lone surrogate ({text[exc.start]!r}), which is not Unicode"
                                ) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body is parsed by `loads_strict`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
