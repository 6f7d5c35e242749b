"""MNIST-style normalisation of glyph crops.

MNIST's digits were "size normalized to fit in a 20x20 pixel box while preserving their aspect ratio"
with anti-aliasing, then "centered in a 28x28 image by computing the center of mass of the pixels"
(LeCun et al., http://yann.lecun.com/exdb/mnist/). `fit_and_center` does the same at any image size,
with the box scaled to 20/28 of the image.
"""

import numpy as np
from PIL import Image

BOX_FRACTION = 20 / 28
# Grey level above which a pixel counts as ink when cropping grey images (about 12% of full scale).
INK_THRESHOLD = 32


def fit_and_center(ink: np.ndarray, image_size: int) -> Image.Image:
    """Crop a glyph to its ink, fit it into the MNIST box and centre it by centre of mass.

    Args:
        ink (`np.ndarray`): `(H, W)` array, white ink on black; `bool` (binary scans) or `uint8` grey.
        image_size (`int`): side of the square output image.

    Returns:
        `PIL.Image.Image`: mode "L", `image_size` x `image_size`, white ink on black. A crop without ink
        gives a black image.
    """
    grey = ink.astype(np.uint8) * 255 if ink.dtype == bool else ink
    rows = np.flatnonzero((grey > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((grey > INK_THRESHOLD).any(axis=0))
    canvas = np.zeros((image_size, image_size), dtype=np.uint8)
    if rows.size == 0:
        return Image.fromarray(canvas, mode="L")
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (h, w)

    # 1. fit: the longer side becomes the box side, aspect ratio kept (PIL's filters antialias).
    box = max(1, round(image_size * BOX_FRACTION))
    h, w = crop.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    glyph = np.asarray(Image.fromarray(crop, mode="L").resize((new_w, new_h), Image.Resampling.BILINEAR))

    # 2. centre of mass of the grey levels, in pixel-centre coordinates of the glyph.
    mass = glyph.astype(np.float64)
    total = mass.sum()
    if total == 0:
        return Image.fromarray(canvas, mode="L")
    com_y = (mass.sum(axis=1) @ np.arange(new_h)) / total + 0.5
    com_x = (mass.sum(axis=0) @ np.arange(new_w)) / total + 0.5

    # 3. translate so the centre of mass lands on the image centre, keeping the glyph inside.
    top = min(max(round(image_size / 2 - com_y), 0), image_size - new_h)
    left = min(max(round(image_size / 2 - com_x), 0), image_size - new_w)
    canvas[top : top + new_h, left : left + new_w] = glyph
    return Image.fromarray(canvas, mode="L")


def to_white_on_black(image: Image.Image) -> np.ndarray:
    """Convert any image to a `(H, W)` uint8 grey array with white ink on a black background.

    With a transparent background the opacity is the ink. Otherwise the background is the median of the
    border pixels, and images with a light background (dark ink on paper) are inverted.

    Args:
        image (`PIL.Image.Image`): any mode.

    Returns:
        `np.ndarray`: `(H, W)` uint8.
    """
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha.copy()  # a transparent background: the opacity is the ink
    grey = np.asarray(image.convert("L"))
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255 - grey if np.median(border) > 127 else grey


def resize_square(image: Image.Image, image_size: int) -> Image.Image:
    """Resize an already framed square image (e.g. MNIST) to `image_size`; unchanged when it already fits."""
    image = image.convert("L")
    if image.size == (image_size, image_size):
        return image
    return image.resize((image_size, image_size), Image.Resampling.BILINEAR)
