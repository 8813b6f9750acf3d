"""Strict JSON request bodies for every HTTP endpoint.

Python's `json` accepts the literals `NaN`, `Infinity` and `-Infinity`, which RFC 8259 does not
have. Let through, a NaN passes pydantic's range checks (every comparison with it is false) and
then fails deep inside a handler, or in rendering an error that quotes it: a 500. The route
class below parses bodies with those literals refused, so the client gets a 400 that names
the literal, once for every endpoint of the app.
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
    """`json.loads` that refuses NaN, Infinity and -Infinity with a 400."""
    return json.loads(body, parse_constant=refuse_constant)


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
