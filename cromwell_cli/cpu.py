"""`cromwell cpu`: what this CPU offers and which kernel set runs."""

from __future__ import annotations

import json

import click


@click.command("cpu")
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

