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


if __name__ == "__main__":
    main()
