"""pygls's protocol with two gaps closed, so that no request is ever left unanswered:
requests whose params do not deserialize get an InvalidParams error (pygls only logs them),
and `$/cancelRequest` reaches command handlers, which pygls runs as untracked inner tasks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)


class _Ignored:
    """What a message that could not be read becomes: pygls drops objects of an unknown
    JSON-RPC version with a warning."""

    jsonrpc = "ignored"


class CromwellProtocol(LanguageServerProtocol):
    """pygls's protocol, plus an answer for requests whose params do not deserialize:
    pygls logs those and never responds, which leaves the client waiting forever."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests whose handler runs as a task pygls does not track under the request's id
        # (workspace/executeCommand runs the command as an inner task): id -> that task.
        self.running: dict[Any, asyncio.Task[Any]] = {}

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        task = self.running.pop(msg_id, None)
        if task is not None:
            task.cancel()  # the generation's stop flag is set as the task unwinds
        super()._handle_cancel_notification(msg_id)

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            message = super().structure_message(data)
        except JsonRpcException as exc:
            method = data.get("method")
            detail = _validation_detail(exc.__cause__)
            message = f"invalid params for {method!r}: {detail}"
            msg_id = data.get("id")
            if "id" in data and method is not None:
                if not isinstance(msg_id, int | str) or isinstance(msg_id, bool):
                    msg_id = None
                self._send_response(msg_id, error=JsonRpcInvalidParams(message).to_response_error())
            else:
                log.warning("ignored a notification: %s", message)
            return _Ignored()
        if "id" in data and "method" in data and not hasattr(message, "id"):
            # A notification method sent as a request: answer rather than leave it pending.
            msg_id = data["id"] if isinstance(data["id"], int | str) else None
            error = JsonRpcInvalidRequest(f"{data['method']!r} is a notification, not a request")
            self._send_response(msg_id, error=error.to_response_error())
            return _Ignored()
        return message


def _validation_detail(exc: BaseException | None) -> str:
    if exc is None:
        return "unreadable message"
    try:
        from cattrs import transform_error

        lines = transform_error(exc)  # type: ignore[arg-type]
    except Exception:
        lines = [str(exc)]
    return "; ".join(lines[:3])
