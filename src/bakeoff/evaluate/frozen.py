"""Evaluating a frozen base + head from the feature cache: the base runs once per image, ever.

When the model is a frozen pretrained base and a head trained on cached features, the
base's output for every accepted image (train, val and test) is already in (or goes once
into) the feature cache, `bakeoff.backbone.features`. `evaluate` then applies the trained
model's own head to the cached val and test features instead of running the base again
(latency is still measured on the full model), and cross-validates the head on all images
(`bakeoff.evaluate.crossval`). Otherwise (weights none, augmentation, fine-tuning) the features do
not describe the model: the full model predicts, and the reason CV is off is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.backbone.features import model_off_reason
from bakeoff.config.params import TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.evaluate.crossval import SPLITS, cross_validate, write_oof


def cv_off_reason(recipe: TrainParams, folds: int) -> str | None:
    """Why cross-validation does not run for this recipe, or None when it does."""
    if folds == 0:
        return "evaluate.cv_folds is 0"
    return model_off_reason(recipe)


def head_proba(model: Any, x: np.ndarray) -> np.ndarray:
    """The trained model's own head (head_bn -> predictions) on cached base features."""
    bn, dense = model.get_layer("head_bn"), model.get_layer("predictions")
    return np.asarray(dense(bn(np.asarray(x, np.float32), training=False)))


_RECIPE_KEYS = ("weights", "image_size", "augment", "cache_features", "fine_tune_layers")


def _check_recipe(backbone: str, recipe: TrainParams, trained: dict[str, Any]) -> None:
    """The model must come from this recipe, or cached features would not be its base's."""
    used = trained.get("params") or {}
    now = {k: getattr(recipe, k) for k in _RECIPE_KEYS}
    differ = [k for k in _RECIPE_KEYS if k in used and used[k] != now[k]]
    if differ:
        raise BakeoffError(
            f"models/{backbone} was trained with other train params than params.yaml has "
            f"({', '.join(f'{k}: {used[k]!r} vs {now[k]!r}' for k in differ)}): re-run "
            f"`bakeoff train {backbone}`"
        )


def frozen_evaluation(
    model: Any,
    backbone: str,
    recipe: TrainParams,
    cv: tuple[int, int, int],
    trained: dict[str, Any],
    paths: dict[str, Path],
) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """Val and test features from the feature cache, and the cross-validation.

    Args:
        model: The trained model (its head is applied to the cached features).
        backbone: The registry name.
        recipe: This backbone's train params (overrides applied).
        cv: (evaluate.cv_folds, tune.trials, seed) of the cross-validation.
        trained: The model's train.json (the recipe it was trained with).
        paths: split_dir, image_root, cache_dir (the caches) and oof_path.

    Returns:
        (split -> the base's features (apply any seed's head with `head_proba`), or None
        when they do not describe the model; the cross-validation metrics, or
        cv_off_reason when it is off).
    """
    from bakeoff.backbone.features import load_features

    off = model_off_reason(recipe)
    if off is not None:
        write_oof(paths["oof_path"], None, np.empty(0), np.empty(0), [])
        return None, {"cv_off_reason": off}
    _check_recipe(backbone, recipe, trained)
    feats = load_features(backbone, recipe, paths["split_dir"], paths["image_root"],
                          paths["cache_dir"], splits=SPLITS)  # fmt: skip
    how = f"computed ({', '.join(feats.computed)})" if feats.computed else "read from cache"
    print(f"frozen-base features of val and test {how}: the head runs on them")
    cached = {name: feats.x[name] for name in ("val", "test")}
    folds, trials, seed = cv
    off = cv_off_reason(recipe, folds)
    if off is not None:
        write_oof(paths["oof_path"], None, np.empty(0), np.empty(0), [])
        return cached, {"cv_off_reason": off}
    return cached, cross_validate(
        feats, recipe, folds, trials, seed, paths["split_dir"], paths["oof_path"]
    )
