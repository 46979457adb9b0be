"""The train stage: one backbone, the recipe, once per seed of `train.seeds`.

Each seed is one resumable, tracked training run (`bakeoff.train.run`). With one seed (the
demo) the run writes models/<backbone>/ directly; with several, each seed writes
models/<backbone>/seeds/<seed>/ and the seed with the best validation accuracy becomes the
backbone's model: one DVC stage `train@<backbone>` per backbone, looping over the seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from bakeoff.backbone.build import resolve_weights
from bakeoff.backbone.hub_sources import register_sources
from bakeoff.backbone.registry import input_size
from bakeoff.config.params import TrackingParams, TrainParams, TuneParams
from bakeoff.data.dataset import read_classes
from bakeoff.lineage import data_version
from bakeoff.train.inputs import TrainInputs
from bakeoff.train.outputs import RunRecord, TrainResult
from bakeoff.train.resume import fingerprint, start_point
from bakeoff.train.run import SeedInputs, train_seed

__all__ = ["TrainResult", "split_data_version", "train"]


def split_data_version(split_dir: Path) -> str:
    """Data version of the accepted manifest next to the split, else of the split manifests."""
    accepted = Path(split_dir).parent / "validated" / "accepted.csv"
    if accepted.is_file():
        return data_version(accepted)
    digest = hashlib.sha256()
    for name in ("classes.json", "train.csv", "val.csv", "test.csv"):
        path = Path(split_dir) / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train(
    backbone: str,
    params: TrainParams,
    split_dir: Path,
    image_root: Path,
    out_dir: Path,
    state_dir: Path,
    plots_dir: Path,
    *,
    tune: TuneParams,
    tracking_params: TrackingParams,
    cache_dir: Path,
    root: Path,
    sources: dict[str, str] | None = None,
) -> TrainResult:
    """Train one backbone with the recipe, once per seed of `train.seeds`; write models/<backbone>/.

    With several seeds each one is its own MLflow run with its outputs in
    `out_dir/seeds/<seed>/`; the seed with the best validation accuracy (the first on ties)
    becomes the backbone's model.keras, and train.json lists every seed.

    Args:
        backbone: A registry name.
        params: The train section (with `overrides`: this backbone's are applied here).
        split_dir: data/split (train/val manifests, classes.json).
        image_root: The folder manifest paths are relative to (data/raw).
        out_dir: models/<backbone>/ (model.keras, train.json).
        state_dir: Resumable state (.bakeoff/train/<backbone>/; per seed when several).
        plots_dir: plots/<backbone>/.
        cache_dir: The decode and feature caches, shared by backbones, seeds and reruns.
        tune: The tune section (head-tuning trials).
        tracking_params: The tracking section (the MLflow store and experiment).
        root: The project root (MLflow store, git commit).
        sources: params.yaml's `sources:` (a keras-hub backbone's name -> its source); a
            stage parameter so that DVC re-trains a name whose source changed.

    Returns:
        The result of the selected seed's run.

    Raises:
        BakeoffError: Bad params, missing weights or data, or training diverged (NaN).
    """
    if sources:
        register_sources(sources)
    recipe = params.for_backbone(backbone)
    size = input_size(backbone, recipe.image_size)
    weights_file = resolve_weights(backbone, recipe.weights, size)  # fail before loading data
    out_dir, state_dir = Path(out_dir), Path(state_dir)
    plots_dir = Path(plots_dir)
    _remove_stale(out_dir)
    where = (split_dir, image_root, Path(cache_dir), Path(root))
    inputs = _seed_inputs(backbone, recipe, size, weights_file, *where)
    mode = training_mode(recipe, size, tune.trials)
    print(f"{backbone}: {mode}; {_start(inputs, recipe, tune.trials, state_dir)}")
    if len(recipe.seeds) == 1:
        run = RunRecord(backbone, "", out_dir, plots_dir, state_dir, {})
        result = train_seed(inputs, recipe, tune.trials, tracking_params, run)
        _add_seeds(out_dir, [result])
        return result
    results = []
    for seed in recipe.seeds:  # each seed its own run, in out_dir/seeds/<seed>/
        where = out_dir / "seeds" / str(seed)
        run = RunRecord(
            backbone, "", where, where, state_dir / f"seed-{seed}", {}, f"{backbone}-seed{seed}"
        )
        seeded = dataclasses.replace(recipe, seeds=[seed])
        results.append(train_seed(inputs, seeded, tune.trials, tracking_params, run))
    return _keep_best(results, out_dir, plots_dir)


def _seed_inputs(
    backbone: str,
    recipe: TrainParams,
    size: int,
    weights_file: Path | None,
    split_dir: Path,
    image_root: Path,
    cache_dir: Path,
    root: Path,
) -> SeedInputs:
    """What every seed trains on, streamed from the disk caches: nothing here grows with
    the number of images."""
    classes = read_classes(split_dir)
    data = TrainInputs(backbone, recipe, split_dir, image_root, cache_dir, size, classes)
    version = split_data_version(split_dir)
    return SeedInputs(backbone, size, weights_file, version, data, classes, root)


def _start(inputs: SeedInputs, recipe: TrainParams, trials: int, state_dir: Path) -> str:
    """Whether each seed starts fresh or resumes a crashed run, and from which epoch."""
    if len(recipe.seeds) == 1:
        key = fingerprint(inputs.backbone, recipe, trials, inputs.version)
        return start_point(state_dir, key, recipe)
    starts = []
    for seed in recipe.seeds:
        seeded = dataclasses.replace(recipe, seeds=[seed])
        key = fingerprint(inputs.backbone, seeded, trials, inputs.version)
        starts.append(f"seed {seed} {start_point(state_dir / f'seed-{seed}', key, seeded)}")
    return ", ".join(starts)


def _remove_stale(out_dir: Path) -> None:
    """Stale outputs of an earlier run must never outlive a failed one."""
    for stale in ("model.keras", "train.json"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "seeds", ignore_errors=True)


def _keep_best(results: list[TrainResult], out_dir: Path, plots_dir: Path) -> TrainResult:
    """The seed with the best validation accuracy (the first on ties) becomes the backbone's
    model: what evaluate, register and predict read."""
    best = max(results, key=lambda r: r.val_accuracy)
    chosen = best.model_path.parent
    shutil.copy2(chosen / "model.keras", out_dir / "model.keras")
    shutil.copy2(chosen / "train.json", out_dir / "train.json")
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "curves.png"):
        shutil.copy2(chosen / name, plots_dir / name)
    _add_seeds(out_dir, results)
    return dataclasses.replace(best, model_path=out_dir / "model.keras")


def training_mode(recipe: TrainParams, size: int, trials: int) -> str:
    """One line saying how this backbone trains: what the comparison measures."""
    from bakeoff.backbone.features import cached_head
    from bakeoff.train.frozen_phase import tuning_off_reason

    if recipe.weights == "none":
        augmented = ", augmented" if recipe.augment else ""
        return f"from scratch at {size} px: the whole network trains{augmented}"
    base = (
        "ImageNet" if recipe.weights == "imagenet" else f"pretrained ({Path(recipe.weights).name})"
    )
    parts = [f"frozen {base} base at {size} px"]
    if cached_head(recipe):
        off = tuning_off_reason(recipe, trials)
        parts += ["cached features", f"no tuning ({off})" if off else f"{trials} tuning trials"]
    else:
        why = "augmented" if recipe.augment else "train.cache_features: false"
        parts.append(f"no feature cache ({why}): the base runs every epoch, no tuning")
    if recipe.fine_tune_layers > 0:
        parts.append(
            f"then its top {recipe.fine_tune_layers} layers fine-tune for "
            f"{recipe.fine_tune_epochs} epochs"
        )
    return ", ".join(parts)


def _add_seeds(out_dir: Path, results: list[TrainResult]) -> None:
    """train.json (the selected seed's) gains the list of every seed's run."""
    path = out_dir / "train.json"
    summary = json.loads(path.read_text())
    seeds = []
    for r in results:
        info = json.loads((r.model_path.parent / "train.json").read_text())
        keys = ("seed", "run_id", "model_uri", "val_accuracy", "val_loss", "best_epoch")
        entry = {k: info[k] for k in keys}
        entry["path"] = str(r.model_path.parent.relative_to(out_dir)) if len(results) > 1 else "."
        entry["tuning"] = {k: info["tuning"].get(k) for k in _TUNING_KEYS}
        seeds.append(entry)
    summary["seeds"] = seeds
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")


_TUNING_KEYS = ("status", "default_val_accuracy", "tuned_val_accuracy")
