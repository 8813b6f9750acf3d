"""The fine-tuning mix: each kind is asked exactly as the product (or HumanEval) asks, only
targets are scored, the draw follows the shares and is a pure function of (seed, index), and
packing fills rows without splitting an example."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from training_files import instruction_pool, some_training_files

import engine.runtime
from engine.data.edit_makers import SYNTHETIC_KINDS, make_examples, to_prompt
from engine.edit_format import FENCE, chat_renderer
from engine.eval.humaneval import INSTRUCTION
from engine.train.fim_rows import MAX_EXAMPLE_TOKENS, pack_batch
from engine.train.instruct_pool import load_pool
from engine.train.mixed_rows import KINDS, MixedRows, documented_functions, parse_mix


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return engine.runtime.load(None).tokenizer


@pytest.fixture(scope="module")
def mixed(tokenizer) -> MixedRows:  # type: ignore[no-untyped-def]
    return MixedRows(tokenizer, some_training_files(), seed=3)


def only(mixed: MixedRows, kind: str) -> MixedRows:
    return MixedRows(mixed.tokenizer, mixed.files, mixed.seed,
                     [float(k == kind) for k in KINDS])


def test_the_draw_follows_the_shares_and_is_deterministic(mixed: MixedRows) -> None:
    counts = Counter(mixed.kind(i) for i in range(2000))
    assert 850 < counts["fim"] < 1150 and 450 < counts["edit"] < 750
    assert 250 < counts["complete"] < 550
    assert [mixed.example(i) for i in range(6)] == [mixed.example(i) for i in range(6)]


def test_an_edit_row_is_the_products_own_prompt_then_the_new_lines_and_fence(
        mixed: MixedRows) -> None:
    edits = only(mixed, "edit")
    tok = mixed.tokenizer
    prompt, target = edits.example(5)
    text = tok.decode(prompt)
    assert "<|im_start|>assistant" in text and text.rstrip().endswith("```python")
    assert tok.decode(target).endswith(FENCE)
    # The same example rebuilt through engine/data's own maker and to_prompt.
    rng = random.Random(f"{mixed.seed}:edit:5")
    for _ in range(200):
        path, source = mixed.files[rng.randrange(len(mixed.files))]
        kind = rng.choice(SYNTHETIC_KINDS)
        made = make_examples(path, source, rng, kinds=(kind,), per_kind=1, max_tries=4)
        if made:
            asked = to_prompt(made[0], chat_renderer(tok), context_lines=rng.randint(2, 12))
            break
    assert tok.encode(asked.prompt, add_special=True) == prompt


def test_a_complete_row_asks_as_humaneval_and_ends_the_turn(mixed: MixedRows) -> None:
    tok = mixed.tokenizer
    prompt, target = only(mixed, "complete").example(0)
    text, answer = tok.decode(prompt), tok.decode(target)
    head = INSTRUCTION.split("{prompt}")[0]
    assert head in text and "def " in text
    assert answer.startswith("```python\ndef ") and answer.endswith("```<|im_end|>")
    signature = text[text.index("```python\n") + 10:].split("\n")[0]
    assert answer.split("\n")[1] == signature


def test_documented_functions_take_module_functions_with_a_docstring_and_a_body() -> None:
    source = (
        "import os\n\n"
        "def f(x):\n    '''Twice x.'''\n    y = x * 2\n    return y\n\n"
        "def g():\n    return 1\n\n"  # no docstring
        "class C:\n    def m(self):\n        '''A method.'''\n        a = 1\n        return a\n"
    )
    assert documented_functions(source) == [
        ("def f(x):\n    '''Twice x.'''\n", "def f(x):\n    '''Twice x.'''\n    y = x * 2\n"
         "    return y\n")]
    assert documented_functions("def broken(:\n") == []


def test_rows_pack_whole_examples_and_score_only_targets(mixed: MixedRows) -> None:
    batch, following = mixed.batch(0, 4, 512)
    docs, labels, tokens = batch["docs"], batch["labels"], batch["tokens"]
    assert (docs >= 0).float().mean() > 0.8  # first fit leaves little padding
    for d in set(docs[docs >= 0].tolist()):
        rows = (docs == d).nonzero()
        assert len(set(rows[:, 0].tolist())) == 1  # one example, one row
        prompt, target = mixed.example(d)
        r = rows[0, 0].item()
        cols = rows[:, 1]
        assert tokens[r, cols].tolist() == prompt + target
        assert batch["positions"][r, cols].tolist() == list(range(len(prompt) + len(target)))
        scored = labels[r, cols][labels[r, cols] >= 0].tolist()
        assert scored == target
    assert following > max(docs[docs >= 0].tolist())
    assert mixed.batch(0, 4, 512)[1] == following


def test_packing_refuses_rows_shorter_than_an_example(mixed: MixedRows) -> None:
    with pytest.raises(ValueError, match="row length"):
        pack_batch(mixed.example, 0, 2, MAX_EXAMPLE_TOKENS - 1)


@pytest.mark.parametrize("bad", ["1,2", "a,b,c", "-1,1,1", "0,0,0", "1,1,1,1,1", "0,0,0,0"])
def test_a_bad_mix_is_refused_in_one_sentence(bad: str) -> None:
    with pytest.raises(ValueError, match="--mix takes 3 or 4 shares"):
        parse_mix(bad)
    assert parse_mix("2,1,1") == (0.5, 0.25, 0.25, 0.0)
    assert parse_mix("2,1,0,1") == (0.5, 0.25, 0.0, 0.25)


def test_three_shares_draw_the_kinds_runs_before_instruction_rows_drew(
        mixed: MixedRows) -> None:
    # The same draw as a three-kind mix: a run recorded with three shares resumes as it ran.
    old = [random.Random(f"{mixed.seed}:kind:{i}").choices(KINDS[:3], (0.5, 0.3, 0.2))[0]
           for i in range(500)]
    assert [mixed.kind(i) for i in range(500)] == old
    assert MixedRows(mixed.tokenizer, mixed.files, 3, (0.5, 0.3, 0.2)).mix == mixed.mix


def test_an_instruction_row_is_the_products_edit_prompt_for_a_pool_task(
        mixed: MixedRows, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = load_pool(instruction_pool(tmp_path, tasks=2))
    rows = MixedRows(mixed.tokenizer, mixed.files, 3, (0, 0, 0, 1), instruct_pool=pool)
    tok = mixed.tokenizer
    prompt, target = rows.example(4)
    rng = random.Random(f"{rows.seed}:instruct:4")
    example = pool[rng.randrange(len(pool))]
    asked = to_prompt(example, chat_renderer(tok), context_lines=rng.randint(2, 12))
    assert tok.encode(asked.prompt, add_special=True) == prompt
    assert example.instruction in tok.decode(prompt)
    assert tok.decode(target) == example.region_after + FENCE
    with pytest.raises(ValueError, match="pool"):
        MixedRows(mixed.tokenizer, mixed.files, 3, (0, 0, 0, 1))
