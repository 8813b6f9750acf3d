"""pygls's protocol with its gaps closed, so that no request is ever left unanswered:
requests whose params do not deserialize get an InvalidParams error (pygls only logs them),
`$/cancelRequest` reaches command handlers, which pygls runs as untracked inner tasks, and
the lifecycle is the spec's: ServerNotInitialized (-32002) before `initialize`,
InvalidRequest after `shutdown` (pygls answers neither), notifications dropped in both."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol

from . import request_checks
from .lsp_transport import send_error

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
        self.initialize_seen = False

    def lifecycle_error(self, method: str, is_request: bool) -> JsonRpcException | None:
        """Why the lifecycle refuses `method` now, or None when it may run."""
        if method == types.EXIT:
            return None  # in any state
        if method == types.INITIALIZE and is_request:
            if self.initialize_seen:
                return JsonRpcInvalidRequest("the server is already initialized")
            return None
        if not self.initialize_seen:
            return JsonRpcServerNotInitialized(f"{method!r} before 'initialize'")
        if self._shutdown:
            return JsonRpcInvalidRequest(f"{method!r} after 'shutdown': only 'exit' is served")
        return None

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if not isinstance(method, str):
            super().handle_message(message)  # responses to our requests
            return
        is_request = hasattr(message, "id")
        error = self.lifecycle_error(method, is_request)
        if method == types.INITIALIZE and is_request:
            self.initialize_seen = True
        if error is None:
            super().handle_message(message)
        elif is_request:
            self._send_response(message.id, error=error.to_response_error())
        else:
            log.warning("dropped a notification: %s", error.message)

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        """The door: a request's document, position and range are checked before its
        handler runs (see `request_checks`)."""
        try:
            request_checks.check_request(self._server, params)  # type: ignore[arg-type]
        except JsonRpcException as exc:
            self._send_response(msg_id, error=exc.to_response_error())
            return
        except Exception as exc:  # a check that fails must still answer
            log.exception("could not check the request's document")
            error = JsonRpcInternalError(f"could not check the document: {type(exc).__name__}")
            self._send_response(msg_id, error=error.to_response_error())
            return
        super()._handle_request(msg_id, method_name, params)

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
                refused = isinstance(method, str) and self.lifecycle_error(method, True)
                send_error(self, msg_id, refused or JsonRpcInvalidParams(message))
            else:
                log.warning("ignored a notification: %s", message)
            return _Ignored()
        if "id" in data and "method" in data and not hasattr(message, "id"):
            # A notification method sent as a request: answer rather than leave it pending.
            msg_id = data["id"] if isinstance(data["id"], int | str) else None
            error = JsonRpcInvalidRequest(f"{data['method']!r} is a notification, not a request")
            send_error(self, msg_id, error)
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
