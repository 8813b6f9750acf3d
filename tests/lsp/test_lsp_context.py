"""The context manager, called directly: ranking signals, budgeting with a real byte-level
BPE tokenizer (trained here on a few stdlib files, in well under a second), explanations."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from cromwell_lsp import context
from cromwell_lsp.context import ContextTooLarge, SourceFile, Target

STDLIB = Path(sysconfig.get_paths()["stdlib"])


class BPECounter:
    """A real tokenizer behind the `TokenCounter` protocol."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids


@pytest.fixture(scope="module")
def counter() -> BPECounter:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    files = [str(STDLIB / n) for n in ("difflib.py", "textwrap.py", "ast.py", "json/decoder.py")]
    trainer = trainers.BpeTrainer(
        vocab_size=2000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train(files, trainer)
    return BPECounter(tok)


SHAPES = (
    "import math\n\n\nclass Circle:\n    def __init__(self, radius):\n"
    "        self.radius = radius\n\n    def area(self):\n        return math.pi * self.radius**2\n"
)
APP = (
    "from geometry.shapes import Circle\n\n\ndef describe(shape):\n"
    "    return f'area {shape.area():.2f}'\n\n\ndef main():\n    print(describe(Circle(1.0)))\n"
)
UNRELATED = "def parse_header(line):\n    key, _, value = line.partition(':')\n    return key\n"


def test_identifiers_and_jaccard():
    a = context.identifiers("def area(self):\n    return math.pi * self.radius")
    assert a == {"area", "math", "pi", "radius"}  # keywords and `self` are stop words
    b = context.identifiers("radius = math.sqrt(area / math.pi)")
    assert context.jaccard(a, b) == pytest.approx(4 / 5)
    assert context.jaccard(a, frozenset()) == 0.0


def test_best_window_finds_the_similar_part():
    lines = [f"unrelated_{i} = {i}\n" for i in range(100)]
    lines[60:63] = ["radius = 1\n", "area = math.pi * radius\n", "perimeter = 2 * radius\n"]
    query = frozenset({"radius", "area", "math", "pi"})
    sim, (start, end) = context.best_window(query, "".join(lines))
    assert start <= 60 and end >= 63 and sim > 0


def test_import_links_python_and_other_languages():
    assert "geometry/shapes" in context.imports_of("app.py", APP)
    rel = context.imports_of("pkg/sub/mod.py", "from ..util import helper\nfrom . import x\n")
    assert {"pkg/util", "pkg/util/helper", "pkg/sub", "pkg/sub/x"} <= rel
    js = context.imports_of(
        "web/src/app.ts", "import { a } from './lib/api';\nconst b = require('../b')\n"
    )
    assert {"web/src/lib/api", "web/b"} <= js
    assert "native/src/dot" in context.imports_of("native/src/main.cpp", '#include "dot.h"\n')
    assert "src/parser" in context.imports_of("src/main.rs", "mod parser;\nuse crate::parser::x;\n")


def test_link_score_both_ways_and_by_reference():
    app = SourceFile("app.py", APP)
    shapes = SourceFile("geometry/shapes.py", SHAPES)
    target_app = Target("app.py", APP, 3, 5)
    q = context.target_query(target_app)
    assert context.link_score(target_app, shapes, q) == 1.0  # app imports shapes
    target_shapes = Target("geometry/shapes.py", SHAPES, 7, 9)
    assert context.link_score(target_shapes, app, context.target_query(target_shapes)) == 0.8
    assert context.link_score(target_app, SourceFile("misc.py", UNRELATED), q) == 0.0
    # No import, but the edited window calls a function the file defines.
    helper = SourceFile("lib/text.py", UNRELATED)
    uses = Target("x.py", "def f(line):\n    return parse_header(line)\n", 0, 2)
    assert context.link_score(uses, helper, context.target_query(uses)) > 0


def test_proximity_and_recency():
    assert context.path_proximity("a/b/x.py", "a/b/y.py") == 1.0
    assert context.path_proximity("a/b/x.py", "a/y.py") == 0.5
    assert context.path_proximity("a/b/x.py", "c/y.py") == 0.125
    assert context.recency_scores({"old.py": 1, "new.py": 7, "mid.py": 3}) == {
        "new.py": 1.0,
        "mid.py": 0.5,
        "old.py": pytest.approx(1 / 3),
    }


def test_ranking_is_deterministic_and_explained():
    files = [
        SourceFile("misc/zz.py", UNRELATED),
        SourceFile("geometry/shapes.py", SHAPES),
        SourceFile("app.py", APP),
    ]
    target = Target("app.py", APP, 3, 5)
    ranking = context.rank(target, files, {"misc/zz.py": 2})
    assert [s.path for s in ranking] == ["geometry/shapes.py", "misc/zz.py"]
    assert ranking == context.rank(target, list(reversed(files)), {"misc/zz.py": 2})
    top = ranking[0]
    assert set(top.signals) == {"link", "similarity", "recency", "proximity"}
    expected = sum(context.WEIGHTS[k] * v for k, v in top.signals.items())
    assert top.score == pytest.approx(expected, abs=1e-3)


def _big_target() -> Target:
    body = "".join(f"    total_{i} = compute_area(radius_{i}) * {i}\n" for i in range(400))
    text = "def compute_all(radius):\n" + body + "    return total_0\n"
    return Target("geometry/compute.py", text, 200, 204)


def _related_files() -> list[SourceFile]:
    return [
        SourceFile(
            "geometry/area.py", "def compute_area(radius):\n    return 3.14 * radius**2\n" * 30
        ),
        SourceFile("docs/notes.py", UNRELATED * 10),
    ]


@pytest.mark.parametrize("budget", [120, 300, 700, 3000])
def test_budget_is_never_exceeded(counter: BPECounter, budget: int):
    target = _big_target()
    plan = context.build(target, _related_files(), {}, counter, budget)
    pieces = [plan.before, plan.region, plan.after] + [
        context.snippet_header(s.path, s.start_line, s.end_line) + s.text for s in plan.snippets
    ]
    used = sum(context.count(counter, p) for p in pieces)
    assert used <= budget
    assert used >= 0.9 * budget or budget < 300  # the room is used, not left idle
    if budget >= 300:
        assert plan.snippets and plan.snippets[0].path == "geometry/area.py"
    lines = target.lines
    assert plan.region == "".join(lines[200:204])  # the region is never cut
    assert plan.before == "".join(lines[plan.before_start : 200])
    assert plan.after == "".join(lines[204 : plan.after_end])
    # Surroundings grow evenly around the region, nearest lines first.
    assert abs((200 - plan.before_start) - (plan.after_end - 204)) <= 3 or (
        plan.before_start == 0 or plan.after_end == len(lines)
    )


def test_fit_counts_the_whole_rendered_prompt(counter: BPECounter):
    target = _big_target()

    def render(plan: context.ContextPlan) -> str:
        related = "".join(s.text for s in plan.snippets)
        return f"<|system|>Edit.\n{related}<|user|>{plan.before}>>>{plan.region}<<<{plan.after}"

    for limit in (160, 300, 1500, 4096 - 512):
        plan, prompt, tokens = context.fit(target, _related_files(), {}, counter, limit, render)
        assert tokens == len(counter.encode(prompt)) <= limit
        assert plan.region in prompt
    # With room to spare, the related file that matters is in and the noise is not.
    plan, _, _ = context.fit(target, _related_files(), {}, counter, 3000, render)
    assert [s.path for s in plan.snippets][:1] == ["geometry/area.py"]


def test_region_over_budget_is_a_clear_error(counter: BPECounter):
    target = _big_target()
    whole = Target(target.path, target.text, 0, len(target.lines))
    with pytest.raises(ContextTooLarge, match=r"the selected region is \d+ tokens"):
        context.build(whole, [], {}, counter, 100)


def test_explain_lists_files_scores_and_tokens(counter: BPECounter):
    target = _big_target()
    plan = context.build(target, _related_files(), {"docs/notes.py": 1}, counter, 1200)
    info = context.explain(plan, prompt_tokens=1100)
    assert info["target"] == "geometry/compute.py" and info["budget"] == 1200
    files = {f["path"]: f for f in info["files"]}
    area = files["geometry/area.py"]
    assert area["chosen"] and area["tokens"] > 0 and area["score"] > files["docs/notes.py"]["score"]
    assert info["region"]["tokens"] == context.count(counter, plan.region)
    assert info["region"]["lines"] == [200, 204]


def test_one_line_files_can_be_chosen(counter: BPECounter):
    target = Target("pkg/mod.py", "from pkg import consts\n\nvalue = consts.LIMIT\n", 2, 3)
    files = [SourceFile("pkg/consts.py", "LIMIT = 10\n")]
    plan = context.build(target, files, {}, counter, 500)
    assert [(s.path, s.text) for s in plan.snippets] == [("pkg/consts.py", "LIMIT = 10\n")]
    assert context.build(target, files, {}, counter, plan.token_counts["region"]).snippets == ()
