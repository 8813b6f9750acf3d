"""Ghost text's quality at every keystroke of the typing session, timing left out.

    .venv/bin/python scripts/ghost_acceptance.py [--model F]
        [--prefix-lines N] [--suffix-lines N] [--fim FAMILY|none] [--json]

`cromwell bench typing` counts the suggestions a user accepts in a real LSP session, where a
slow model also loses the suggestions that come too late. This asks the same question with the
clock removed: at each key of the session's retyped lines (`cromwell_lsp.typing_session`, the
same files, places and seed), the document as the user has it then, the cursor after the key,
the suggestion the ghost-text pipeline makes for it. It counts as accepted when it is a
non-empty start of what the user types next on that line. So two models, or two prompt
settings, compare on what they suggest, not on how fast.
"""

from __future__ import annotations

import argparse
import argparse as argparse_module
import json
import random
import textwrap
from pathlib import Path
from typing import Any

from cromwell_lsp.ghost import GhostRequest, GhostSettings, GhostText
from cromwell_lsp.typing_session import pick_spots
from engine.runtime.prompt_window import WindowSettings

FILES = {"textwrap.py": textwrap.__file__, "argparse.py": argparse_module.__file__}


def keystrokes(text: str, spots: int, seed: int) -> list[tuple[str, int, int, str]]:
    """(document, line, column, what the user types next on the line) after each key of the
    session's retyped lines: both lines cleared to their indentation, the first typed, then
    the second."""
    lines = text.split("\n")
    states = []
    for spot in pick_spots(lines, spots, random.Random(seed)):
        for which, code in enumerate((spot.first, spot.second)):
            for k in range(1, len(code)):
                doc = list(lines)
                doc[spot.line] = spot.indent + (code[:k] if which == 0 else spot.first)
                doc[spot.line + 1] = spot.second_indent + (code[:k] if which == 1 else "")
                row = spot.line + which
                states.append(("\n".join(doc), row, len(doc[row]), code[k:]))
    return states


def line_starts(text: str, spots: int, seed: int) -> list[tuple[str, int, int, str]]:
    """(document, line, column, the line's code) with one of the session's lines cleared to its
    indentation and the cursor after it: the moment after Enter, when a suggestion can offer
    the whole line."""
    lines = text.split("\n")
    states = []
    for spot in pick_spots(lines, spots, random.Random(seed)):
        doc = list(lines)
        doc[spot.line] = spot.indent
        states.append(("\n".join(doc), spot.line, len(spot.indent), spot.first))
    return states


def measure(ghost: GhostText, name: str, text: str, spots: int, seed: int,
            at_line_starts: bool = False) -> dict[str, Any]:
    keys = shown = accepted = whole = 0
    states = (line_starts if at_line_starts else keystrokes)(text, spots, seed)
    for doc, line, column, rest in states:
        suggestion = ghost.suggest(GhostRequest(name, doc, line, column)).text
        if at_line_starts:  # from a blank line it may run on: its first line is the offer
            suggestion = suggestion.split("\n")[0]
        keys += 1
        shown += bool(suggestion)
        if suggestion and rest.startswith(suggestion):
            accepted += 1
            whole += suggestion == rest
    return {"keys": keys, "shown": shown, "accepted": accepted, "whole_rest": whole,
            "accepted_share": round(accepted / keys, 4) if keys else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--model", default=None, help="a GGUF file (default: the default model)")
    parser.add_argument("--prefix-lines", type=int, default=WindowSettings.prefix_lines)
    parser.add_argument("--suffix-lines", type=int, default=WindowSettings.suffix_lines)
    parser.add_argument("--fim", default=None, help="the prompt format (default: the model's)")
    parser.add_argument("--no-heal", action="store_true",
                        help="suggest from the cursor itself, without token healing")
    parser.add_argument("--line-starts", action="store_true",
                        help="ask once per spot, at the start of a cleared line, for the line")
    parser.add_argument("--spots", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import engine.runtime

    model = engine.runtime.load(args.model, threads=args.threads)
    window = WindowSettings(prefix_lines=args.prefix_lines, suffix_lines=args.suffix_lines)
    ghost = GhostText(model, GhostSettings(window=window, fim=args.fim, heal=not args.no_heal))
    report = {"model": Path(args.model).name if args.model else "embedded default",
              "fim": ghost.fim.family, "heal": not args.no_heal,
              "prefix_lines": args.prefix_lines,
              "suffix_lines": args.suffix_lines,
              "line_starts": args.line_starts,
              "files": {name: measure(ghost, name, Path(path).read_text(), args.spots, args.seed,
                                      args.line_starts)
                        for name, path in FILES.items()}}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, row in report["files"].items():
            print(f"{name}: {row['accepted']} of {row['keys']} keys accepted "
                  f"({row['accepted_share']:.1%}), {row['whole_rest']} the whole rest of the line")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
