"""`bakeoff init FOLDER`: point the project at a folder of images, set up for real use.

It scans the folder with validate's own walk and checks (so what init accepts, validate
accepts), then rewrites params.yaml for pretrained backbones: ImageNet weights, each
backbone's default input size, cached features and a tuned head, no augmentation of a
frozen base. ruamel.yaml's round trip keeps every comment and every other section. Last,
it checks Keras's weights cache and fetches what is missing; what cannot be fetched
(offline) is listed, one line per file, with its URL and the folder to put it in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from bakeoff.backbone.hub_sources import is_source
from bakeoff.backbone.offline import FETCH_COMMAND, export_line
from bakeoff.backbone.registry import cached_weights, get_backbone
from bakeoff.config.params import ValidateParams, parse_params
from bakeoff.errors import BakeoffError

# One per family, spanning speed and accuracy, and the foundation base with the best
# documented linear-probe accuracy per CPU millisecond (docs/backbones.md says why).
DEFAULT_BACKBONES = ["MobileNetV3Small", "MobileNetV2", "EfficientNetV2B0", "ConvNeXtTiny",
                     "ResNet50V2", "dinov2_small"]  # fmt: skip
# A frozen pretrained base; `epochs` etc. act only when the feature cache is off (the head
# on cached features runs under head_epochs / head_patience).
_TRAIN = {"weights": "imagenet", "image_size": None, "augment": False, "cache_features": True,
          "epochs": 30, "patience": 5, "min_epochs": 0}  # fmt: skip
# validate.near_duplicate_distance for photos: finds resized, re-encoded and cropped copies.
_PHOTO_DISTANCE = 8
_NOTES = {
    "augment": "a frozen base: its features are computed once, from unaugmented images",
    "epochs": "only without the feature cache (the head: head_epochs, head_patience)",
    "image_size": "null: each backbone's default input size",
}


@dataclass
class FolderScan:
    """What the quick scan found: accepted images per class, formats, and the gate."""

    folder: Path
    per_class: dict[str, int]
    formats: Counter
    rejected: dict[str, int]
    failures: list[str]

    def __str__(self) -> str:
        total = sum(self.per_class.values())
        smallest = min(self.per_class, key=self.per_class.get) if self.per_class else "-"
        formats = ", ".join(f"{fmt} {n}" for fmt, n in self.formats.most_common())
        lines = [
            f"{self.folder}: {total} images in {len(self.per_class)} classes "
            f"(smallest: {smallest}, {self.per_class.get(smallest, 0)}); formats: {formats or '-'}"
        ]
        lines += [f"  {name}: {n}" for name, n in sorted(self.per_class.items())]
        lines += [f"  rejected {reason}: {n}" for reason, n in self.rejected.items()]
        return "\n".join(lines)


@dataclass
class InitResult:
    """What init set in params.yaml, and the weights files still missing."""

    params_file: Path
    scan: FolderScan
    changes: dict[str, Any]
    missing: list[tuple[str, str, Path]] = field(default_factory=list)  # file, url, folder
    missing_presets: list[str] = field(default_factory=list)  # one fetch hint each

    def __str__(self) -> str:
        lines = [str(self.scan), f"wrote {self.params_file}:"]
        lines += [f"  {key}: {_show(value)}" for key, value in self.changes.items()]
        for name, url, folder in self.missing:
            lines.append(f"missing weights {name}: download {url} into {folder}/")
        lines += [f"missing preset {hint}" for hint in self.missing_presets]
        if self.missing or self.missing_presets:
            n = len(self.missing) + len(self.missing_presets)
            lines.append(
                f"next: put the {n} file(s)/preset(s) above in place (on a connected machine "
                f"`{FETCH_COMMAND}` fetches them all at once: copy DIR here and "
                f"`{export_line('DIR')}`), then `dvc repro`"
            )
        else:
            lines.append("next: `dvc repro`")
        return "\n".join(lines)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def scan_folder(folder: Path, params: ValidateParams) -> FolderScan:
    """Validate's walk and per-file checks over `folder` (only read), without writing.

    Raises:
        BakeoffError: `folder` is not a directory.
    """
    from bakeoff.data.validate import check_files
    from bakeoff.data.validation_report import ValidationResult

    if not folder.is_dir():
        raise BakeoffError(f"{folder} is not a folder: give a folder with one sub-folder per class")
    rows, notes = check_files(folder, params)
    classes = sorted({str(r["label"]) for r in rows if r["label"]})
    result = ValidationResult.build(rows, classes, params, [], notes)
    accepted = [r for r in rows if r["status"] == "accepted"]
    return FolderScan(
        folder=folder,
        per_class={c: n["accepted"] for c, n in result.per_class.items()},
        formats=Counter(str(r["format"]) for r in accepted),
        rejected=result.per_reason,
        failures=result.failures,
    )


def _load_yaml(path: Path) -> tuple[Any, Any]:
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 100  # the file's own line length: the backbones list stays on one line
    # `null`, not an empty value: the file says what image_size: null means next to it.
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    try:
        return yaml, yaml.load(path.read_text())
    except FileNotFoundError:
        raise BakeoffError(f"no params file at {path}: run bakeoff init in the project") from None


def _set(section: Any, key: str, value: Any, note: str | None = None) -> None:
    """`section[key] = value`; with `note`, its end-of-line comment becomes the note.

    ruamel keeps the comment lines that follow a value in that value's end-of-line
    comment (the next section's heading included), so they are carried over: onto the
    new value's last line (the last entry of a block mapping).
    """
    old = section.get(key)
    holder, last = (old, list(old)[-1]) if hasattr(old, "ca") and old else (section, key)
    token = holder.ca.items.get(last, [None] * 4)[2] if hasattr(holder, "ca") else None
    section[key] = value
    if note is None:
        return
    tail = token.value.split("\n", 1)[1] if token is not None and "\n" in token.value else ""
    column = token.column if token is not None and holder is section else 26
    block = hasattr(value, "ca") and value and not value.fa.flow_style()
    target, line = (value, list(value)[-1]) if block else (section, key)
    target.yaml_add_eol_comment(f"# {note}", line, column=column)
    new = target.ca.items[line][2]
    new.value = new.value.rstrip("\n") + "\n" + tail


def _initialised(doc: Any) -> str | None:
    """Why `doc` already belongs to a user's project (None: still the demo's settings)."""
    from bakeoff.data.ingest import is_fashion_mnist_dir

    data = doc.get("data", {})
    source = str(data.get("source", ""))
    if source and source != "fashion-mnist" and not is_fashion_mnist_dir(Path(source)):
        return f"data.source is already {source}"
    weights = str(doc.get("train", {}).get("weights", "none"))
    if weights != "none":
        return f"train.weights is already {weights}"
    return None


def _apply(doc: Any, folder: Path, backbones: list[str]) -> dict[str, Any]:
    """Set the real-use values in `doc` (in place); returns key -> new value."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from bakeoff.backbone.hub_sources import is_source, source_slug

    sources = {  # a folder as an absolute path: stages run from the project root
        source_slug(b): b if b.startswith("hf://") else str(Path(b).expanduser().resolve())
        for b in backbones
        if is_source(b)
    }
    backbones = [source_slug(b) if is_source(b) else b for b in backbones]
    names = CommentedSeq(backbones)
    names.fa.set_flow_style()
    _set(doc, "backbones", names)
    if sources:  # DVC cannot name stages or files after a URL or a path: a slug stands in
        known = CommentedMap(doc.get("sources") or {})
        known.update(sources)
        _set(doc, "sources", known)
    _set(doc.setdefault("data", CommentedMap()), "source", str(folder))
    changes: dict[str, Any] = {"backbones": ", ".join(backbones), "data.source": str(folder)}
    train = doc.setdefault("train", CommentedMap())
    for key, value in _TRAIN.items():
        _set(train, key, value, _NOTES.get(key))
        changes[f"train.{key}"] = "null (each backbone's default)" if value is None else value
    # The demo's overrides tune from-scratch runs at 32 px; they do not carry over. Each
    # backbone keeps an entry of its own (empty): train@<backbone> depends on it alone.
    overrides = CommentedMap()
    for name in backbones:
        overrides[name] = CommentedMap()
        overrides[name].fa.set_flow_style()
    _set(train, "overrides", overrides, "no override: the demo's removed by init")
    changes["train.overrides"] = "an empty entry per backbone (the demo's overrides removed)"
    validate = doc.setdefault("validate", CommentedMap())
    _set(validate, "near_duplicate_distance", _PHOTO_DISTANCE, "copies: resized, JPEG-60, cropped")
    changes["validate.near_duplicate_distance"] = _PHOTO_DISTANCE
    tune = doc.setdefault("tune", CommentedMap())
    if "trials" not in tune:  # a value the user set, 0 included, is theirs
        tune["trials"] = 20
    changes["tune.trials"] = tune["trials"]
    return changes


