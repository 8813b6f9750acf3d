"""`cromwell train` (engine.train's own argparse command line) and `cromwell export` (a
checkpoint as a GGUF file)."""

from __future__ import annotations

from pathlib import Path

import click

from cromwell_cli.elapsed import elapsed


@click.command("train", context_settings={"ignore_unknown_options": True,
                                         "allow_extra_args": True, "help_option_names": []},
              add_help_option=False)
@click.pass_context
def train_command(ctx: click.Context) -> None:
    """Train one curriculum stage (--stage N --config ...; -h lists every option), or
    `cromwell train plot RUN` for the loss curves. Several processes: torchrun -m engine.train."""
    from engine.train.__main__ import main as train_main

    ctx.exit(train_main(list(ctx.args)))


@click.command("export")
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
        with elapsed(f"exporting {checkpoint}"):
            written = export_checkpoint(checkpoint, out, fmt, language_from)
        click.echo(str(written))
    except ExportError as err:
        raise click.ClickException(str(err)) from None
