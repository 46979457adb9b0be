"""Cross-validation of the head on cached features: every accepted image is tested once.

With a frozen pretrained base, a head costs milliseconds on the cached features, so the
held-out test split (15% of a small folder: too few images to separate backbones) is not
the only test there can be. `evaluate.cv_folds` folds over all accepted images (train,
val and test): stratified by class, duplicates (validate's groups) in one fold, seeded by
the top-level `seed` and derived from the manifests alone, so every backbone gets the same folds.
For outer fold i the head is tuned exactly as in training (`tune.trials` Optuna trials,
the train section's head settings and seed) on folds other than i and i+1, selected and
early-stopped on fold i+1, and predicts fold i, which never takes part in selection. Every
image thus gets one out-of-fold prediction per backbone, and backbones are compared on the
same images (`bakeoff.compare`).

Without a feature cache (weights none, augmentation, fine-tuning) a fold would be a full
training: cross-validation is off and `bakeoff.evaluate.frozen.cv_off_reason` says why.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff.config.params import TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.evaluate.predictions import PROBA_PREFIX

if TYPE_CHECKING:
    from bakeoff.backbone.features import Features

SPLITS = ("train", "val", "test")
OOF_COLUMNS = ["path", "label", "fold", "predicted"]


@dataclass(frozen=True)
class Pool:
    """All accepted images in path order: features, labels, duplicate groups, paths."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    paths: np.ndarray


def pool(features: Features, split_dir: Path) -> Pool:
    """Every split's cached features and manifest rows, joined and sorted by path."""
    from bakeoff.data.dataset import read_manifest

    rows = [row for name in SPLITS for row in read_manifest(split_dir, name)]
    order = np.argsort([row["path"] for row in rows], kind="stable")
    x = np.concatenate([np.asarray(features.x[name]) for name in SPLITS])[order]
    y = np.concatenate([features.y[name] for name in SPLITS])[order]
    return Pool(
        x,
        y,
        # validate's near-duplicate group (identical files share it); sha256 without one
        np.array([rows[i].get("group") or rows[i]["sha256"] for i in order]),
        np.array([rows[i]["path"] for i in order]),
    )


def make_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each image: stratified, seeded, duplicate groups kept together.

    Args:
        y: Labels, images in path order (so the folds depend on the manifests only).
        groups: Each image's duplicate group: identical files and near-duplicates share a fold.
        k: Number of folds (at least 3: one to test, one to select on, the rest to train).
        seed: The fold seed (the top-level `seed`).

    Raises:
        BakeoffError: k < 3, or a class with fewer distinct images than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if k < 3:
        raise BakeoffError(f"evaluate.cv_folds is {k}: use 0 (off) or at least 3")
    for label in np.unique(y):
        distinct = len(np.unique(groups[y == label]))
        if distinct < k:
            raise BakeoffError(
                f"class {label} has {distinct} distinct images, fewer than evaluate.cv_folds "
                f"({k}): lower evaluate.cv_folds (0 turns cross-validation off) or add images"
            )
    fold = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        fold[held_out] = i
    return fold


def out_of_fold(
    data: Pool, fold: np.ndarray, n_classes: int, recipe: TrainParams, trials: int
) -> np.ndarray:
    """The class probabilities of every image by a head that never saw its fold.

    Args:
        data: All images' features and labels.
        fold: Each image's fold.
        n_classes: Number of classes.
        recipe: This backbone's train params (head defaults, epoch cap, patience, seed).
        trials: tune.trials, the training's budget (0: the default head).

    Raises:
        BakeoffError: A fold's head diverged (NaN) even with the default settings.
    """
    from bakeoff.head.trainer import HeadParams, predict_head_proba
    from bakeoff.head.tune import tune

    k = int(fold.max()) + 1
    proba = np.empty((len(fold), n_classes), dtype=np.float64)
    for i in range(k):
        start = time.perf_counter()
        test, val = fold == i, fold == (i + 1) % k
        train = ~(test | val)
        result = tune(
            data.x[train], data.y[train], data.x[val], data.y[val], n_classes,
            default=HeadParams(recipe.learning_rate, recipe.batch_size), trials=trials,
            seed=recipe.seed, max_epochs=recipe.head_epochs, patience=recipe.head_patience,
        )  # fmt: skip
        if not np.isfinite(result.best_fit.val_loss):
            raise BakeoffError(
                f"cross-validation fold {i + 1}: the head diverged (NaN loss): lower "
                f"train.learning_rate (now {recipe.learning_rate})"
            )
        proba[test] = predict_head_proba(result.best_fit.weights, data.x[test])
        print(
            f"cv fold {i + 1}/{k}: accuracy "
            f"{(proba[test].argmax(axis=1) == data.y[test]).mean():.4f} on "
            f"{int(test.sum())} images ({time.perf_counter() - start:.1f} s)"
        )
    return proba


def cross_validate(
    features: Features,
    recipe: TrainParams,
    folds: int,
    trials: int,
    seed: int,
    split_dir: Path,
    oof_path: Path,
) -> dict[str, Any]:
    """k-fold cross-validation of the head; writes the out-of-fold predictions.

    The interval of cv_accuracy is the report's (at `report.confidence`, from oof.csv), so
    that the confidence is not an input of this stage.

    Args:
        features: The cached features of train, val and test.
        recipe: This backbone's train params.
        folds: evaluate.cv_folds.
        trials: tune.trials, each fold's tuning budget.
        seed: The top-level `seed`: of the folds.
        split_dir: data/split (the manifests).
        oof_path: Receives path,label,fold,predicted,p_<class>...: one row per image.

    Returns:
        The metrics: cv_accuracy, cv_macro_f1, cv_n, cv_folds, ...
    """
    from sklearn.metrics import f1_score

    from bakeoff.compare import fold_accuracies

    start = time.perf_counter()
    data = pool(features, split_dir)
    fold = make_folds(data.y, data.groups, folds, seed)
    classes = features.classes
    proba = out_of_fold(data, fold, len(classes), recipe, trials)
    pred = proba.argmax(axis=1)
    write_oof(oof_path, data, fold, proba, classes)
    correct = pred == data.y
    labels = list(range(len(classes)))
    return {
        "cv_accuracy": float(correct.mean()),
        "cv_macro_f1": float(f1_score(data.y, pred, labels=labels, average="macro",
                                      zero_division=0)),
        "cv_n": len(pred),
        "cv_folds": int(fold.max()) + 1,
        "cv_fold_accuracy": fold_accuracies(correct, fold).tolist(),
        "cv_trials": trials,
        "cv_seconds": round(time.perf_counter() - start, 2),
        "cv_off_reason": None,
    }  # fmt: skip


def write_oof(
    path: Path, data: Pool | None, fold: np.ndarray, proba: np.ndarray, classes: list[str]
) -> None:
    """plots/<backbone>/oof.csv: one row per image (only the header when CV is off), with
    each class's out-of-fold probability (what confident learning ranks label errors by)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(OOF_COLUMNS + [PROBA_PREFIX + c for c in classes])
        if data is not None:
            rows = zip(data.paths, data.y, fold, proba, strict=True)
            writer.writerows(
                [p, classes[y], int(f), classes[int(np.argmax(q))], *(f"{v:.6g}" for v in q)]
                for p, y, f, q in rows
            )
