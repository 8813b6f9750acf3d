"""Code snippets the GGUF tokenizer import is checked on against independent references."""

from __future__ import annotations

from pathlib import Path

from engine.tokenizer import CodeTokenizer
from engine.tokenizers.gguf_export import add_vocab_to_writer

SNIPPETS: list[str] = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n\tdef __init__(self, x, y):\n\t\tself.x = x\n\t\tself.y = y\n",
    "if (x > 0) {\r\n    y = x * 2;\r\n}\r\n",
    "for i in range(1024):\n        total += i ** 2  # sum of squares\n",
    "PI = 3.14159265358979; N = 1_000_000; H = 0xDEADBEEF\n",
    "s = 'héllo wörld' + \"naïve café\"\n",
    "# 日本語のコメント\nprint('你好，世界')  # 中文\n",
    "emoji = '😀🚀👩‍💻🇫🇷'  # ZWJ sequence and flag\n",
    "    \t  mixed\t indentation  \t\n\t    \n",
    "trailing   \nspaces\t\t\n\n\n   ",
    "const f = async (x) => { await g(x?.y ?? 42); };\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }\n",
    "<|im_start|>user\nFix the bug<|im_end|>\n<|im_start|>assistant\n",
    "x = [1, 2, 3]\ny = {'a': 1, \"b\": [2.5e-3, -7]}\n",
    "it's, we're, they've, I'm, you'll, he'd — DON'T, ISN'T\n",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }\n",
    "    \"\"\"Docstring with `code` and *markdown*.\n\n"
    "    Args:\n        x: the input.\n    \"\"\"\n",
    "diff --git a/f.py b/f.py\n@@ -1,3 +1,4 @@\n-old line\n+new line\n context\n",
    "<|endoftext|>",
    "control \x1d\x04 bytes SmolLM2 has no token for\x7f\x00",
    "",
    "a" * 100 + " " + "9" * 50,
]

# Long enough for encode/count to cut it into chunks, with the whitespace around newlines that
# makes a careless cut change the ids.
LONG_TEXT = "".join(
    f"def f{i}(x):  \n\treturn x + {i}\t\r\n\n  \n# 注释 {i} 😀\nclass C{i}: pass \n"
    for i in range(2000)
)

# Snippets on which llama.cpp's `smollm` pre-tokenizer (digits isolated first) and a plain
# GPT-2 regex cut differently: whitespace runs directly before a digit.
SMOLLM_DIGIT_CASES: list[str] = [
    "x  1",
    "a =   42\n",
    "\t7\n  8",
]


def write_vocab_gguf(
    path: Path, tok: CodeTokenizer, pre: str, hparams_from: Path | None = None
) -> Path:
    """A GGUF file holding `tok`'s vocabulary announced with the pre-tokenizer `pre`, and no
    tensors. `hparams_from` lends its `llama.*` keys (llama.cpp reads them even when it loads
    a vocabulary only)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    if hparams_from is not None:
        reader = gguf.GGUFReader(str(hparams_from))
        for key, field in reader.fields.items():
            if key.startswith("llama."):
                sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
                writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    add_vocab_to_writer(writer, tok, pre)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

# The pre-tokenizers checked against llama.cpp (SmolLM2's vocabulary under each name).
REFERENCE_PRES: tuple[str, ...] = ("smollm", "qwen2", "llama-bpe", "gpt-2", "default")
