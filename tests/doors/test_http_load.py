"""A bounded load test: 8 concurrent clients, 200 cheap requests, every one answered."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from doors_helpers import Server, make_root

CLIENTS, REQUESTS = 8, 200
BACKOFF_S = 0.1  # after a 429 (shorter than Retry-After, to keep the test short)


def test_eight_clients_two_hundred_requests(tmp_path: Path) -> None:
    # A short queue, so that the 429 path is taken under this load too.
    srv = Server(make_root(tmp_path / "root"), "--queue", "4")
    outcomes: Counter[str] = Counter()
    retry_after: set[str] = set()
    lock = threading.Lock()
    todo = iter(range(REQUESTS))

    def client(n: int) -> None:
        with srv.client() as http:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                try:
                    r = http.post("/v1/completions",
                                  json={"prompt": f"# request {i} from client {n}\n",
                                        "max_tokens": 1 + i % 4})
                    key = str(r.status_code)
                    if r.status_code == 200:
                        assert r.json()["choices"][0]["finish_reason"] in ("length", "stop")
                    elif r.status_code == 429:
                        with lock:
                            retry_after.add(r.headers.get("retry-after", ""))
                        time.sleep(BACKOFF_S)
                except Exception as exc:  # a lost request is counted, not raised in a thread
                    key = f"lost: {type(exc).__name__}"
                with lock:
                    outcomes[key] += 1

    started = time.monotonic()
    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - started
        with srv.client() as http:
            health = http.get("/health").json()
            after = http.post("/v1/completions", json={"prompt": "ok", "max_tokens": 1})
    finally:
        srv.stop()
    print(f"{REQUESTS} requests from {CLIENTS} clients in {elapsed:.1f} s: {dict(outcomes)}")
    assert sum(outcomes.values()) == REQUESTS, outcomes
    assert set(outcomes) <= {"200", "429"}, outcomes
    assert outcomes["200"] > 0
    assert retry_after <= {"1"}
    assert health["status"] == "ok" and health["queued"] == 0
    assert after.status_code == 200
