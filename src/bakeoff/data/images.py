"""Reading images the one way every stage does: RGB, upright, first frame, 8-bit.

Training, evaluation, predict and validate all go through `open_rgb`/`load_array`, so an
image is seen identically everywhere (a CMYK JPEG or an EXIF-rotated photo never looks
different at predict time than it did at training time). Every logged model carries a
verbatim copy of this file for serving (tracking/served.py): keep it free of imports
other than numpy and PIL.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

# 16-bit and 32-bit integer greyscale modes: PIL's convert("RGB") clips them instead of scaling.
_WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class DecompressionBomb(Image.DecompressionBombError):
    """An image with more pixels than PIL's `Image.MAX_IMAGE_PIXELS` (a decompression bomb).

    Validate records it as `decompression_bomb`, train and evaluate (the decode cache) stop
    with a BakeoffError naming the file, predict and the served model report it per image.
    This module imports nothing from bakeoff: a logged model ships a verbatim copy of it.
    """


def _open_guarded(path) -> Image.Image:
    """`Image.open` with PIL's decompression-bomb guard always an error, in every stage.

    PIL raises only above twice MAX_IMAGE_PIXELS and merely warns between once and twice
    that; a warning is easy to miss while decoding it can exhaust memory.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecompressionBomb(f"{path}: {exc}: remove it from the images") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:  # warnings filtered elsewhere
        img.close()
        raise DecompressionBomb(
            f"{path}: {img.width * img.height} pixels exceed the decompression-bomb limit of "
            f"{limit}: remove it from the images"
        )
    return img


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str]:
    """Convert an upright first frame to RGB; returns (image, conversion description)."""
    mode = img.mode
    if mode == "RGB":
        return img, ""
    if mode in _WIDE_MODES or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit files hold 0..65535; a 32-bit "I" can hold anything, so scale by its range.
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode == "I" and top <= 255:
            top = 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB"), f"{mode}->RGB(scaled to 8-bit)"
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("LA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
        return rgb, f"{mode}->RGB(alpha on white)"
    return img.convert("RGB"), f"{mode}->RGB"


def open_rgb_described(
    path: Path | str | BinaryIO, size_hint: int | None = None
) -> tuple[Image.Image, str]:
    """Open an image as RGB and say what conversion it needed.

    Args:
        path: An image file.
        size_hint: The side the caller will resize to: a JPEG much larger than that is
            decoded at a reduced scale (libjpeg's DCT scaling, never below the hint), which
            makes a 12-megapixel photo several times cheaper to turn into 224 px.

    Returns:
        (RGB image, conversion) where conversion is e.g. "CMYK->RGB", "exif-rotated",
        "first-frame", joined by "; " (empty when the file was plain upright RGB).
    """
    steps: list[str] = []
    with _open_guarded(path) as img:
        if size_hint:
            img.draft(img.mode, (size_hint, size_hint))  # a no-op except for large JPEGs
        if getattr(img, "n_frames", 1) > 1:
            steps.append("first-frame")
        img.seek(0)
        img.load()
        orientation = img.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(img)
        if orientation not in (1, None):
            steps.append("exif-rotated")
        rgb, conversion = _to_rgb(upright)
    if conversion:
        steps.insert(0, conversion)
    return rgb, "; ".join(steps)


def open_rgb(path: Path | str | BinaryIO) -> Image.Image:
    """Open an image as an upright 8-bit RGB image.

    EXIF orientation is applied, only the first frame of a GIF/animated file is kept,
    16-bit greyscale is scaled to 8-bit, and CMYK/palette/grey/LA/RGBA become RGB with
    any alpha composited on white.

    Args:
        path: An image file.

    Returns:
        A loaded RGB PIL image (the file is closed).
    """
    return open_rgb_described(path)[0]


def load_array(path: Path | str | BinaryIO, size: int) -> np.ndarray:
    """Load an image as a uint8 array of shape (size, size, 3), resized with PIL bilinear.

    Args:
        path: An image file (or its bytes as a file object: the served model's input).
        size: The side of the square output.

    Returns:
        The pixels, uint8, 0..255.
    """
    img = open_rgb_described(path, size_hint=size)[0]
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
