"""The special tokens Cromwell's prompts and outputs are built from.

The seed's editing and vision markers, and the fill-in-the-middle tokens spelt the way
llama.cpp recognises them in a GGUF vocabulary (so a FIM prompt built here is understood by
llama.cpp on the same file). Both Cromwell tokenizers carry all of them: the Cromwell BPE has
them from training, SmolLM2's vocabulary gets them appended (`extend_with_cromwell_tokens`).
"""

from __future__ import annotations

# No prompt uses <EDIT> and </EDIT> any more (edits are asked in the one edit format,
# engine/edit_format.py), but they stay in the vocabulary: tokens are appended in this order,
# so dropping them would move every later id (<IMAGE>, the FIM tokens) away from the rows that
# the shipped BPE, cromwell-smol's GGUF files and the fine-tuned adapters hold for them.
FILE = "<FILE>"
EDIT_START = "<EDIT>"
EDIT_END = "</EDIT>"
DIFF = "<DIFF>"
INS = "<INS>"
DEL = "<DEL>"
IMAGE = "<IMAGE>"
VISION_START = "<VISION_START>"
VISION_END = "<VISION_END>"
SEED_TOKENS: tuple[str, ...] = (
    FILE, EDIT_START, EDIT_END, DIFF, INS, DEL, IMAGE, VISION_START, VISION_END,
)

FIM_PREFIX = "<fim_prefix>"
FIM_SUFFIX = "<fim_suffix>"
FIM_MIDDLE = "<fim_middle>"
FIM_PAD = "<fim_pad>"
FIM_TOKENS: tuple[str, ...] = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_PAD)

# Other spellings of the FIM tokens that llama.cpp also detects by text; a vocabulary that
# already has one of them keeps it instead of gaining a second token for the same role.
FIM_ALIASES: dict[str, tuple[str, ...]] = {
    FIM_PREFIX: ("<|fim_prefix|>", "<fim-prefix>", "<PRE>"),
    FIM_SUFFIX: ("<|fim_suffix|>", "<fim-suffix>", "<SUF>"),
    FIM_MIDDLE: ("<|fim_middle|>", "<fim-middle>", "<MID>"),
    FIM_PAD: ("<|fim_pad|>", "<fim-pad>", "<PAD>"),
}

# GGUF metadata keys llama.cpp reads the FIM token ids from.
FIM_GGUF_KEYS: dict[str, str] = {
    FIM_PREFIX: "tokenizer.ggml.fim_pre_token_id",
    FIM_SUFFIX: "tokenizer.ggml.fim_suf_token_id",
    FIM_MIDDLE: "tokenizer.ggml.fim_mid_token_id",
    FIM_PAD: "tokenizer.ggml.fim_pad_token_id",
}

CROMWELL_TOKENS: tuple[str, ...] = SEED_TOKENS + FIM_TOKENS
