"""The `cromwell` command line. Each command is thin: it parses arguments and calls the same
domain functions the language server and the HTTP server use."""

from __future__ import annotations

import json

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


if __name__ == "__main__":
    main()
