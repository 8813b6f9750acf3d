"""Soak: a real `cromwell serve` under mixed load and abandoned requests, and `kill -9`
during applies.

HTTP: CLIENTS threads each send REQUESTS requests to a `cromwell serve` started here on
127.0.0.1: health, context, completion and edit requests with a few tokens, bad input of
every kind the doors refuse, and completions the client abandons mid-way. It reports lost
requests (no answer where one was awaited; a 429 is retried), 5xx answers, p50/p95 latency
per kind (retries included), the server's RSS before and after, and (with --oversized, after
the load) its RSS after each of four 8 MB requests.

Apply: TRIALS times, a process applying a FILES-file patch to one folder is killed with SIGKILL
at a random moment of the apply; every file must then be wholly old or wholly new, and after
the next apply in that folder no staged file (`.cromwell-tmp`, `.cromwell-old`) may remain.

Bounded in count and time (--deadline), loopback only, and it stops the server it started.
Exit status 1 when a goal is missed. `make soak` runs the full counts; the tests a slice.

    python bench/soak.py --clients 8 --requests 200 --kill-trials 100 --oversized
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.machine import cpu_name

CROMWELL = str(Path(sys.executable).with_name("cromwell"))
SAMPLE = ("def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n\n\n"
          "def area(width, height):\n    return width * height\n")
REQUEST_TIMEOUT_S = 180.0
# A 429 is retried after this long (shorter than Retry-After, to keep the run short), up to
# BUSY_RETRIES times; a request still refused then is counted as "busy", not lost.
BUSY_BACKOFF_S = 0.1
BUSY_RETRIES = 100
ABANDON_AFTER_S = (0.02, 0.4)  # an abandoning client hangs up after this long, at random
OVERSIZED_BYTES = 8_000_000  # under the server's default 10 MB body limit

# One client's requests go round this cycle (from a different start per client), so that
# even a short run sends every kind.
CYCLE = ["health", "context", "complete", "bad", "edit", "health", "bad", "abandon",
         "complete", "bad"]


def _bad_requests() -> list[tuple[str, str, Any]]:
    """(method, path, JSON body or raw bytes) that every door must refuse with a 4xx."""
    return [
        ("POST", "/v1/complete", {"path": "pkg/m.py\u0000.txt", "line": 0, "column": 0}),
        ("POST", "/v1/context", {"path": "a" * 5000}),
        ("POST", "/v1/edit", {"path": "../../etc/passwd", "instruction": "x"}),
        ("POST", "/v1/edit", {"path": "/etc/passwd", "instruction": "x"}),
        ("POST", "/v1/edit", {"path": "pkg/m.py", "instruction": "x", "lines": [40, 90]}),
        ("POST", "/v1/complete", {"path": "pkg/m.py", "line": 99_999, "column": 0}),
        ("POST", "/v1/complete", {"path": "pkg/m.py", "line": 0, "column": -1}),
        ("POST", "/v1/context", b'{"path": "pkg/m.py", "instruction": '),
        ("POST", "/v1/edit", {"path": "pkg/m.py", "instruction": "y" * 300_000}),
        ("POST", "/v1/completions", b'{"prompt": "x", "temperature": NaN}'),
        ("POST", "/v1/edit", {"instruction": "missing the path"}),
        ("GET", "/v1/nothing-here", None),
    ]


@dataclass
class LoadReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lost: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    busy_answers: int = 0  # 429s, each retried
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_busy(self) -> None:
        with self.lock:
            self.busy_answers += 1

    def record(self, kind: str, status: int | str, seconds: float | None, note: str = "") -> None:
        with self.lock:
            self.outcomes[f"{kind} {status}"] += 1
            if seconds is not None:
                self.latencies[kind].append(seconds)
            if status == "lost":
                self.lost.append(f"{kind}: {note}")
            elif isinstance(status, int) and status >= 500:
                self.server_errors.append(f"{kind} {status}: {note[:200]}")
            elif note:
                self.unexpected.append(f"{kind} {status}: {note[:200]}")


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Served:
    """`cromwell serve` on a free loopback port over `root`, until stop()."""

    def __init__(self, root: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root.parent / "serve.log"
        with self.log.open("w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [CROMWELL, "serve", "--host", "127.0.0.1", "--port",
                 self.url.rsplit(":", 1)[1], "--root", str(root)],
                stdout=log, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if k != "CROMWELL_TOKEN"},
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cromwell serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("cromwell serve did not answer /health in 120 s")

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_root(folder: Path) -> Path:
    (folder / "pkg").mkdir(parents=True, exist_ok=True)
    (folder / "pkg" / "m.py").write_text(SAMPLE)
    (folder / "pkg" / "util.py").write_text("from pkg.m import add\n\n\ndef inc(x):\n"
                                            "    return add(x, 1)\n")
    return folder


# --- the load --------------------------------------------------------------------------------


def _send(http: httpx.Client, kind: str, i: int, rng: random.Random,
          report: LoadReport) -> None:
    started = time.perf_counter()
    body: Any = None
    expect: set[int] = {200, 429}
    method, path = "POST", ""
    if kind == "health":
        method, path, expect = "GET", "/health", {200}
    elif kind == "context":
        path, body = "/v1/context", {"path": "pkg/m.py", "instruction": f"rename add ({i})",
                                     "max_tokens": 16}
    elif kind == "complete":
        path, body = "/v1/complete", {"path": "pkg/m.py", "line": 1, "column": 4,
                                      "max_tokens": 1 + i % 4}
    elif kind == "edit":
        path, body = "/v1/edit", {"path": "pkg/m.py", "lines": [1, 2], "max_tokens": 8,
                                  "instruction": "make add return the sum"}
        expect = {200, 422, 429}  # 422: the few tokens allowed are not a complete edit
    elif kind == "bad":
        bad = _bad_requests()
        method, path, body = bad[i % len(bad)]
        expect = set(range(400, 500)) - {408}
    try:
        if kind == "abandon":
            # A fresh connection that hangs up before the answer: the server must cancel the
            # generation and carry on. (A quick answer before the hang-up is fine too.)
            with httpx.Client(base_url=str(http.base_url),
                              timeout=rng.uniform(*ABANDON_AFTER_S)) as short:
                r = short.post("/v1/complete", json={"path": "pkg/m.py", "line": 4,
                                                     "column": 4, "max_tokens": 64})
            report.record(kind, r.status_code, time.perf_counter() - started,
                          "" if r.status_code in (200, 429) else r.text)
            return
        for _ in range(BUSY_RETRIES + 1):
            if isinstance(body, bytes):
                r = http.request(method, path, content=body,
                                 headers={"content-type": "application/json"})
            else:
                r = http.request(method, path, json=body)
            if r.status_code != 429:
                break
            report.count_busy()
            time.sleep(BUSY_BACKOFF_S)
    except httpx.TimeoutException as exc:
        if kind == "abandon":
            report.record(kind, "hung up", None)
        else:
            report.record(kind, "lost", None, f"{type(exc).__name__}: {exc}")
        return
    except httpx.HTTPError as exc:
        report.record(kind, "lost", None, f"{type(exc).__name__}: {exc}")
        return
    elapsed = time.perf_counter() - started
    note = "" if r.status_code in expect else f"{method} {path}: {r.text}"
    report.record(kind, r.status_code, elapsed, note)


def run_load(url: str, clients: int, requests: int, deadline: float, seed: int) -> LoadReport:
    report = LoadReport()

    def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
            for i in range(requests):
                if time.monotonic() > deadline:
                    report.record("any", "not sent (deadline)", None)
                    continue
                _send(http, CYCLE[(n + i) % len(CYCLE)], n * requests + i, rng, report)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + REQUEST_TIMEOUT_S))
        if t.is_alive():
            report.record("client", "lost", None, "a client thread did not finish")
    return report


def oversized(url: str, served: Served) -> list[dict[str, Any]]:
    """RSS after each 8 MB request, by door; the status and the seconds it took."""
    huge = "x" * OVERSIZED_BYTES
    rows = []
    doors = [("/v1/edit", {"path": "pkg/m.py", "instruction": huge}),
             ("/v1/complete", {"path": "pkg/m.py", "text": huge, "line": 0, "column": 0}),
             ("/v1/context", {"path": "pkg/m.py", "instruction": huge}),
             ("/v1/completions", {"prompt": huge, "max_tokens": 1})]
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        for path, body in doors:
            started = time.perf_counter()
            r = http.post(path, json=body)
            rows.append({"door": path, "status": r.status_code,
                         "seconds": round(time.perf_counter() - started, 2),
                         "rss_mb_after": round(served.rss_mb(), 1),
                         "detail": r.text[:160]})
    return rows


# --- kill -9 during apply ------------------------------------------------------------------

_APPLIER = """
import sys, time
from pathlib import Path
from cromwell_lsp.apply import apply_patch
diff = Path(sys.argv[1]).read_text()
print("ready", flush=True)
started = time.perf_counter()
apply_patch(diff, sys.argv[2])
print(f"done {time.perf_counter() - started:.4f}", flush=True)
"""


def _contents(trial: int, i: int, size: int) -> tuple[str, str]:
    old = "".join(f"line {j} of file {i}, trial {trial}\n" for j in range(size // 28))
    new = old.replace("line 3 of", "LINE 3 of").replace("line 700 of", "LINE 700 of")
    return old, new


def kill_trials(work: Path, trials: int, files: int, size: int, deadline: float,
                seed: int) -> dict[str, Any]:
    from cromwell_lsp.apply import apply_patch
    from cromwell_lsp.patches import unified_diff

    rng = random.Random(seed)
    folder = work / "pkg"
    folder.mkdir(parents=True, exist_ok=True)
    outcome: Counter[str] = Counter()
    mixed: list[str] = []
    stray_after_next: list[str] = []
    apply_s = 0.0
    for trial in range(trials + 1):  # trial 0 runs unkilled, to time an apply
        if time.monotonic() > deadline:
            outcome["not run (deadline)"] += trials + 1 - trial
            break
        olds, news, parts = {}, {}, []
        for i in range(files):
            old, new = _contents(trial, i, size)
            (folder / f"mod{i:02}.py").write_text(old)
            olds[i], news[i] = old.encode(), new.encode()
            parts.append(unified_diff(old, new, f"pkg/mod{i:02}.py"))
        patch = work / "trial.diff"
        patch.write_text("".join(parts))
        proc = subprocess.Popen([sys.executable, "-c", _APPLIER, str(patch), str(work)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the applier did not start")
        if trial == 0:
            done = proc.stdout.readline().split()
            proc.wait()
            apply_s = float(done[1])
        else:
            time.sleep(rng.uniform(0, 1.2 * apply_s))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        states = []
        for i in range(files):
            data = (folder / f"mod{i:02}.py").read_bytes()
            if data not in (olds[i], news[i]):
                mixed.append(f"trial {trial}: mod{i:02}.py is neither old nor new")
            states.append(data == news[i])
        if trial == 0:
            continue
        if proc.returncode == 0:
            outcome["finished before the kill"] += 1
        elif all(states):
            outcome["killed, every file new"] += 1
        elif any(states):
            outcome["killed, some files new"] += 1
        else:
            outcome["killed, every file old"] += 1
        left = [n for n in os.listdir(folder) if ".cromwell-" in n]
        if left:
            outcome["killed with staged files left"] += 1
        # The next apply in that folder, by this process: it must clear what the kill left.
        sentinel = folder / "sentinel.py"
        sentinel.write_text("x = 0\n")
        apply_patch(unified_diff("x = 0\n", "x = 1\n", "pkg/sentinel.py"), work)
        stray = [n for n in os.listdir(folder) if ".cromwell-" in n]
        if stray:
            stray_after_next.append(f"trial {trial}: {stray}")
    return {"trials": sum(v for k, v in outcome.items() if k.startswith(("killed,", "finished"))),
            "files": files, "file_bytes": size, "apply_s": apply_s,
            "outcomes": dict(outcome), "neither_old_nor_new": mixed,
            "stray_after_next_apply": stray_after_next}


# --- the run -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--kill-trials", type=int, default=100)
    parser.add_argument("--files", type=int, default=20, help="files per killed apply")
    parser.add_argument("--file-bytes", type=int, default=100_000)
    parser.add_argument("--oversized", action="store_true",
                        help="also send 8 MB requests and report RSS after each")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds for it all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline
    result: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{cpu_name()}, {os.cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory(prefix="cromwell-soak-") as tmp:
        served = Served(make_root(Path(tmp) / "served"))
        try:
            with httpx.Client(base_url=served.url, timeout=REQUEST_TIMEOUT_S) as http:
                http.post("/v1/complete", json={"path": "pkg/m.py", "line": 1, "column": 4,
                                                "max_tokens": 2})  # first use of each path
                http.post("/v1/context", json={"path": "pkg/m.py", "instruction": "x"})
            result["rss_mb_start"] = round(served.rss_mb(), 1)
            started = time.monotonic()
            load = run_load(served.url, args.clients, args.requests, deadline, args.seed)
            load_s = time.monotonic() - started
            with httpx.Client(base_url=served.url, timeout=REQUEST_TIMEOUT_S) as http:
                health = http.get("/health").json()
            result["rss_mb_after_load"] = round(served.rss_mb(), 1)
            if args.oversized:  # last: what they leave behind does not blur the load's figure
                result["oversized"] = oversized(served.url, served)
        finally:
            served.stop()
        answered = [s for values in load.latencies.values() for s in values]
        result["http"] = {
            "clients": args.clients, "requests": args.clients * args.requests,
            "seconds": round(load_s, 1), "lost": len(load.lost),
            "busy_answers_retried": load.busy_answers,
            "server_errors": len(load.server_errors),
            "unexpected_status": len(load.unexpected),
            "p50_s": _round(percentile(answered, 50)), "p95_s": _round(percentile(answered, 95)),
            "by_kind": {kind: {"n": len(v), "p50_s": _round(percentile(v, 50)),
                               "p95_s": _round(percentile(v, 95))}
                        for kind, v in sorted(load.latencies.items())},
            "outcomes": dict(sorted(load.outcomes.items())),
            "health_after": health,
            "examples": {"lost": load.lost[:5], "server_errors": load.server_errors[:5],
                         "unexpected": load.unexpected[:5]},
        }
        result["kill"] = kill_trials(Path(tmp) / "apply", args.kill_trials, args.files,
                                     args.file_bytes, deadline, args.seed)
    goals = {
        "no request lost": result["http"]["lost"] == 0,
        "no 5xx": result["http"]["server_errors"] == 0,
        "every status as expected": result["http"]["unexpected_status"] == 0,
        "every file old or new": not result["kill"]["neither_old_nor_new"],
        "no staged file after the next apply": not result["kill"]["stray_after_next_apply"],
        "every kill trial ran": result["kill"]["trials"] == args.kill_trials,
        "every request sent": "any not sent (deadline)" not in load.outcomes,
    }
    for row in result.get("oversized", []):
        goals[f"oversized {row['door']} refused"] = 400 <= row["status"] < 500
        goals[f"RSS within 20% after oversized {row['door']}"] = (
            row["rss_mb_after"] <= 1.2 * result["rss_mb_after_load"])
    result["goals"] = goals
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    missed = [name for name, met in goals.items() if not met]
    if missed:
        print(f"soak: goals missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    sys.exit(main())
