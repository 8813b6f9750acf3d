"""`cromwell eval`: model quality on the runtime (HumanEval, single-line infilling through the
ghost text, edit tasks, reading screenshots)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cromwell_cli.elapsed import elapsed
from cromwell_cli.options import with_options

if TYPE_CHECKING:
    from engine.eval.infill import InfillTask


@click.group("eval")
def eval_group() -> None:
    """Quality evaluations of a model on the runtime."""


# The options every evaluation takes last: its thread count and JSON output.
_with_eval_options = with_options([
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="Kernel threads (default: the runtime's)."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
])


def _eval_report(run: Callable[[], dict[str, Any]], as_json: bool,
                 errors: tuple[type[Exception], ...] = (RuntimeError,)) -> dict[str, Any] | None:
    """Runs an evaluation, its errors (and a model file that does not load) as a clean CLI
    error. With --json the report is printed and None returned; otherwise the report is
    returned for the command's own table."""
    from engine.runtime.gguf_file import GGUFError
    from engine.tokenizers.gguf_import import GGUFTokenizerError

    errors = (*errors, GGUFError, GGUFTokenizerError)
    try:
        with elapsed(click.get_current_context().command_path):
            report = run()
    except errors as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(report))
        return None
    return report


@eval_group.command("humaneval")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF chat model (default: the embedded default model).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N problems (default: all 164).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=384, show_default=True,
              help="Most tokens per answer.")
@_with_eval_options
def eval_humaneval_command(model_path: str | None, limit: int | None, max_tokens: int,
                           threads: int | None, as_json: bool) -> None:
    """HumanEval pass@1 (greedy) and the share of answers that parse, tests sandboxed."""
    from engine.eval.humaneval import run_humaneval

    report = _eval_report(lambda: run_humaneval(model_path, limit, max_tokens, threads), as_json)
    if report is None:
        return
    for r in report["results"]:
        click.echo(f"{r['task_id']}: {r['outcome']}{'' if r['parses'] else ' (no parse)'}")
    click.echo(f"{report['model']}: pass@1 {report['pass_at_1']:.3f} "
               f"({report['passed']}/{report['problems']}), parses {report['parse_rate']:.3f}, "
               f"{report['seconds']} s")


class GhostInfiller:
    """The product's ghost text on the runtime as `cromwell eval infill`'s infiller: one line
    at the cursor, greedy, no time cap."""

    def __init__(self, model: Any, max_tokens: int) -> None:
        from cromwell_lsp.ghost import GhostSettings, GhostText

        # max_lines=1: a single-line task; max_ms far above any generation, so a slow machine
        # never cuts a suggestion short; reuse_min=None: the exact prefix cache only.
        settings = GhostSettings(max_tokens=max_tokens, max_lines=1, max_ms=600_000,
                                 reuse_min=None)
        self.ghost = GhostText(model, settings)
        self.order = self.ghost.fim.order
        self.stop_ids = self.ghost.stop_ids

    def prompt_ids(self, task: InfillTask) -> list[int]:
        # The prompt laid out where ghost text lays it: at the healed cursor, which is the
        # cursor itself here (a masked line starts at column 0: no word to heal).
        request = self._request(task)
        return self.ghost.prompt(request, self.ghost.healed(request)[1])

    def fill(self, task: InfillTask) -> tuple[str, int]:
        s = self.ghost.suggest(self._request(task))
        return s.text, s.generated_tokens

    @staticmethod
    def _cursor(task: InfillTask) -> tuple[int, int]:
        from cromwell_lsp.ghost import cursor_after

        return cursor_after(task.prefix)

    def _request(self, task: InfillTask) -> Any:
        from cromwell_lsp.ghost import GhostRequest
        from engine.eval.infill import task_path

        line, column = self._cursor(task)
        return GhostRequest(task_path(task), task.prefix + task.suffix, line, column)


@eval_group.command("infill")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF model (default: the embedded default model).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="N tasks drawn with a fixed seed over all problems (default: all 1,033).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True,
              help="Most tokens per suggestion.")
@click.option("--peer", is_flag=True,
              help="Run llama.cpp on the untuned SmolLM2 file with the same prompts.")
@_with_eval_options
def eval_infill_command(model_path: str | None, limit: int | None, max_tokens: int, peer: bool,
                        threads: int | None, as_json: bool) -> None:
    """HumanEval single-line infilling (every non-blank solution line masked in turn) through
    the ghost-text pipeline: pass@1 (greedy), tests sandboxed."""
    from engine.eval.infill import run_infill

    report = _eval_report(
        lambda: run_infill(GhostInfiller, model_path, limit, max_tokens, threads, peer), as_json)
    if report is None:
        return
    for r in report["results"]:
        click.echo(f"{r['task_id']}: {r['outcome']}")
    click.echo(f"{report['model']} ({report['engine']}, {report['prompt']}): pass@1 "
               f"{report['pass_at_1']:.3f} ({report['passed']}/{report['tasks']}), exact "
               f"{report['exact_match']:.3f}, {report['seconds']} s")


