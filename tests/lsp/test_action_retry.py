"""An answer that is no edit is asked for once more with a different sample, on every door
(the domain's run_action): the real default model prepares the prompt; its answers are
scripted, so that the first one is sure to be refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import needs_model

from cromwell_lsp import api, domain, patches

pytestmark = needs_model
SOURCE = "def add(a, b):\n    return a - b\n"


class ScriptedAnswers:
    """The real model, but each generation streams the next scripted answer; the sampling
    each generation asked for is kept."""

    def __init__(self, model: Any, answers: list[str]) -> None:
        self._model, self._answers = model, list(answers)
        self.asked: list[tuple[float, int | None]] = []
        self.tasks: list[str | None] = []  # which weights each generation asked for

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def stream(self, prompt: str, *, temperature: float, seed: int | None = None,
               task: str | None = None, **_: Any) -> Any:
        self.asked.append((temperature, seed))
        self.tasks.append(task)
        yield from self._answers.pop(0)


def propose(tmp_path: Path, answers: list[str],
            text: str = SOURCE) -> tuple[ScriptedAnswers, Any]:
    (tmp_path / "m.py").write_text(text)
    ws = domain.Workspace(tmp_path)
    model = ScriptedAnswers(api.load_model(), answers)
    source = domain.load_source(ws, tmp_path / "m.py")
    return model, lambda: domain.propose_edit(model, ws, source, "fix add", (1, 2))


def test_an_answer_that_does_not_parse_is_asked_again_with_a_different_sample(tmp_path):
    model, ask = propose(tmp_path, ["def add(a, b:\n    return a + b\n```",
                                    "def add(a, b):\n    return a + b\n```"])
    proposal = ask()
    assert "+    return a + b" in proposal.diff and proposal.tries == 2
    assert model.asked == [(0.0, None), (domain.RETRY_TEMPERATURE, domain.RETRY_SEED)]


def test_a_good_first_answer_is_kept(tmp_path):
    model, ask = propose(tmp_path, ["def add(a, b):\n    return a + b\n```"])
    assert ask().tries == 1 and model.asked == [(0.0, None)]


def test_when_no_answer_is_an_edit_nothing_is_offered_and_the_reasons_are_given(tmp_path):
    # The default model's edits run on its tuned weights: two tuned answers, then the base's.
    model, ask = propose(tmp_path, ["def add(a, b:\n    return a + b\n```", SOURCE + "```",
                                    SOURCE + "```"])
    with pytest.raises(patches.PatchError, match="none of the model's answers is an "
                       "edit: the edited python does not parse .*; the last: .*no change"):
        ask()
    assert model.tasks == [domain.EDIT_TASK, domain.EDIT_TASK, None]


def test_the_base_weights_answer_when_the_tuned_ones_give_no_edit(tmp_path):
    model, ask = propose(tmp_path, [SOURCE + "```", SOURCE + "```",
                                    "def add(a, b):\n    return a + b\n```"])
    proposal = ask()
    assert proposal.tries == 3 and "+    return a + b" in proposal.diff
    assert model.asked == [(0.0, None), (domain.RETRY_TEMPERATURE, domain.RETRY_SEED),
                           (0.0, None)]
    assert model.tasks == [domain.EDIT_TASK, domain.EDIT_TASK, None]


BROKEN = "def add(a, b)\n    return a - b\n"  # a syntax error to fix, as fix_syntax asks


def test_an_edit_of_a_file_that_did_not_parse_must_leave_it_parsing(tmp_path):
    model, ask = propose(tmp_path, ["def add(a, b)\n    return a + b\n```",
                                    "def add(a, b):\n    return a + b\n```"], BROKEN)
    proposal = ask()
    assert proposal.tries == 2 and "+def add(a, b):" in proposal.diff
    assert model.asked == [(0.0, None), (domain.RETRY_TEMPERATURE, domain.RETRY_SEED)]


def test_when_no_answer_parses_nothing_is_offered(tmp_path):
    _, ask = propose(tmp_path, ["def add(a, b)\n    return a + b\n```",
                                "def add(a, b\n    return a + b\n```",
                                "def add(a, b\n    return a + b\n```"], BROKEN)
    with pytest.raises(patches.PatchError, match="none of the model's answers is an "
                       "edit: the edited python does not parse .*did not parse before"):
        ask()
