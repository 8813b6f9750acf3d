"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis: whatever the schema
allows, and much it does not, the server answers without a 5xx, and every answer matches
the schema. A slice runs with the tests; `make soak` runs over 1,000 cases
(CROMWELL_SCHEMA_EXAMPLES sets the cases per operation)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from doors_helpers import Server, make_root
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

EXAMPLES = int(os.environ.get("CROMWELL_SCHEMA_EXAMPLES", "6"))
# Generation is the slow part of every answer: fuzzed token counts are cut to this many, so
# that a case costs milliseconds of decoding (the bounds themselves are fuzzed by the rest).
MAX_TOKENS = 2
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "n_predict")


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(make_root(tmp_path_factory.mktemp("fuzzed")), "--max-body", "200000")
    yield srv
    srv.stop()


def _cheap(body: object) -> None:
    """Cut the requested token counts (and completions per request) to keep a case fast."""
    if not isinstance(body, dict):
        return
    for key in TOKEN_FIELDS:
        if isinstance(body.get(key), int) and body[key] > MAX_TOKENS:
            body[key] = MAX_TOKENS
    if isinstance(body.get("n"), int) and body["n"] > 1:
        body["n"] = 1


def _fuzz(operation: Any, url: str, counts: Counter[str]) -> str | None:
    """EXAMPLES cases of one operation; the first failure's report, or None."""
    label = f"{operation.method.upper()} {operation.path}"

    # Cases the schema allows and cases it does not (wrong types, missing fields, out of
    # range): both must be answered without a 5xx.
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        _cheap(case.body)
        response = case.call(base_url=url, timeout=120)
        counts[label] += 1
        case.validate_response(response, checks=[not_a_server_error,
                                                 response_schema_conformance])

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # named; every operation still runs
        return f"{label}: {exc}"
    return None


def test_no_5xx_and_every_answer_matches_the_schema(fuzzed_server: Server) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    counts: Counter[str] = Counter()
    failures = []
    for result in schema.get_all_operations():
        failure = _fuzz(result.ok(), fuzzed_server.url, counts)
        if failure is not None:
            failures.append(failure)
    with fuzzed_server.client() as http:
        assert http.get("/health").status_code == 200
    print(f"schemathesis: {sum(counts.values())} cases over {len(counts)} operations: "
          f"{dict(counts)}; {len(failures)} operations failing")
    assert not failures, "\n\n".join(failures)
