"""Vision examples as the model sees them: a picture, a prompt with the `<IMAGE>` marker, and
the text to write (the code on the screenshot, the chart's script, the screen's markup);
batches of pictures of different sizes padded together with a mask of the real 8x8 patches.

Prompt format::

    <IMAGE>\\n{instruction}\\n

The model puts the picture's vision tokens where `<IMAGE>` stands (bracketed by
`<VISION_START>` / `<VISION_END>` if it wants them, which is the model's business, not the
data's). The target is the text followed by the end-of-text token when one is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .charts import RenderedChart
from .edit_makers import Prompt
from .mockups import RenderedMockup
from .packing import Tokenizer
from .render import RenderedCode

PATCH = 8
VISION_MARKERS: Mapping[str, str] = {"image": "<IMAGE>"}
INSTRUCTIONS = {
    RenderedCode: "Write out the code in this screenshot exactly.",
    RenderedChart: "Write the matplotlib code that draws this chart.",
    RenderedMockup: "Write the markup for this screen.",
}


@dataclass(frozen=True)
class EncodedVision:
    image: np.ndarray  # (H, W, 3) uint8, H and W multiples of 8
    ids: list[int]
    mask: list[int]  # 1 on the target tokens


def target_text(example: RenderedCode | RenderedChart | RenderedMockup) -> str:
    return example.text if isinstance(example, RenderedCode) else example.source


def vision_prompt(
    example: RenderedCode | RenderedChart | RenderedMockup,
    markers: Mapping[str, str] = VISION_MARKERS,
) -> Prompt:
    instruction = INSTRUCTIONS.get(type(example))
    if instruction is None:
        raise TypeError(f"not a vision example: {type(example).__name__}")
    return Prompt(prompt=f"{markers['image']}\n{instruction}\n", target=target_text(example))


def encode_vision(
    example: RenderedCode | RenderedChart | RenderedMockup,
    tokenizer: Tokenizer,
    eos_id: int | None = None,
    markers: Mapping[str, str] = VISION_MARKERS,
) -> EncodedVision:
    prompt = vision_prompt(example, markers)
    head = list(tokenizer.encode(prompt.prompt))
    tail = list(tokenizer.encode(prompt.target)) + ([eos_id] if eos_id is not None else [])
    return EncodedVision(example.image, head + tail, [0] * len(head) + [1] * len(tail))


def batch_images(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pictures padded (bottom and right, with zeros) to the largest height and width:
    ((B, H, W, 3) uint8, (B, H/8, W/8) bool, True on patches of the real picture)."""
    if not images:
        raise ValueError("batch_images needs at least one picture")
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] % PATCH \
                or image.shape[1] % PATCH:
            raise ValueError(f"pictures must be (H, W, 3) with H, W multiples of {PATCH}, "
                             f"got {image.shape}")
    height = max(i.shape[0] for i in images)
    width = max(i.shape[1] for i in images)
    pixels = np.zeros((len(images), height, width, 3), dtype=np.uint8)
    valid = np.zeros((len(images), height // PATCH, width // PATCH), dtype=bool)
    for b, image in enumerate(images):
        h, w = image.shape[:2]
        pixels[b, :h, :w] = image
        valid[b, : h // PATCH, : w // PATCH] = True
    return pixels, valid


def vision_batches(
    examples: Iterable[EncodedVision], batch_size: int, seq_len: int, pad_id: int = 0
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of `batch_size` examples: pixels and patch mask (see `batch_images`), ids
    (B, seq_len) padded with `pad_id` or cut, and the loss mask (0 on padding)."""
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    pending: list[EncodedVision] = []
    for example in examples:
        if not isinstance(example, EncodedVision):
            raise TypeError(f"vision_batches takes encoded pictures, got {type(example).__name__}")
        pending.append(example)
        if len(pending) < batch_size:
            continue
        pixels, valid = batch_images([e.image for e in pending])
        ids = np.full((batch_size, seq_len), pad_id, dtype=np.int64)
        mask = np.zeros((batch_size, seq_len), dtype=np.uint8)
        for b, e in enumerate(pending):
            n = min(seq_len, len(e.ids))
            ids[b, :n], mask[b, :n] = e.ids[:n], e.mask[:n]
        yield {"pixels": pixels, "patch_mask": valid, "ids": ids, "mask": mask}
        pending = []
