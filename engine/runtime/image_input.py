"""An image file -> the vision encoder's input: (H, W, 3) float32 in [0, 1], H and W multiples
of 8. Large images are scaled down (aspect kept) so the longer side is at most MAX_SIDE, and the
edges are padded up to the next multiple of 8 with the image's corner colour, as the training
renderer pads its screenshots with their background."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import PIL.Image

MAX_SIDE = 448  # the training resolution; the encoder runs at any size, cost grows with area
MULTIPLE = 8  # one vision token per 8x8 pixels


def load_image(path: str | Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return image_array(im)
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read the image: {err}") from None


def image_array(image: PIL.Image.Image) -> np.ndarray:
    """A PIL image (any mode) -> the encoder's input, as load_image makes from a file."""
    from PIL import Image

    img = image.convert("RGB")
    w, h = img.size
    if w < 1 or h < 1:
        raise ValueError(f"the image is {w}x{h} pixels: it has no area")
    scale = min(1.0, MAX_SIDE / max(w, h))
    if scale < 1.0:
        img = img.resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC
        )
    a = np.asarray(img, dtype=np.float32) / 255.0
    ph, pw = -a.shape[0] % MULTIPLE, -a.shape[1] % MULTIPLE
    if ph or pw:
        corner = a[0, 0]
        out = np.empty((a.shape[0] + ph, a.shape[1] + pw, 3), np.float32)
        out[:] = corner
        out[: a.shape[0], : a.shape[1]] = a
        a = out
    return np.ascontiguousarray(a)
