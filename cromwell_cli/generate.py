"""`cromwell generate`: the runtime from the command line."""

from __future__ import annotations

import json
import threading
from typing import Any

import click


@click.command("generate")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A GGUF file (default: the embedded default model).")
@click.option("--prompt", required=True, help="The prompt (a user message unless --raw).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A PNG to send with the prompt (vision models only).")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1),
              help="Most tokens to generate.")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Sampling temperature (0: greedy).")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0),
              help="Sample from the K likeliest tokens only (0: all).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Sample from the likeliest tokens whose probabilities sum to P (1: all).")
@click.option("--repetition-penalty", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Divide the logits of tokens already in the text by this (1: none).")
@click.option("--seed", default=None, type=int, help="Seed for sampling (temperature > 0).")
@click.option("--stop", multiple=True, help="A stop string (repeatable).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Kernel threads (default: all cores).")
@click.option("--raw", is_flag=True, help="Send the prompt as it is, with no chat template.")
@click.option("--no-speculative", is_flag=True, help="Turn prompt-lookup decoding off.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for programs.")
def generate_command(model_path: str | None, prompt: str, image: str | None, max_tokens: int,
                     temperature: float, top_k: int, top_p: float, repetition_penalty: float,
                     seed: int | None, stop: tuple[str, ...], threads: int | None, raw: bool,
                     no_speculative: bool, as_json: bool) -> None:
    """Generate text with a GGUF model, streaming it to stdout."""
    import time

    from cromwell_lsp import api
    from engine.runtime.gguf_file import GGUFError

    started = time.perf_counter()
    out: list[str] = []
    first: float | None = None

    def run(model: Any, cancel: threading.Event) -> None:
        nonlocal first
        text = prompt if raw else model.apply_chat_template([{"role": "user", "content": prompt}])
        pieces = model.stream(text, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                              top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                              stop=list(stop), image=image, speculative=not no_speculative,
                              cancel=cancel)
        for piece in pieces:
            first = first or time.perf_counter()
            out.append(piece)
            if not as_json:
                click.echo(piece, nl=False)

    try:
        # The model service every door shares: loading, then the generation on its worker.
        model = api.load_model(model_path, threads)
        loaded = time.perf_counter()
        api.model_service().call(model_path, threads, run)
    except (GGUFError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    done = time.perf_counter()
    result = "".join(out)
    if not as_json:
        click.echo()
        return
    n_tokens = len(model.tokenizer.encode(result)) if result else 0
    click.echo(json.dumps({
        "model": str(model.path), "text": result, "tokens": n_tokens,
        "load_ms": round((loaded - started) * 1e3, 1),
        "first_token_ms": round(((first or done) - loaded) * 1e3, 1),
        "total_ms": round((done - loaded) * 1e3, 1),
    }))
