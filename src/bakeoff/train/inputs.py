"""Where a backbone's training data comes from: pixels and features, from the disk caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bakeoff.backbone.features import Features, load_features
from bakeoff.config.params import TrainParams
from bakeoff.data.dataset import read_manifest
from bakeoff.data.images import load_array
from bakeoff.data.pixels import PixelSplit, split_pixels

if TYPE_CHECKING:
    import keras


@dataclass
class TrainInputs:
    """A backbone's train and val data, decoded or run through the base only when needed.

    Attributes:
        backbone: The registry name.
        recipe: This backbone's train params.
        split_dir: data/split.
        image_root: data/raw.
        cache_dir: The decode and feature caches (.bakeoff/cache).
        image_size: The square side the model takes.
        classes: The class names.
    """

    backbone: str
    recipe: TrainParams
    split_dir: Path
    image_root: Path
    cache_dir: Path
    image_size: int
    classes: list[str]
    _pixels: dict[str, PixelSplit] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def pixels(self, name: str) -> PixelSplit:
        """One split's decoded pixels (from the decode cache, built on first use)."""
        if name not in self._pixels:
            self._pixels[name] = split_pixels(
                self.split_dir, name, self.image_root, self.image_size, self.cache_dir
            )
        return self._pixels[name]

    def features(self, extractor: keras.Model) -> Features:
        """Train and val features of the frozen base (read from the feature cache if there)."""
        feats = load_features(
            self.backbone, self.recipe, self.split_dir, self.image_root, self.cache_dir,
            extractor=extractor,
        )  # fmt: skip
        how = f"computed ({', '.join(feats.computed)})" if feats.computed else "read from cache"
        print(f"frozen-base features {how}: {feats.paths['train'].parent}")
        return feats

    def example(self, n: int = 4) -> np.ndarray:
        """The first val images, decoded the one way: the logged model's input example."""
        rows = read_manifest(self.split_dir, "val")[:n]
        return np.stack(
            [load_array(Path(self.image_root) / r["path"], self.image_size) for r in rows]
        )
