"""`cromwell lsp`: the language server editors start."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--tcp", is_flag=True, help="Listen on TCP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="TCP host (with --tcp).")
@click.option("--port", default=2087, show_default=True, help="TCP port (with --tcp).")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Write the server's log here.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def lsp_command(tcp: bool, host: str, port: int, log_file: str | None, verbose: bool) -> None:
    """Run the language server (stdio by default; editors start this)."""
    from cromwell_lsp.lsp_transport import run_server

    run_server(tcp, host, port, log_file, verbose)
