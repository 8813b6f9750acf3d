"""`cromwell data`: training data made offline (engine.data): the corpus index, its held-out
split, previews."""

from __future__ import annotations

import json
from typing import Any

import click

from cromwell_cli.elapsed import elapsed


@click.group("data")
def data_group() -> None:
    """Training data, made offline: the corpus index, its held-out split, previews."""


@data_group.command("index")
@click.option("--folder", "folders", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of code (repeatable).")
@click.option("--repo", "repos", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A git repository: its tracked files (repeatable).")
@click.option("--stdlib/--no-stdlib", default=True, help="Include the standard library.")
@click.option("--site-packages", is_flag=True, help="Include installed packages' sources.")
@click.option("--heldout", default=0.02, show_default=True, help="Held-out fraction.")
@click.option("--workers", default=2, show_default=True, help="Processes reading the files.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Index file (JSON).")
def data_index(folders, repos, stdlib: bool, site_packages: bool, heldout: float, workers: int,
               out: str):
    """Index code: deduplicate, split train / held-out by path hash, save the index."""
    from engine.data.pipeline import code_corpus

    try:
        with elapsed("indexing code"):
            index = code_corpus(folders, repos, stdlib, site_packages,
                                heldout_fraction=heldout, workers=workers)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    index.save(out)
    click.echo(json.dumps(index.stats()))


def _load_index(path: str) -> Any:
    """A corpus index file, or one line saying the file is not one."""
    from engine.data.corpus import CorpusIndex

    try:
        return CorpusIndex.load(path)
    except (ValueError, KeyError, TypeError, OSError) as err:
        detail = f"no {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
        raise click.ClickException(f"{path} is not a corpus index (`cromwell data index "
                                   f"--out FILE` makes one): {detail}") from None


@data_group.command("heldout")
@click.argument("index_path", metavar="INDEX", type=click.Path(exists=True, dir_okay=False))
def data_heldout(index_path: str) -> None:
    """List the held-out files of INDEX (an index file from `cromwell data index`), never
    seen in training: one path a line."""
    for path in _load_index(index_path).heldout_paths():
        click.echo(path)


@data_group.command("preview")
@click.argument("kind", type=click.Choice(["edit", "fim", "commit", "render", "chart", "mockup"]))
@click.option("--index", "index_path", type=click.Path(exists=True, dir_okay=False),
              help="Index file (edit, fim, render).")
@click.option("--repo", type=click.Path(exists=True, file_okay=False), help="Repository (commit).")
@click.option("--count", default=3, show_default=True, type=click.IntRange(min=1),
              help="How many examples.")
@click.option("--seed", default=0, show_default=True, help="Which examples (the same seed "
              "shows the same ones).")
@click.option("--split", type=click.Choice(["train", "heldout"]), default="train",
              show_default=True, help="Examples from the training or the held-out files.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for pictures.")
def data_preview(kind, index_path, repo, count: int, seed: int, split: str, out) -> None:
    """Show the first examples of KIND (edit, fim and render need --index, commit needs
    --repo); pictures (render, chart, mockup) go to --out with their targets."""
    from engine.data.preview import preview

    index = _load_index(index_path) if index_path else None
    try:
        with elapsed(f"making {kind} examples"):
            blocks = preview(kind, count, seed, split, index, repo, out)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo("\n".join(blocks))
