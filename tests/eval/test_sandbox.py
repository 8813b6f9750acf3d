"""The sandbox's newer promises: it hands back what a program prints when asked, and modules
that subclass socket.socket (ssl, and all that imports it) load while sockets stay refused."""

from __future__ import annotations

from engine.eval.sandbox import run_program


def test_stdout_comes_back_only_when_asked() -> None:
    program = "print('observed', 6 * 7)\n"
    assert run_program(program, capture_stdout=True).stdout == "observed 42\n"
    assert run_program(program).stdout == ""
    failed = run_program(program + "raise SystemExit(3)\n", capture_stdout=True)
    assert failed.outcome == "failed" and failed.stdout == "observed 42\n"


def test_ssl_imports_but_sockets_are_still_refused() -> None:
    assert run_program("import ssl, http.client, asyncio\n").outcome == "passed"
    for opening in (
        "socket.socket()",
        "socket.socketpair()",
        "ssl.create_default_context().wrap_socket(socket.socket())",
    ):
        result = run_program(f"import socket, ssl\n{opening}\n")
        assert result.outcome == "failed" and "PermissionError" in result.detail, opening
