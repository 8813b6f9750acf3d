"""Cromwell's own code-aware byte-level BPE: the committed 50,000-token vocabulary."""

from __future__ import annotations

from pathlib import Path

from engine.tokenizers.special_tokens import CROMWELL_TOKENS

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "cromwell-bpe-50k.json"
VOCAB_SIZE = 50_000

PAD = "<|pad|>"
BOS = "<|bos|>"
EOS = "<|eos|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

# Ids 0.. in this order: the training script reserves them before any merge is learnt.
CROMWELL_SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, IM_START, IM_END, *CROMWELL_TOKENS)

# ChatML, the same turn markers SmolLM2 uses, so prompts look alike under both tokenizers.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
