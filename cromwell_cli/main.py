"""The `cromwell` command: the root group, with every module's commands under it."""

from __future__ import annotations

import click

from cromwell_cli.bench import bench_group
from cromwell_cli.cpu import cpu_command
from cromwell_cli.data import data_group
from cromwell_cli.edit import apply_command, complete_command, edit_command, screenshot_command
from cromwell_cli.eval import eval_group
from cromwell_cli.generate import generate_command
from cromwell_cli.lsp import lsp_command
from cromwell_cli.models import info_command, models_group
from cromwell_cli.serve import serve_command
from cromwell_cli.train import export_command, train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cromwell")
def main() -> None:
    """Cromwell: a local, CPU-first AI code-editing backend."""


for command in (cpu_command, models_group, info_command, generate_command, bench_group,
                eval_group, data_group, train_command, export_command, lsp_command,
                edit_command, complete_command, screenshot_command, apply_command,
                serve_command):
    main.add_command(command)


if __name__ == "__main__":
    main()
