"""A pretrained keras-hub ViT, DeiT, SigLIP or CLIP at another image size.

These families learn one position embedding per patch of the preset's own grid, so the
preset's weights fit its own size only. As timm's `resample_abs_pos_embed` and DINOv2 do, the
backbone is rebuilt for the requested size and given the preset's weights unchanged, except the
position table: its prefix rows (class / distillation tokens) are kept, and its patch-grid
rows are resized bicubically (antialiased when shrinking) to the new grid.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    import keras

RESAMPLED = ("vit", "deit", "siglip", "clip")  # learned absolute position embeddings


def _vision_config(config: dict) -> dict:
    """The config holding the image shape: the vision tower's in two-tower models."""
    return config["vision_encoder"]["config"] if "vision_encoder" in config else config


def _grid(config: dict) -> tuple[int, int]:
    """Patches per side (rows, columns) of a channels-last vision config."""
    height, width = config["image_shape"][:2]
    patch = config["patch_size"]
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    return height // ph, width // pw


def own_size(backbone: keras.Model) -> int:
    """The image side `backbone` was built for."""
    return int(_vision_config(backbone.get_config())["image_shape"][0])


def resample_positions(
    table: np.ndarray, prefix: int, old: tuple[int, int], new: tuple[int, int]
) -> np.ndarray:
    """(prefix + old grid, dim) position rows -> (prefix + new grid, dim).

    The prefix rows stay as they are; the grid rows are resized as an image of `dim` channels.
    """
    import keras

    dim = table.shape[-1]
    grid = table[prefix:].reshape(1, old[0], old[1], dim).astype("float32")
    shrink = new[0] < old[0] or new[1] < old[1]
    resized = keras.ops.image.resize(
        grid, new, interpolation="bicubic", antialias=shrink, data_format="channels_last"
    )
    flat = np.asarray(keras.ops.convert_to_numpy(resized)).reshape(-1, dim)
    return np.concatenate([table[:prefix], flat.astype(table.dtype)])


def _base(name: str) -> str:
    """A variable's name without the counter Keras appends to unnamed ones (`variable_3`)."""
    return re.sub(r"_\d+$", "", name)


def _copy_weights(source: keras.Model, target: keras.Model, name: str, hint: str) -> None:
    """Every weight of `source` into `target`; the position table resampled to its grid.

    `name` and `hint` (what to set instead) make the errors' messages.

    Raises:
        BakeoffError: A weight other than the position table (and its position ids) differs
            in shape, or the two models do not hold the same weights.
    """
    pairs = list(zip(source.weights, target.weights, strict=False))
    if len(source.weights) != len(target.weights) or any(
        _base(a.name) != _base(b.name) for a, b in pairs
    ):
        raise BakeoffError(f"{name}: rebuilt at another size, it holds other weights: {hint}")
    tables, ids = [], []
    for old, new in pairs:
        if tuple(old.shape) == tuple(new.shape):
            new.assign(old)
        elif old.path.endswith("position_ids"):
            ids.append((old, new))
        elif "position_embedding" in old.path.split("/"):
            tables.append((old, new))
        else:
            raise BakeoffError(
                f"{name}: weight {old.path} is {tuple(old.shape)} at the preset's size and "
                f"{tuple(new.shape)} at the requested one; bakeoff resamples position "
                f"embeddings only: {hint}"
            )
    if len(tables) != 1 or len(ids) > 1:
        found = ", ".join(old.path for old, _ in tables + ids) or "none"
        raise BakeoffError(
            f"{name}: one position embedding should differ in size, not {found}: {hint}"
        )
    old, new = tables[0]
    table = np.asarray(old.numpy()).reshape(-1, old.shape[-1])
    if ids:  # the rows the model reads, in order; the new model reads all of its rows in order
        old_ids, new_ids = ids[0]
        table = table[np.asarray(old_ids.numpy()).reshape(-1)]
        new_ids.assign(np.arange(int(np.prod(new_ids.shape))).reshape(new_ids.shape))
    grids = [_grid(_vision_config(m.get_config())) for m in (source, target)]
    prefix = len(table) - grids[0][0] * grids[0][1]
    rows = int(np.prod(new.shape)) // new.shape[-1]
    if prefix < 0 or prefix + grids[1][0] * grids[1][1] != rows:
        raise BakeoffError(
            f"{name}: {old.path} has {len(table)} rows, which a {grids[0][0]}x{grids[0][1]} "
            f"patch grid plus class tokens cannot explain: {hint}"
        )
    new.assign(resample_positions(table, prefix, *grids).reshape(new.shape))


def at_size(backbone: keras.Model, image_size: int, name: str) -> keras.Model:
    """`backbone` rebuilt for `image_size` px with its weights, position embeddings resampled.

    Raises:
        BakeoffError: A weight other than the position embedding depends on the image size.
    """
    config = backbone.get_config()
    vision = _vision_config(config)
    vision["image_shape"] = (image_size, image_size, *tuple(vision["image_shape"])[2:])
    resized = type(backbone).from_config(config)
    hint = f"set train.overrides.{name}.image_size to {own_size(backbone)}"
    _copy_weights(backbone, resized, name, hint)
    return resized
