"""The image path of the default model (cromwell-smol): vision encode time for a 448x448 image,
time to first token with that image, and greedy decode speed with the image beside the same
decode without it (the peer, measured in the same run). Figures, never pass/fail.

    .venv/bin/python bench/bench_vision.py [--model PATH] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import engine.runtime
from engine.runtime.generate import prefill

DECODE_TOKENS = 64
PROMPT = "Write the HTML for the screenshot: a login form with two fields and a button."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = engine.runtime.load(args.model, threads=args.threads)
    if not model.takes_images:
        raise SystemExit(f"{model.path} takes no images")
    image = np.random.default_rng(0).random((448, 448, 3), dtype=np.float32)
    ids = model.tokenizer.encode(model.apply_chat_template([{"role": "user", "content": PROMPT}]))
    fusion, decoder = model.fusion, model.decoder
    assert fusion is not None

    def best(fn, repeats: int = 2) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    encode_s = best(lambda: model.encode_image(image))

    def first_token() -> None:
        fusion.set_image(model.encode_image(image))
        prefill(decoder, ids, fusion).argmax()

    first_s = best(first_token)

    def decode(with_image: bool) -> float:
        if with_image:
            fusion.set_image(model.encode_image(image))
        token = int(prefill(decoder, ids, fusion if with_image else None).argmax())
        t0 = time.perf_counter()
        for _ in range(DECODE_TOKENS):
            token = int(decoder.forward([token]).argmax())
        return DECODE_TOKENS / (time.perf_counter() - t0)

    text_tok_s = max(decode(False) for _ in range(2))
    image_tok_s = max(decode(True) for _ in range(2))
    row = {
        "model": str(model.path),
        "threads": args.threads,
        "prompt_tokens": len(ids),
        "vision_tokens": int(model.encode_image(image).shape[0]),
        "vision_encode_ms": round(encode_s * 1e3, 1),
        "first_token_ms_with_image": round(first_s * 1e3, 1),
        "decode_tok_s_with_image": round(image_tok_s, 2),
        "decode_tok_s_text_only": round(text_tok_s, 2),
        "image_over_text_decode": round(image_tok_s / text_tok_s, 3),
    }
    if args.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
