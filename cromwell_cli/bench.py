"""`cromwell bench`: the kernels' speed, decode and prefill, ghost-text latency."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("bench")
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


def _run_bench_script(name: str, args: list[str]) -> None:
    """Run bench/NAME's main(args) (the peers' benchmarks live beside the sources) and exit
    with its status."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / name
    if not script.is_file():
        raise click.ClickException(f"{script} not found: run from a source checkout")
    raise SystemExit(runpy.run_path(str(script))["main"](args))


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
@click.option("--shape", default=None, metavar="NAME",
              help="A random-weight GGUF of a real model's shape instead (bench/shape_models.py:"
              " qwen2.5-coder-1.5b), written once into the model cache and quantized by "
              "llama.cpp to Q4_K_M and Q8_0 (needs the bench extra); with --peers, prefill-512 "
              "beside llama.cpp on the same files.")
@click.option("--shape-format", "shape_formats", multiple=True,
              type=click.Choice(["Q4_K_M", "Q8_0"]),
              help="With --shape: this format only (repeatable; default both).")
@click.option("--decode-duel", is_flag=True,
              help="With --shape: decode beside llama.cpp instead of prefill, interleaved in one "
              "process, with the bound the measured read bandwidth sets.")
@click.option("--peer-extra-buffers/--no-peer-extra-buffers", default=True, show_default=True,
              help="With --shape: llama.cpp with or without its repacked and AMX weight buffers "
              "(off where its AMX buffer faults, as on this project's AMX machines).")
def bench_decode_command(model_path: str | None, thread_counts: tuple[int, ...],
                         as_json: bool, peers: bool, random_300m: bool = False,
                         image_side: int | None = None, shape: str | None = None,
                         shape_formats: tuple[str, ...] = (), decode_duel: bool = False,
                         peer_extra_buffers: bool = True) -> None:
    """Decode tok/s (128 tokens), prefill tok/s (512-token prompt), first token, load, RSS."""
    from engine.runtime.bench import bench_decode

    if shape is None and (shape_formats or decode_duel or not peer_extra_buffers):
        raise click.UsageError("--shape-format, --decode-duel and --no-peer-extra-buffers go "
                               "with --shape")
    if shape is not None:
        if model_path or random_300m:
            raise click.UsageError("--shape measures its own files: leave out --model and "
                                   "--random-300m")
        _run_bench_script("bench_decode.py", [
            "--shape", shape, "--threads", *map(str, thread_counts), *(["--peers"] * peers),
            *(["--formats", *shape_formats] if shape_formats else []),
            *(["--decode"] * decode_duel),
            *([] if peer_extra_buffers else ["--no-peer-extra-buffers"]),
        ])

    if random_300m:
        from engine.train.random_model import bench_target

        model_path, image_side = bench_target(image_side, lambda m: click.echo(m, err=True))

    if peers:
        _run_bench_script("bench_decode.py", ["--peers", "--threads", *map(str, thread_counts),
                                              *(["--model", model_path] if model_path else [])])

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