class ProductEditor:
    """The product's own edit as the editor of `cromwell eval edits` and `eval instruct`:
    domain.propose_edit, the path of `cromwell edit`, the LSP's "Edit selection" and HTTP's
    /v1/edit (its prompt, the checked patch, one more sample when the first answer is no
    edit). The workspace is an empty folder, so the task's file is the whole context."""

    name = "product"

    def __init__(self, model: Any, max_tokens: int) -> None:
        import tempfile

        self.model, self.max_tokens = model, max_tokens
        # Removed with the editor (or at exit); nothing is written into it.
        self._folder = tempfile.TemporaryDirectory(prefix="cromwell-eval-edits-")
        self.root = Path(self._folder.name)

    def edit(self, task: Any) -> Any:
        from cromwell_lsp import domain, patches
        from engine.eval.edit_quality import Answer, task_budget

        ex = task.example
        first = ex.prefix.count("\n") + 1
        last = first + ex.region_before.count("\n") - ex.region_before.endswith("\n")
        source = domain.Source(self.root / ex.path, ex.path, ex.before, None)
        try:
            proposal = domain.propose_edit(
                self.model, domain.Workspace(self.root), source, ex.instruction,
                (first, last), max_new_tokens=task_budget(self.model, task, self.max_tokens))
        except (patches.PatchError, domain.RequestError) as err:
            return Answer(None, "no edit", 0, str(err))
        tokens = len(self.model.tokenizer.encode(proposal.output))
        return Answer(proposal.new_text, f"checked, try {proposal.tries}", tokens)


@eval_group.command("edits")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF model (default: the embedded default model).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N tasks (balanced over the edit kinds; default: all).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True,
              help="Most tokens per answer (each is also held to twice its reference + 32).")
@_with_eval_options
def eval_edits_command(model_path: str | None, limit: int | None, max_tokens: int,
                       threads: int | None, as_json: bool) -> None:
    """Edit tasks made from held-out code, answered as the product answers them (its prompt,
    the one training teaches; the checked patch; one retry): the share of answers that apply,
    parse and pass, per kind and overall."""
    from engine.eval.edit_quality import run_edits

    report = _eval_report(
        lambda: run_edits(model_path, limit, max_tokens, threads, editor=ProductEditor), as_json)
    if report is not None:
        _kinds_table(report)


def _kinds_table(report: dict[str, Any]) -> None:
    """An edit evaluation's shares per kind and overall, then the model and the time."""
    rows = [*report["kinds"].items(), ("overall", report["overall"])]
    width = max(len(kind) for kind, _ in rows)
    click.echo(f"{'kind':<{width}} {'tasks':>5} {'applies':>8} {'parses':>8} {'passes':>8}")
    for kind, s in rows:
        click.echo(f"{kind:<{width}} {s['tasks']:>5} {s['apply_rate']:>8.3f} "
                   f"{s['parse_rate']:>8.3f} {s['pass_rate']:>8.3f}")
    click.echo(f"{report['model']}: {report['seconds']} s")


@eval_group.command("instruct")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF model (default: the embedded default model).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N tasks (balanced over the change kinds; default: all).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Which functions and calls make the tasks (the same seed, the same tasks).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True,
              help="Most tokens per answer (each is also held to twice its reference + 32).")
@_with_eval_options
def eval_instruct_command(model_path: str | None, limit: int | None, seed: int,
                          max_tokens: int, threads: int | None, as_json: bool) -> None:
    """Instruction edits with tests: a behaviour change of a function from held-out code,
    asked for as a user asks (the function selected in its file) and answered as the product
    answers; the share of answers that apply, parse and pass the task's tests (sandboxed), per
    kind and overall."""
    from engine.eval.instruction_quality import run_instruct

    report = _eval_report(
        lambda: run_instruct(model_path, limit, ProductEditor, max_tokens, threads, seed),
        as_json)
    if report is not None:
        _kinds_table(report)


@eval_group.command("screenshot")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N pictures (default: 24 held-out renders; a folder: all).")
@click.option("--max-side", type=click.IntRange(min=256), default=1024, show_default=True,
              help="Held-out renders at most this many pixels a side (1024: up to ~40 lines).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Which held-out renders (the same seed draws the same ones).")
@click.option("--pictures", type=click.Path(exists=True, file_okay=False), default=None,
              help="A folder of real screenshots instead: NAME.png, NAME.txt (the exact text "
                   "shown), optional NAME.json (metadata to group by: theme, zoom, font, ...).")
@click.option("--model-modes", is_flag=True,
              help="Also the vision-language model: with the picture, a blank one (chance) and "
                   "none (slow; held-out renders only; training's side is --max-side 256).")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="The cromwell GGUF of --model-modes (implies it; default: the "
                                 "embedded default model).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
              help="--model-modes: most tokens per transcript (also at most twice the "
                   "target's).")
@_with_eval_options
def eval_screenshot_command(limit: int | None, max_side: int, seed: int, pictures: str | None,
                            model_modes: bool, model_path: str | None, max_tokens: int,
                            threads: int | None, as_json: bool) -> None:
    """Reading code from screenshots: the code reader against tesseract on the same pixels
    (character error rate, exact-line rate, seconds per picture, memory), on held-out renders
    or a folder of real screenshots."""
    from engine.eval.screenshot import report_lines, run_screenshot

    report = _eval_report(
        lambda: run_screenshot(limit, seed, max_side, pictures,
                               model_modes or model_path is not None, model_path, max_tokens,
                               threads),
        as_json,
        (RuntimeError, ValueError),
    )
    if report is None:
        return
    for line in report_lines(report):
        click.echo(line)
    click.echo(f"{report['tasks']} pictures, {report['seconds']} s; an empty transcript scores "
               "CER 1.000")

