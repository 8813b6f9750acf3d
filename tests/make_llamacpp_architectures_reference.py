"""Record llama.cpp's greedy decoding of each architecture's tiny F16 file
(tests/data/llamacpp_architectures.json), which tests/runtime/test_llamacpp_architectures.py
checks the runtime against where llama.cpp is not installed.

    .venv/bin/pip install llama-cpp-python    # the `bench` extra
    .venv/bin/python tests/make_llamacpp_architectures_reference.py

Each file is written by the tests' own writer (tests/runtime/architecture_cases.py, fixed
seeds: the same bytes every time) with a tokenizer-less vocabulary llama.cpp loads, and run
from the same token ids. llama.cpp runs in a child process of its own, which imports nothing of
ours (the file writer imports our native kernels, beside which llama.cpp has been seen to
fault).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "llamacpp_architectures.json"


def run_llamacpp(path: str, prompt: list[int], n: int) -> dict[str, object]:
    """In the child process: llama.cpp's greedy tokens, each step's top-1/top-2 margin and
    top logits."""
    import llama_cpp
    from llamacpp_decode import greedy, margin, open_llama, top_logits

    llm = open_llama(path)  # without llama.cpp's extra buffers (its AMX buffer faults here)
    tokens, rows = greedy(llm, prompt, n)
    tops = [top_logits(r) for r in rows]
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "tokens": tokens,
        "margins": [round(margin(r), 4) for r in rows],
        "top_ids": [t[0] for t in tops],
        "top_logits": [t[1] for t in tops],
    }


def main() -> None:
    sys.path[:0] = [str(HERE / "runtime"), str(HERE.parent)]
    from architecture_cases import (
        LLAMACPP_CASES,
        LLAMACPP_DECODE_TOKENS,
        LLAMACPP_PROMPT,
        case_name,
        write_case,
    )

    record: dict[str, object] = {
        "prompt": LLAMACPP_PROMPT,
        "decode_tokens": LLAMACPP_DECODE_TOKENS,
        "cases": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for arch, variant in LLAMACPP_CASES:
            path = write_case(Path(tmp) / "case.gguf", arch, variant, "F16", vocabulary=True)
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(path), json.dumps(LLAMACPP_PROMPT),
                 str(LLAMACPP_DECODE_TOKENS)],
                capture_output=True, text=True, check=False, timeout=300,
            )  # fmt: skip
            if child.returncode != 0:
                sys.exit(f"llama.cpp failed on {case_name(arch, variant)}:\n{child.stderr}")
            run = json.loads(child.stdout.strip().splitlines()[-1])
            record["llama_cpp_python"] = run.pop("llama_cpp_python")
            record["cases"][case_name(arch, variant)] = run  # type: ignore[index]
            print(case_name(arch, variant), run["tokens"], "min margin", min(run["margins"]))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(record) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # path, prompt ids as JSON, token count
        sys.path.insert(0, str(HERE))
        path, prompt, n = sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(run_llamacpp(path, prompt, n)))
    else:
        main()
