"""Train Cromwell's code-aware byte-level BPE (50,000 tokens) on the offline code corpus.

    .venv/bin/python scripts/train_tokenizer.py   # writes engine/assets/cromwell-bpe-50k.json

The corpus is the standard library's sources plus the sources that permissively licensed
installed distributions ship (engine/tokenizers/code_corpus.py); held-out files (the project's
one held-out rule, engine/data/split.py, at 10%) are skipped here and measured by
scripts/tokenizer_compression.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from engine.tokenizers import code_corpus
from engine.tokenizers.cromwell_bpe import ASSET_PATH, CROMWELL_SPECIAL_TOKENS, VOCAB_SIZE
from engine.tokenizers.pretokenizers import code_pretokenizer


def texts(files: list[code_corpus.CorpusFile]) -> Iterator[str]:
    for f in files:
        text = code_corpus.read_text(f.path)
        if text:
            yield text


def train(
    files: list[code_corpus.CorpusFile], vocab_size: int, max_token_length: int | None
) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = code_pretokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(CROMWELL_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        # Long tokens are almost always one file's banner or table; capping them spends the
        # vocabulary on pieces that recur across files.
        max_token_length=max_token_length,
        show_progress=False,
    )
    tok.train_from_iterator(texts(files), trainer=trainer, length=len(files))
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=ASSET_PATH)
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    ap.add_argument("--max-bytes-per-dist", type=int, default=3_000_000)
    ap.add_argument("--max-token-length", type=int, default=32)
    args = ap.parse_args()

    train_files, held = code_corpus.split(code_corpus.corpus_files(args.max_bytes_per_dist))
    size = sum(f.path.stat().st_size for f in train_files)
    print(f"training on {len(train_files)} files ({size / 1e6:.1f} MB), {len(held)} held out")
    start = time.perf_counter()
    tok = train(train_files, args.vocab_size, args.max_token_length or None)
    print(f"trained {tok.get_vocab_size()} tokens in {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
