"""What functions of a file do when called: each call's outcome observed in the sandbox.

A probe loads the file as a module (instruct_program.loader) and calls its functions with
arguments drawn from a small pool of literals, each call under a timer (CALL_TIMEOUT_S) and
with its output silenced, and prints one JSON line of outcomes. A returned value is kept as
its `repr` only when that repr is a literal that reads back equal (so a test can assert on
it); an exception is kept by its class name, with whether the function's own frame raised it.

A call that draws from the `random` module's generator is dropped (its state moved), since
two draws can agree by chance (a shuffled pair does half the time); every other call is made
twice in a process, and every probe runs in two processes, and only outcomes that all agree
are kept: a function that keeps state between calls gives a different answer to the second
call, and string hashing is randomised per process, so a value built from a set's order never
becomes a test's expectation either.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from engine.eval.instruct_program import Call, loader
from engine.eval.sandbox import run_program

# Argument values a probe tries: numbers (zero, positive, negative, float), strings (empty,
# a word, padded mixed case, separated), sequences, a mapping, None, a bool and bytes.
POOL = (
    "0",
    "1",
    "3",
    "-2",
    "2.5",
    "''",
    "'abc'",
    "'  Hello World  '",
    "'a,b,c'",
    "[]",
    "[3, 1, 2]",
    "['x', 'y']",
    "(1, 2)",
    "{'a': 1}",
    "None",
    "True",
    "b'ab'",
)
CALLS_PER_FUNCTION = 40
CALL_TIMEOUT_S = 0.5  # far above what a call on a literal takes, even on a loaded machine
MAX_SLOW = 2  # calls that time out before a function's other calls are skipped
PROBE_TIMEOUT_S = 60.0
_MARK = "CROMWELL-PROBE "

_RUNNER = """
import ast as _ast, builtins as _builtins, itertools as _itertools, json as _json
import os as _os, random as _random, resource as _resource, signal as _signal


class _Timeout(BaseException):
    pass


def _alarm(*_):
    raise _Timeout()


_signal.signal(_signal.SIGALRM, _alarm)


def _plain(v, depth=0):
    if type(v) in (type(None), bool, int, float, str, bytes):
        return True
    if type(v) in (list, tuple) and depth < 4:
        return all(_plain(x, depth + 1) for x in v)
    if type(v) is dict and depth < 4:
        return all(_plain(k, depth + 1) and _plain(x, depth + 1) for k, x in v.items())
    return False


_HERE = {_sys.prefix, _sys.base_prefix, _os.getcwd()}


def _literal(v):
    try:
        text = repr(v)
        if any(place in text for place in _HERE):  # a path of this machine: no test's business
            return None
        return text if _plain(v) and len(text) <= 200 and _ast.literal_eval(text) == v else None
    except Exception:
        return None


def _outcome(fn, args, kwargs):
    generator = False
    try:
        with _contextlib.redirect_stdout(_io.StringIO()), \\
                _contextlib.redirect_stderr(_io.StringIO()):
            _signal.setitimer(_signal.ITIMER_REAL, _CALL_TIMEOUT_S)
            try:
                value = fn(*[eval(a) for a in args], **{k: eval(v) for k, v in kwargs})
                if isinstance(value, _types.GeneratorType):
                    generator, value = True, list(_itertools.islice(value, 100))
            finally:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
    except _Timeout:
        return {"timeout": True}
    except BaseException as e:
        tb = e.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        name = type(e).__name__
        return {"raises": name, "own": tb.tb_frame.f_code is getattr(fn, "__code__", None),
                "builtin": getattr(_builtins, name, None) is type(e)}
    return {"returns": _literal(value), "type": type(value).__name__, "generator": generator}


# The report goes to a copy of stdout on the highest descriptor the sandbox allows: a
# function handed 1 or 3 as a file name opens that descriptor and closes it when done.
_high = min(_resource.getrlimit(_resource.RLIMIT_NOFILE)[0], 256) - 1
_report = _os.fdopen(_os.dup2(1, _high), "w")
_results = {}
for _name, _calls in _PROBES:
    _fn, _slow, _out = getattr(_module, _name, None), 0, []
    for _args, _kwargs in _calls:
        if not callable(_fn) or _slow >= _MAX_SLOW:  # a function that hangs costs little
            _out.append({"timeout": True})
            continue
        _drawn = _random.getstate()
        _got = _outcome(_fn, _args, _kwargs)
        _slow += bool(_got.get("timeout"))
        if _random.getstate() != _drawn:
            _got = {"unstable": True}  # it drew random numbers: no test can expect them
        elif not _got.get("timeout") and _outcome(_fn, _args, _kwargs) != _got:
            _got = {"unstable": True}  # it keeps state between calls
        _out.append(_got)
    _results[_name] = _out
print(_MARK + _json.dumps(_results), file=_report, flush=True)
"""


@dataclass(frozen=True)
class Outcome:
    """One call's outcome: a literal value (`returns`, None when the value has no literal
    form), or an exception (`raises`), or a timeout."""

    returns: str | None = None
    type: str = ""
    generator: bool = False
    raises: str | None = None
    own: bool = False  # the function's own frame raised it
    builtin: bool = False  # the exception is a built-in class a test can name
    timeout: bool = False
    unstable: bool = False  # it drew random numbers, or two calls in one process disagreed

    @property
    def ok(self) -> bool:
        """A returned value a test can assert on."""
        return self.returns is not None


def pool_calls(required: int, rng: random.Random, n: int = CALLS_PER_FUNCTION) -> list[Call]:
    """Up to `n` distinct calls with `required` positional arguments from POOL."""
    combos = list(product(POOL, repeat=required))
    rng.shuffle(combos)
    return [Call(tuple(c)) for c in combos[:n]]


def probe_program(relpath: str, text: str, calls: Mapping[str, Sequence[Call]]) -> str:
    probes = [
        (name, [(list(c.args), [list(kv) for kv in c.kwargs]) for c in cs])
        for name, cs in calls.items()
    ]
    settings = f"_MARK = {_MARK!r}\n_CALL_TIMEOUT_S = {CALL_TIMEOUT_S}\n_MAX_SLOW = {MAX_SLOW}\n"
    return loader(relpath, text) + f"_PROBES = {probes!r}\n" + settings + _RUNNER


def _run_once(program: str) -> dict[str, list[dict[str, object]]] | None:
    result = run_program(program, timeout_s=PROBE_TIMEOUT_S, capture_stdout=True)
    if result.outcome != "passed":
        return None
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(_MARK)]
    return json.loads(lines[-1][len(_MARK) :]) if lines else None


def probe(
    relpath: str, text: str, calls: Mapping[str, Sequence[Call]]
) -> dict[str, list[Outcome | None]] | None:
    """Each call's outcome, None where two runs disagree; None when the file does not load
    (or the probe does not finish) in the sandbox."""
    if not calls:
        return {}
    program = probe_program(relpath, text, calls)
    first = _run_once(program)
    second = _run_once(program) if first is not None else None
    if first is None or second is None:
        return None
    out: dict[str, list[Outcome | None]] = {}
    for name in calls:
        out[name] = [
            Outcome(**a) if a == b else None  # type: ignore[arg-type]
            for a, b in zip(first[name], second[name], strict=True)
        ]
    return out
