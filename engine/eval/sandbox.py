"""Run untrusted generated Python in a child process with resource limits.

The child gets a fresh temporary working directory, an isolated interpreter (`-I`: no user
site, no PYTHON* variables, no script directory on the path), its own session (so a timeout
kills everything it spawned), and rlimits on CPU seconds, address space, file size and open
files. A short guard run before the program stops it from opening sockets or starting
processes. This is containment for honest-but-buggy model output, not a security boundary
against a hostile author.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["passed", "failed", "timeout"]

MEMORY_LIMIT_BYTES = 1 << 30
FILE_SIZE_LIMIT_BYTES = 16 << 20

# Run in the child before the program: no network, no child processes.
_GUARD = """\
import os as _os, socket as _socket, subprocess as _subprocess
def _refuse(*_a, **_k):
    raise PermissionError("the sandbox allows no network or processes")
class _RefusedSocket(_socket.socket):  # a class: modules that subclass it (ssl) still import
    def __init__(self, *_a, **_k):
        raise PermissionError("the sandbox allows no network or processes")
_socket.socket = _RefusedSocket
_socket.create_connection = _refuse
_subprocess.Popen = _refuse
for _name in ("system", "fork", "forkpty", "execv", "execve", "execvp", "kill", "killpg",
              "spawnv", "spawnve", "posix_spawn", "posix_spawnp", "popen"):
    if hasattr(_os, _name):
        setattr(_os, _name, _refuse)
del _os, _socket, _subprocess, _refuse, _RefusedSocket, _name
"""


@dataclass(frozen=True)
class SandboxResult:
    outcome: Outcome
    detail: str  # the tail of stderr on failure; empty otherwise
    stdout: str = ""  # what the program printed, when it was asked for (`capture_stdout`)


def _limit_child(cpu_seconds: int) -> None:
    """preexec_fn: runs in the child between fork and exec."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_program(
    source: str, timeout_s: float = 10.0, capture_stdout: bool = False
) -> SandboxResult:
    """Run `source` as a script; "passed" when it exits 0 within `timeout_s` wall seconds.
    `capture_stdout`: keep what it prints (a program that reports what it observed)."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    with tempfile.TemporaryDirectory(prefix="cromwell-sandbox-") as cwd:
        script = os.path.join(cwd, "program.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_GUARD + "\n" + source + "\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(
            [sys.executable, "-I", script],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: _limit_child(int(timeout_s) + 1),
        )
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return SandboxResult("timeout", "")
        if proc.returncode == -signal.SIGXCPU or proc.returncode == -signal.SIGKILL:
            return SandboxResult("timeout", "CPU time limit")
        printed = out.decode("utf-8", "replace") if out else ""
        if proc.returncode == 0:
            return SandboxResult("passed", "", printed)
        return SandboxResult("failed", err.decode("utf-8", "replace")[-500:], printed)