def _missing_weights(backbones: list[str]) -> list[tuple[str, str, Path]]:
    """Fetch each backbone's ImageNet file into Keras's cache; what could not be fetched."""
    missing = []
    for name in backbones:
        if get_backbone(name).hub is not None:
            continue  # `_missing_presets`
        target, url = cached_weights(name, get_backbone(name).default_size)
        if target.is_file():
            continue
        from bakeoff.backbone.build import imagenet_weights  # imports TF: only when needed

        try:
            imagenet_weights(name, get_backbone(name).default_size)
        except BakeoffError:
            missing.append((target.name, url, target.parent))
    return missing


def _missing_presets(backbones: list[str]) -> list[str]:
    """Fetch each keras-hub preset through keras-hub; a fetch hint for each still missing."""
    from bakeoff.backbone.hub_fetch import fetch_hint, preset_available

    specs = [get_backbone(name).hub for name in backbones]
    return [fetch_hint(s) for s in specs if s is not None and not preset_available(s)]


def init_project(
    folder: Path, params_file: Path, backbones: list[str] | None = None, force: bool = False
) -> InitResult:
    """Scan `folder`, then write params.yaml for pretrained backbones on it.

    Args:
        folder: One sub-folder per class (only read).
        params_file: The project's params.yaml (rewritten in place, comments kept).
        backbones: Registry names (default `DEFAULT_BACKBONES`); each needs ImageNet weights.
        force: Overwrite a project already initialised for a user's folder.

    Returns:
        What was set, the scan, and the weights files that could not be fetched.

    Raises:
        BakeoffError: Already initialised (without force), a backbone without ImageNet
            weights, or a folder validate would reject; nothing is written then.
    """
    folder = Path(folder).expanduser().resolve()
    backbones = list(backbones or DEFAULT_BACKBONES)
    for name in backbones:
        if is_source(name):
            continue
        entry = get_backbone(name)
        if entry.imagenet is None and entry.hub is None:
            raise BakeoffError(f"{name} has no ImageNet weights: leave it out of --backbones")
    yaml, doc = _load_yaml(params_file)
    why = _initialised(doc)
    if why and not force:
        raise BakeoffError(f"{params_file} is already set up ({why}): add --force to overwrite")
    current = parse_params(_plain(yaml, doc))  # the validate rules in force today
    scan = scan_folder(folder, current.validate)
    if scan.failures:
        raise BakeoffError(f"{folder} would fail validation: " + "; ".join(scan.failures))
    changes = _apply(doc, folder, backbones)
    parse_params(_plain(yaml, doc))  # never write a params.yaml that does not load
    written = _plain(yaml, doc)["backbones"]
    missing = _missing_weights(written)
    presets = _missing_presets(written)
    out = StringIO()
    yaml.dump(doc, out)
    params_file.write_text(out.getvalue())
    return InitResult(params_file, scan, changes, missing, presets)


def _plain(yaml: Any, doc: Any) -> dict:
    """`doc` as plain Python (what yaml.safe_load of the dumped text gives)."""
    import yaml as pyyaml

    out = StringIO()
    yaml.dump(doc, out)
    return pyyaml.safe_load(out.getvalue()) or {}
