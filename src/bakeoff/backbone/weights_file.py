"""A user's weights file must fill every layer of the base: what does not match is named.

Keras loads a legacy HDF5 file by layer name and skips every name it does not find, and it
ignores entries of a `.weights.h5` that no layer asks for. Either way a base could stay
partly random without a word. `check_weights_file` compares the file's layers (name and
variable shapes) with the base's before anything is loaded, and raises a BakeoffError that
names the missing, the unexpected and the mismatched layers.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    import h5py
    import keras

Shapes = dict[str, list[tuple[int, ...]]]  # layer path -> its variables' shapes, in order


def is_legacy_h5(path: Path) -> bool:
    """A Keras 2 style HDF5 weights file (loaded by layer name), not a Keras 3 `.weights.h5`."""
    return path.suffix in (".h5", ".hdf5") and not path.name.endswith(".weights.h5")


def _keras3_layers(h5: h5py.File) -> Shapes:
    """Layer path -> variable shapes of a Keras 3 weights file (`<path>/vars/<i>` datasets)."""
    import h5py

    found: Shapes = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Group) and name.endswith("vars") and len(obj):
            layer = name[: -len("vars")].rstrip("/") or "(model)"
            found[layer] = [tuple(obj[k].shape) for k in sorted(obj, key=int)]

    h5.visititems(visit)
    return found


def _legacy_layers(h5: h5py.File) -> Shapes:
    """Layer name -> weight shapes of a legacy HDF5 file (a whole model's, or weights only)."""
    group = h5.get("model_weights", h5)
    found: Shapes = {}
    for raw in group.attrs.get("layer_names", []):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        names = group[name].attrs.get("weight_names", [])
        if len(names):
            found[name] = [tuple(group[name][w].shape) for w in names]
    return found


def _read(path: Path) -> Shapes:
    import h5py

    if path.suffix == ".keras":  # a whole saved model: its weights are a member of the zip
        with zipfile.ZipFile(path) as archive:
            data = io.BytesIO(archive.read("model.weights.h5"))
        with h5py.File(data, "r") as h5:
            return _keras3_layers(h5)
    with h5py.File(path, "r") as h5:
        return _legacy_layers(h5) if is_legacy_h5(path) else _keras3_layers(h5)


def _expected(base: keras.Model, legacy: bool) -> Shapes:
    if legacy:
        return {
            layer.name: [tuple(w.shape) for w in layer.weights]
            for layer in base.layers
            if layer.weights
        }
    # What Keras itself writes for this base: the same paths it will look up when loading.
    with tempfile.TemporaryDirectory() as tmp:
        own = Path(tmp) / "base.weights.h5"
        base.save_weights(own)
        return _read(own)


def _layer_names(base: keras.Model) -> dict[str, str]:
    """Keras file path -> the base's layer name. A `.weights.h5` keys a layer by its class
    and rank (`layers/conv2d_1`), as Keras's saving_lib numbers a model's layers."""
    import re

    names, seen = {}, {}
    for layer in base.layers:
        kind = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)  # Keras's snake case
        kind = re.sub("([a-z])([A-Z])", r"\1_\2", kind).lower()
        seen[kind] = seen.get(kind, -1) + 1
        names[f"layers/{kind}" + (f"_{seen[kind]}" if seen[kind] else "")] = layer.name
    return names


def _listed(names: list[str], limit: int = 6, sep: str = ", ") -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return sep.join(names[:limit]) + more


def check_weights_file(base: keras.Model, path: Path, name: str) -> None:
    """Raise unless `path` holds a variable of the right shape for every layer of `base`.

    A legacy HDF5 file may hold more layers than the base (a whole classifier's: its top is
    not used); a `.weights.h5` or `.keras` file must hold exactly the base's layers.

    Raises:
        BakeoffError: Names the missing, unexpected and mismatched layers, and what to do.
    """
    legacy = is_legacy_h5(path)
    try:
        found = _read(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BakeoffError(
            f"weights file {path} cannot be read as Keras weights ({type(exc).__name__}: "
            f"{exc}): give a .weights.h5 saved from {name}'s base, or set train.weights"
        ) from None
    expected = _expected(base, legacy)
    names = {} if legacy else _layer_names(base)

    def label(key: str) -> str:
        return f"{names[key]} ({key})" if key in names else key

    missing = [label(k) for k in expected if k not in found]
    unexpected = [] if legacy else [k for k in found if k not in expected]
    mismatched = [
        f"{label(k)}: file {found[k]}, base {expected[k]}"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the base's {len(expected)} layers are not in the "
                        f"file: {_listed(missing)}")  # fmt: skip
    if mismatched:
        problems.append(f"{len(mismatched)} have other shapes: {_listed(mismatched, 3, ' | ')}")
    if unexpected:
        problems.append(f"{len(unexpected)} in the file are not in the base: "
                        f"{_listed(unexpected)}")  # fmt: skip
    raise BakeoffError(
        f"weights file {path} does not fit {name} at {base.input_shape[1]} px: "
        + "; ".join(problems)
        + f". Use weights saved from bakeoff's {name} base at this image size "
        "(`base.save_weights('x.weights.h5')`), or set train.weights to imagenet or none"
    )
