"""`LookupPayoff`: prompt lookup goes on where its phases yield tokens faster than plain
decoding's and pauses, for runs of plain phases that double, where they do not. Timings are
fed in, so every schedule here is exact."""

from __future__ import annotations

from engine.runtime.speculative import (
    MAX_PAUSE_PHASES,
    PHASE_TOKENS,
    REFRESH_EVERY,
    LookupPayoff,
)

PLAIN_STEP_S = 0.003


def run_phases(payoff: LookupPayoff, n: int, draft_token_s: float) -> str:
    """The kinds of the next n phases ('D' drafting, 'P' plain): a plain phase takes one
    forward per token, a drafting one passes of 4 tokens at draft_token_s per token."""
    kinds = ""
    for _ in range(n):
        drafting = payoff.drafting()
        kinds += "D" if drafting else "P"
        for _ in range(PHASE_TOKENS // 4 if drafting else PHASE_TOKENS):
            if drafting:
                payoff.record(4 * draft_token_s, 4)
            else:
                payoff.record(PLAIN_STEP_S, 1)
    return kinds


def fresh() -> LookupPayoff:
    payoff = LookupPayoff()
    payoff.record(1.0, 1)  # the first forward after a prefill: slow, and not counted
    return payoff


def test_drafting_that_loses_pauses_for_doubling_runs_of_plain_phases() -> None:
    kinds = run_phases(fresh(), 60, draft_token_s=1.2 * PLAIN_STEP_S)
    # lookup first (the default), a baseline, then probes after 1, 2, 4, 8, 16, 16 plain phases
    pauses = [1, 2, 4, 8, 16, MAX_PAUSE_PHASES]
    assert kinds.startswith("DP" + "".join("D" + "P" * p for p in pauses))


def test_drafting_that_pays_goes_on_with_a_plain_baseline_now_and_then() -> None:
    kinds = run_phases(fresh(), 2 + 3 * (REFRESH_EVERY + 1), draft_token_s=0.6 * PLAIN_STEP_S)
    assert kinds == "DP" + ("D" * REFRESH_EVERY + "P") * 3


def test_a_probe_that_wins_resets_the_pause() -> None:
    payoff = fresh()
    assert run_phases(payoff, 9, draft_token_s=1.2 * PLAIN_STEP_S) == "DPDPDPPDP"
    # the text turns into a copy: the next probe pays, and drafting goes on
    assert run_phases(payoff, 5, draft_token_s=0.6 * PLAIN_STEP_S) == "PPPDD"
    assert payoff.pause == 1


def test_a_short_generation_drafts_throughout() -> None:
    payoff = fresh()
    for _ in range(PHASE_TOKENS - 1):
        assert payoff.drafting()
        payoff.record(10 * PLAIN_STEP_S, 1)  # however slowly: a phase is judged when it ends
    assert payoff.drafting()


def test_what_was_learnt_carries_into_the_next_generation() -> None:
    payoff = fresh()
    assert run_phases(payoff, 5, draft_token_s=1.2 * PLAIN_STEP_S) == "DPDPD"
    payoff.start()  # a new request: its first forward (after its prefill) is not timed
    payoff.record(1.0, 1)
    assert not payoff.drafting()  # still in the pause the last probe earned
    assert run_phases(payoff, 3, draft_token_s=1.2 * PLAIN_STEP_S) == "PPD"
