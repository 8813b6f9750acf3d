"""Build the screenshot reader's lexicon (engine/assets/code-words.txt.gz): the letter pieces of
three letters or more that occur at least MIN_COUNT times in the training split of the Python
standard library, the files the reader learned from. No held-out file is read
(`engine.data.split.is_heldout`). The output is sorted and gzip'd with a fixed mtime, so the
same Python gives the same bytes.

    python scripts/build_reader_lexicon.py [--out engine/assets/code-words.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

from engine.data.corpus import indexable_text, stdlib_source
from engine.data.split import is_heldout
from engine.reader.lexicon import ASSET, MIN_COUNT, corpus_pieces


def training_texts() -> list[str]:
    source = stdlib_source()
    texts = []
    for relpath in source.relpaths:
        if not is_heldout(relpath) and (text := indexable_text(Path(source.root) / relpath)):
            texts.append(text)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET)
    args = parser.parse_args()
    texts = training_texts()
    counts = corpus_pieces(texts)
    words = sorted(w for w, n in counts.items() if n >= MIN_COUNT)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write("".join(w + "\n" for w in words).encode())
    args.out.write_bytes(raw.getvalue())
    print(f"{args.out}: {len(words)} words from {len(texts)} training files, "
          f"{len(raw.getvalue())} bytes")


if __name__ == "__main__":
    main()
