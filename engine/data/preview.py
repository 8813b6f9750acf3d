"""A look at what the data pipeline makes: the first examples of a stream, as text (prompt and
target) or as pictures written to a folder with their target beside them."""

from __future__ import annotations

import itertools
from pathlib import Path

from PIL import Image

from engine.edit_format import Messages
from engine.tokenizers import chat_template
from engine.tokenizers.cromwell_bpe import CHAT_TEMPLATE

from . import pipeline
from .corpus import CorpusIndex
from .edit_makers import EditExample, to_prompt
from .fim import FimExample, to_fim_prompt
from .split import TRAIN

TEXT_KINDS = ("edit", "fim", "commit")


def chatml(messages: Messages, add_generation_prompt: bool = True) -> str:
    """Edit prompts as ChatML shows them without loading a tokenizer: the turn markers of
    both Cromwell tokenizers' chat templates (a model's own template may add a system turn)."""
    return chat_template.render(CHAT_TEMPLATE, messages,
                                add_generation_prompt=add_generation_prompt, special_tokens={})

IMAGE_KINDS = ("render", "chart", "mockup")
KINDS = TEXT_KINDS + IMAGE_KINDS


def preview(
    kind: str,
    count: int = 3,
    seed: int = 0,
    split: str = TRAIN,
    index: CorpusIndex | None = None,
    repo: str | None = None,
    out_dir: str | Path | None = None,
) -> list[str]:
    """`count` examples of `kind`, each as one text block. Picture kinds need `out_dir`: each
    picture goes there as KIND-NNN.png with its target as KIND-NNN.txt (so previews of two
    kinds share a folder), and its block names the file. The errors name the command line's
    flags (--index, --repo, --out)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if kind in ("edit", "fim", "render") and index is None:
        raise ValueError(f"previewing {kind} examples needs a corpus index: --index FILE "
                         "(made by `cromwell data index --out FILE`)")
    if kind == "commit" and repo is None:
        raise ValueError("previewing commits needs a git repository: --repo DIR")
    if kind in IMAGE_KINDS and out_dir is None:
        raise ValueError(f"{kind} examples are pictures: give a folder to write them to "
                         "with --out DIR")
    streams = {
        "edit": lambda: pipeline.edit_stream(index, split, seed),
        "fim": lambda: pipeline.fim_stream(index, split, seed),
        "commit": lambda: pipeline.commit_stream(repo, split, seed, max_commits=50 * count),
        "render": lambda: pipeline.render_stream(index, split, seed),
        "chart": lambda: pipeline.chart_stream(count, seed),
        "mockup": lambda: pipeline.mockup_stream(count, seed),
    }
    blocks = []
    for n, example in enumerate(itertools.islice(streams[kind](), count)):
        if isinstance(example, EditExample):
            prompt = to_prompt(example, chatml, context_lines=4)
            blocks.append(f"## {example.kind}: {example.path}\n{prompt.prompt}"
                          f"## target\n{prompt.target}\n")
        elif isinstance(example, FimExample):
            prompt = to_fim_prompt(example)
            blocks.append(f"## fim: {example.path}\n{prompt.prompt[-1500:]}\n"
                          f"## target\n{prompt.target}\n")
        else:
            folder = Path(out_dir)  # type: ignore[arg-type]
            folder.mkdir(parents=True, exist_ok=True)
            target = getattr(example, "text", None) or example.source
            name = f"{kind}-{n:03d}"
            Image.fromarray(example.image).save(folder / f"{name}.png")
            (folder / f"{name}.txt").write_text(target)
            h, w = example.image.shape[:2]
            blocks.append(f"## {kind} {name}.png ({w}x{h})\n{target}")
    return blocks
