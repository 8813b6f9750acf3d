"""Instruction-edit tasks with tests: a function of a held-out file, a behaviour change asked
for as a user asks for it ("Make `f` return None when `s` is empty."), and tests that decide.

How a task is made, for each top-level function that can be called on its own:
1. probe it (instruct_probe.py): call it with literal arguments in the sandbox, twice, and
   keep the outcomes both runs agree on;
2. a kind's maker (instruct_kinds.py) proposes the instruction, the reference edit of the
   function's text and the calls that show the change;
3. the reference file is probed on those calls; their outcomes become the tests (asserts that
   call the function, instruct_program.tests_source);
4. the tests run in the sandbox on the original file and on the reference: the task is kept
   only when they fail on the original and pass on the reference.

The files are those `cromwell eval edits` uses: the standard-library files the path-hash split
holds out (`split.is_heldout`), so training never saw a file a task is made from. The order is
fixed by the seed: each kind's functions are shuffled by (seed, kind) and tasks are dealt
round-robin over the kinds, so the first N tasks are balanced and are the same whatever N is;
tasks are made lazily, so a short list costs only the probes it needs.
"""

from __future__ import annotations

import ast
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.data.corpus import heldout_stdlib_files
from engine.data.edit_example import EditExample, example_from_texts
from engine.eval.instruct_edits import Site, apply_edits
from engine.eval.instruct_kinds import KINDS, MAKERS, Change, Probed
from engine.eval.instruct_probe import pool_calls, probe
from engine.eval.instruct_program import Call, Expect, test_program, tests_source
from engine.eval.sandbox import run_program

DEFAULT_SEED = 0
MAX_FUNCTION_LINES = 40  # the answer is the whole function: keep it seconds on a CPU
MAX_REQUIRED = 3  # probes try every mix of pool values up to CALLS_PER_FUNCTION; more is noise
TEST_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class InstructionTask:
    task_id: str  # "{kind}/{n}": the n-th task of that kind
    example: EditExample  # the file, the function as the region, the instruction, the reference
    function: str
    tests: str  # asserts that call the function; they import it from the loaded file

    @property
    def kind(self) -> str:
        return self.example.kind

    def program(self, text: str) -> str:
        """The program that runs the tests against the file `text` (the task's file as an
        answer leaves it)."""
        return test_program(self.example.path, text, self.tests)


