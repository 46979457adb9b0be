"""The misclassified test images as thumbnails, most confident mistakes first.

As fastai's `plot_top_losses`: a model's most confident mistakes, with their true and
predicted classes, say more than a confusion matrix (a mislabelled image, a class that is
two classes, a background the model keys on). Thumbnails are small JPEGs embedded as data
URIs, so the HTML page stays one self-contained file.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from bakeoff.data.dataset import manifest_file
from bakeoff.data.images import open_rgb
from bakeoff.errors import BakeoffError
from bakeoff.evaluate.predictions import read_mistakes

THUMB_PX = 112  # the longest side of a thumbnail, in pixels
MAX_SHOWN = 24  # thumbnails per backbone: the most confident mistakes


@dataclass(frozen=True)
class Mistake:
    """One misclassified test image."""

    path: str  # under data/raw, as in the split manifest
    actual: str
    predicted: str
    confidence: float
    uri: str  # the thumbnail as a data URI


def thumbnail(path: Path) -> str:
    """The image, shrunk to fit THUMB_PX (never enlarged), as a JPEG data URI.

    Raises:
        BakeoffError: The image cannot be read (it changed after evaluate).
    """
    try:
        img = open_rgb(path)
    except FileNotFoundError:
        raise BakeoffError(
            f"test image {path} is missing: it was removed after evaluate; re-run `dvc repro`"
        ) from None
    except Exception as exc:  # any reason: validate accepted it, so it changed since
        raise BakeoffError(
            f"cannot read test image {path} ({type(exc).__name__}: {exc}): re-run `dvc repro`"
        ) from None
    img.thumbnail((THUMB_PX, THUMB_PX))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mistakes(
    predictions: Path, image_root: Path, limit: int = MAX_SHOWN
) -> tuple[list[Mistake], int]:
    """The most confident mistakes of one backbone, with thumbnails.

    Args:
        predictions: plots/<backbone>/predictions.csv (written by evaluate).
        image_root: data/raw, which the paths are relative to.
        limit: At most this many.

    Returns:
        (the shown mistakes, the number of misclassified test images in all).
    """
    rows = read_mistakes(predictions, limit=None)
    shown = []
    for r in rows[:limit]:
        uri = thumbnail(manifest_file(image_root, str(r["path"]), str(predictions)))
        shown.append(
            Mistake(str(r["path"]), str(r["actual"]), str(r["predicted"]), r["confidence"], uri)
        )
    return shown, len(rows)
