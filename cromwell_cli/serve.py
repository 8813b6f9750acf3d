"""`cromwell serve`: the HTTP server."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs a token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on.")
@click.option("--token", envvar="CROMWELL_TOKEN", default=None,
              help="Bearer token every request must carry (env CROMWELL_TOKEN).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="The workspace the server edits.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Kernel threads (default: all cores).")
@click.option("--queue", "queue_size", default=8, show_default=True,
              type=click.IntRange(min=1), help="Requests waiting for the model before 429.")
@click.option("--max-body", default=10_000_000, show_default=True,
              type=click.IntRange(min=1024), help="Largest request body in bytes.")
@click.option("--strict-model", is_flag=True,
              help="OpenAI requests must name the served model (else 404); without it any "
                   "model name is an alias of the served one.")
def serve_command(host: str, port: int, token: str | None, root: Path, model_path: str | None,
                  threads: int | None, queue_size: int, max_body: int,
                  strict_model: bool) -> None:
    """Run the HTTP server (Cromwell's API and OpenAI-compatible completions)."""
    from cromwell_lsp import rest
    from engine.runtime.gguf_file import GGUFError

    try:
        rest.serve(rest.ServerConfig(host=host, port=port, token=token, root=root,
                                     model_path=model_path, threads=threads,
                                     queue_size=queue_size, max_body=max_body,
                                     strict_model=strict_model))
    except rest.ConfigError as err:
        raise click.UsageError(str(err)) from err
    except (GGUFError, FileNotFoundError) as err:  # the model cannot load: say why, once
        raise click.ClickException(str(err)) from err