def sites(relpath: str, text: str) -> list[Site]:
    """Top-level functions a probe can call with literals: plain `def`s (no decorator, no
    positional-only parameters) of at most MAX_FUNCTION_LINES lines and MAX_REQUIRED required
    parameters."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.decorator_list or node.args.posonlyargs:
            continue
        site = Site(relpath, text, node)
        start, end = site.region
        if 3 <= end - start <= MAX_FUNCTION_LINES and site.required <= MAX_REQUIRED:
            out.append(site)
    return out


def probe_sites(relpath: str, text: str, found: Sequence[Site], seed: int) -> dict[str, Probed]:
    """Each function's calls and the outcomes two probe runs agreed on (none when the file
    does not load in the sandbox)."""
    calls = {
        s.name: pool_calls(s.required, random.Random(f"{seed}:{relpath}:{s.name}")) for s in found
    }
    outcomes = probe(relpath, text, calls) or {}
    return {
        name: [(c, o) for c, o in zip(calls[name], got, strict=True) if o is not None]
        for name, got in outcomes.items()
    }


def _expectations(
    site: Site, after: str, change: Change, probed: Probed
) -> list[tuple[Call, Expect]] | None:
    """The tests' expectations, read from the reference; None when the reference does not do
    what the change claims (a changed call that does not return, or raise what it should; a
    kept call whose value moved)."""
    calls = [*change.changed, *change.kept]
    got = probe(site.relpath, after, {site.name: calls})
    if not got:
        return None
    before = {c: o for c, o in probed}
    checks = []
    for i, (call, outcome) in enumerate(zip(calls, got[site.name], strict=True)):
        if outcome is None:
            return None
        if i < len(change.changed) and change.raises is not None:
            if outcome.raises != change.raises:
                return None
            checks.append((call, Expect(raises=change.raises)))
            continue
        if not outcome.ok or (i >= len(change.changed) and outcome.returns != before[call].returns):
            return None
        checks.append((call, Expect(value=outcome.returns)))
    return checks


def make_task(site: Site, change: Change, probed: Probed) -> tuple[EditExample, str] | None:
    """(example, tests) when the tests fail on the original and pass on the reference."""
    if not change.changed:
        return None
    try:
        after = apply_edits(site.text, change.edits)
        ast.parse(after)
    except (SyntaxError, ValueError):
        return None
    checks = _expectations(site, after, change, probed)
    if checks is None:
        return None
    tests = tests_source(site.name, checks)
    relpath = site.relpath
    if run_program(test_program(relpath, site.text, tests), TEST_TIMEOUT_S).outcome != "failed":
        return None
    if run_program(test_program(relpath, after, tests), TEST_TIMEOUT_S).outcome != "passed":
        return None
    example = example_from_texts(
        change.kind,
        relpath,
        change.instruction,
        site.text,
        after,
        region=site.region,
        meta={"function": site.name},
    )
    return example, tests


class _Builder:
    """Tasks of `files`, made on demand; probes are run once a file."""

    def __init__(self, files: Sequence[tuple[str, str]], seed: int) -> None:
        self.seed = seed
        self.sites = [s for relpath, text in files for s in sites(relpath, text)]
        self._probed: dict[str, dict[str, Probed]] = {}

    def probed(self, site: Site) -> Probed:
        if site.relpath not in self._probed:
            found = [s for s in self.sites if s.relpath == site.relpath]
            self._probed[site.relpath] = probe_sites(site.relpath, site.text, found, self.seed)
        return self._probed[site.relpath].get(site.name, [])

    def kind_tasks(self, kind: str) -> Iterator[tuple[EditExample, str]]:
        order = list(self.sites)
        random.Random(f"{self.seed}:{kind}").shuffle(order)
        # Then each file's first function, each file's second, ...: a file with many
        # functions does not fill a kind's first tasks on its own.
        seen: dict[str, int] = {}
        turns = []
        for site in order:
            seen[site.relpath] = seen.get(site.relpath, 0) + 1
            turns.append(seen[site.relpath])
        order = [order[i] for _, i in sorted(zip(turns, range(len(order)), strict=True))]
        for site in order:
            probed = self.probed(site)
            if not probed:
                continue
            rng = random.Random(f"{self.seed}:{kind}:{site.relpath}:{site.name}")
            change = MAKERS[kind](site, probed, rng)
            made = make_task(site, change, probed) if change is not None else None
            if made is not None:
                yield made


def iter_tasks(
    seed: int = DEFAULT_SEED,
    kinds: Sequence[str] = KINDS,
    files: Sequence[tuple[str, str]] | None = None,
) -> Iterator[InstructionTask]:
    """Tasks of `files` ((relative path, text); default: the held-out standard-library
    files), round-robin over `kinds`, made as they are asked for. Unknown kinds are refused
    at the call, before any task is made."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown instruction-edit kinds: {sorted(unknown)}")
    builder = _Builder(heldout_stdlib_files() if files is None else files, seed)
    return _round_robin(builder, kinds)


def _round_robin(builder: _Builder, kinds: Sequence[str]) -> Iterator[InstructionTask]:
    streams = {k: builder.kind_tasks(k) for k in kinds}
    counts = dict.fromkeys(kinds, 0)
    while streams:
        for kind in list(streams):
            made = next(streams[kind], None)
            if made is None:
                del streams[kind]
                continue
            example, tests = made
            function = example.meta["function"]
            yield InstructionTask(f"{kind}/{counts[kind]}", example, function, tests)
            counts[kind] += 1


def build_tasks(
    seed: int = DEFAULT_SEED,
    kinds: Sequence[str] = KINDS,
    limit: int | None = None,
    files: Sequence[tuple[str, str]] | None = None,
) -> list[InstructionTask]:
    """The first `limit` (default: all) of iter_tasks."""
    return list(itertools.islice(iter_tasks(seed, kinds, files), limit))
