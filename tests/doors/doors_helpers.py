"""Helpers: the installed `cromwell` command, and `cromwell serve` started as a real process
on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CROMWELL = str(Path(sys.executable).with_name("cromwell"))
SAMPLE = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


def cromwell_env() -> dict[str, str]:
    env = dict(os.environ)
    local_cache = REPO / ".cache" / "cromwell"
    if "CROMWELL_HOME" not in env and (local_cache / "models").is_dir():
        env["CROMWELL_HOME"] = str(local_cache)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, root: Path, *args: str, token: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.token = token
        env = cromwell_env()
        env.pop("CROMWELL_TOKEN", None)
        if token:
            env["CROMWELL_TOKEN"] = token
        self.proc = subprocess.Popen(
            [CROMWELL, "serve", "--port", str(self.port), "--root", str(root), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cromwell serve exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(self.url + "/health", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("cromwell serve did not answer /health in 90 s")

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_root(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.py").write_text(SAMPLE)
    (folder / "util.py").write_text("def helper(x):\n    return add(x, 1)\n")
    return folder
