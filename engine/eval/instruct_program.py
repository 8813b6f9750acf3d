"""The programs instruction-edit tasks run in the sandbox: a file loaded as a module, then
either probes (calls whose outcomes are printed) or tests (asserts on calls).

The file runs as a module of its own name (`MODULE`), not as `__main__`, so its
`if __name__ == "__main__":` block stays quiet; its package is set from its path, so relative
imports resolve against the installed package it came from. Calls are written as Python
literals, so a test reads as a person would write it and every call gets fresh arguments (a
function that mutates a list it was given cannot change the next call's input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

MODULE = "cromwell_task"


@dataclass(frozen=True)
class Call:
    """A call of the function under test: positional arguments then keyword arguments, each
    the source of a Python literal."""

    args: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()

    def source(self, function: str) -> str:
        parts = [*self.args, *(f"{k}={v}" for k, v in self.kwargs)]
        return f"{function}({', '.join(parts)})"


@dataclass(frozen=True)
class Expect:
    """What a call must do in a test: return the literal `value`, or raise `raises` (the name
    of a built-in exception)."""

    value: str | None = None
    raises: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.raises is None):
            raise ValueError("an expectation is a returned value or a raised exception")


def package_of(relpath: str) -> str:
    """The dotted package a file of a source tree sits in ('' at the top)."""
    return ".".join(PurePosixPath(relpath).parent.parts)


def loader(relpath: str, text: str) -> str:
    """Statements that run `text` as the module MODULE (output silenced while it loads)."""
    return (
        "import contextlib as _contextlib, io as _io, sys as _sys, types as _types\n"
        f"_module = _types.ModuleType({MODULE!r})\n"
        f"_module.__file__ = {relpath!r}\n"
        f"_module.__package__ = {package_of(relpath)!r}\n"
        f"_sys.modules[{MODULE!r}] = _module\n"
        "with _contextlib.redirect_stdout(_io.StringIO()):\n"
        f"    exec(compile({text!r}, {relpath!r}, 'exec'), _module.__dict__)\n"
    )


def check_lines(function: str, call: Call, expect: Expect) -> list[str]:
    """One test: an assert on the value, or a try block that needs the exception."""
    called = call.source(function)
    if expect.raises is not None:
        return [
            "try:",
            f"    {called}",
            f"except {expect.raises}:",
            "    pass",
            "else:",
            f"    raise AssertionError({f'{called} did not raise {expect.raises}'!r})",
        ]
    if expect.value == "None":
        return [f"assert {called} is None"]
    return [f"assert {called} == {expect.value}"]


def tests_source(function: str, checks: list[tuple[Call, Expect]]) -> str:
    """The task's tests, as a person would write them: import the function, assert on calls."""
    lines = [f"from {MODULE} import {function}", ""]
    for call, expect in checks:
        lines += check_lines(function, call, expect)
    return "\n".join(lines) + "\n"


def test_program(relpath: str, text: str, tests: str) -> str:
    """The file `text` loaded as a module, then `tests` run against it."""
    return loader(relpath, text) + tests
