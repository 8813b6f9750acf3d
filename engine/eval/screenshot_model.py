"""The vision-language model's readings for `cromwell eval screenshot --model-modes`.

The model is prompted exactly as training prompts it (`vision.vision_prompt`, encoded without
a BOS as `vision.encode_vision` encodes it) and decodes greedily, in three modes: the picture;
a blank picture of the same size in its background colour (the fusion path runs, so what
training taught it about the format of an answer counts, but there is nothing to read: the
chance level of reading); no picture at all (the language path alone). Held-out renders only:
their sizes are what the model was trained on (--max-side 256 is training's side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.data.render import RenderedCode
    from engine.eval.screenshot_pictures import ScreenshotTask

MODES = ("image", "blank_image", "no_image")


@dataclass(frozen=True)
class ModelReading:
    text: str
    tokens: int
    seconds: float


def blank_like(image: np.ndarray) -> np.ndarray:
    """A picture of the same size filled with its top-left (background) colour."""
    return np.broadcast_to(image[:1, :1], image.shape).copy()


def prompt_ids(tokenizer: Any, shot: RenderedCode) -> list[int]:
    """The prompt's token ids exactly as training feeds them (`vision.encode_vision`: the
    prompt of `vision_prompt`, special tokens parsed, no BOS)."""
    from engine.data.vision import vision_prompt

    return list(tokenizer.encode(vision_prompt(shot).prompt))


def check_vision(model: Any) -> None:
    if not model.takes_images:
        raise ValueError(f"{model.path} is a text-only {model.architecture!r} model: the "
                         "screenshot evaluation's model modes need a vision model (cromwell)")


def model_readings(model: Any, task: ScreenshotTask, max_tokens: int) -> dict[str, ModelReading]:
    """The task read in every mode (MODES). A transcript gets at most twice the target's tokens
    (and at most `max_tokens`): past twice the target's length the character error rate is
    1.0, clipped, whatever follows."""
    ids = prompt_ids(model.tokenizer, task.shot)
    budget = min(max_tokens, 2 * len(model.tokenizer.encode(task.text)) + 8)
    pictures = {"image": task.image, "blank_image": blank_like(task.image), "no_image": None}
    out: dict[str, ModelReading] = {}
    for mode in MODES:
        image = pictures[mode]
        pixels = None if image is None else image.astype(np.float32) / 255.0
        t = time.perf_counter()
        tokens = model.generate_tokens(ids, max_tokens=budget, image=pixels, speculative=False)
        text = model.tokenizer.decode(tokens, skip_special=True)
        out[mode] = ModelReading(text, len(tokens), time.perf_counter() - t)
    return out
