"""Stage `export`: the champion (or a named backbone) as four TFLite variants, each one
re-evaluated on the test split with the LiteRT interpreter against the Keras model.

Writes exports/<backbone>/<variant>.tflite and reports/export.json, and logs both to the
model's MLflow training run. A variant losing more test accuracy than
`export.max_accuracy_drop` is marked "not recommended", with the figure.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff import tracking
from bakeoff.config.params import ExportParams, TrackingParams
from bakeoff.errors import BakeoffError
from bakeoff.export.choice import pick_variant


@dataclass(frozen=True)
class Exported:
    """What `export` wrote: the report (as in reports/export.json) and its path."""

    report: dict[str, Any]
    path: Path

    def __str__(self) -> str:
        r = self.report
        parts = [
            f"{v['variant']} {v['test_accuracy']:.4f} ({v['accuracy_change']:+.4f}, "
            f"{v['size_mb']:.2f} MB, {v['latency_ms_b1']:.2f} ms)"
            + ("" if v["recommended"] else " NOT RECOMMENDED")
            for v in r["variants"]
        ]
        parts += [f"{f['variant']} FAILED ({f['reason']})" for f in r.get("failed", [])]
        head = f"{r['backbone']} ({r['source']}; Keras {r['keras']['test_accuracy']:.4f})"
        return f"{head}: " + ", ".join(parts) + f" -> {self.path}"


def _source(model_name: str, backbone: str | None, models_dir: Path) -> tuple[Any, dict]:
    """The Keras model to export and where it comes from (champion, or models/<backbone>)."""
    from bakeoff.model.inference import read_train_info
    from bakeoff.model.loading import load_trained

    if backbone is None:
        name = model_name
        champion = tracking.get_version_by_alias(name, "champion")
        if champion is None:
            raise BakeoffError(
                f"no champion for model '{name}' in {tracking.tracking_uri()}: run "
                "`bakeoff register` first, or name a trained backbone (`bakeoff export SimpleCNN`)"
            )
        uri = f"models:/{name}/{champion.version}"
        source = {
            "backbone": champion.tags.get("backbone"),
            "run_id": champion.tags.get("run_id"),
            "model_uri": uri,
            "version": str(champion.version),
            "source": f"champion: {name} version {champion.version}",
            "classes": tracking.model_classes(uri),
        }
        return tracking.load_keras_model(uri), source
    info = read_train_info(Path(models_dir) / backbone)
    source = {
        "backbone": backbone,
        "run_id": info.get("run_id"),
        "model_uri": info.get("model_uri"),
        "version": None,
        "source": f"models/{backbone}/model.keras",
        "classes": info.get("classes"),
    }
    return load_trained(Path(models_dir) / backbone / "model.keras"), source


def _calibration(
    split_dir: Path, image_root: Path, size: int, ep: ExportParams, seed: int
) -> np.ndarray:
    """A seeded sample of training images (uint8), for int8 calibration."""
    from bakeoff.data.dataset import manifest_file, read_manifest
    from bakeoff.data.images import load_array

    rows = read_manifest(split_dir, "train")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(len(rows))[: ep.representative_images])
    files = [manifest_file(image_root, rows[i]["path"], "train.csv") for i in pick]
    return np.stack([load_array(f, size) for f in files])


def _keras_size_mb(model: Any) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.stat().st_size / 1e6


def export(
    params: ExportParams,
    backbone: str | None,
    split_dir: Path,
    image_root: Path,
    models_dir: Path,
    exports_dir: Path,
    out_path: Path,
    *,
    model_name: str,
    seed: int,
    latency_warmup: int,
    latency_repeats: int,
    tracking_params: TrackingParams,
    cache_dir: Path,
    root: Path,
) -> Exported:
    """Convert, re-evaluate and log the TFLite variants of one model.

    Args:
        params: The export section.
        backbone: A trained backbone (models/<backbone>/), or None for the champion.
        split_dir: data/split (test images to evaluate, train images to calibrate).
        image_root: data/raw.
        models_dir: models/ (only read for a named backbone).
        exports_dir: exports/ (receives <backbone>/<variant>.tflite).
        out_path: reports/export.json.
        model_name: The registered model whose champion is exported (`register.model_name`).
        seed: The top-level `seed`: of the int8 calibration sample.
        latency_warmup: Untimed calls before each latency (`evaluate.latency_warmup`).
        latency_repeats: Timed calls of each latency (`evaluate.latency_repeats`).
        tracking_params: The tracking section (the MLflow store and registry).
        cache_dir: The decode cache evaluate filled (the test split).
        root: The project root (MLflow store).

    Returns:
        The report and where it was written.
    """
    from bakeoff.data.pixels import split_pixels
    from bakeoff.export import tflite

    tracking.configure(tracking_params, root)
    model, source = _source(model_name, backbone, models_dir)
    size = int(model.input_shape[1])
    # The decode cache evaluate filled: a read-only memory map, not a copy in memory.
    test_px = split_pixels(split_dir, "test", image_root, size, cache_dir)
    x_test, y_test = test_px.array(), test_px.labels
    _check_classes(source, test_px.classes)
    keras_proba, inference = _keras_reference(model, test_px, x_test)
    keras_accuracy = float((keras_proba.argmax(axis=1) == y_test).mean())
    calibration = _calibration(split_dir, image_root, size, params, seed)
    converted = tflite.convert_all(inference, calibration)
    contents = {k: v for k, v in converted.items() if isinstance(v, bytes)}
    failed = [{"variant": k, "reason": v} for k, v in converted.items() if isinstance(v, str)]
    paths = tflite.write(contents, Path(exports_dir) / source["backbone"])
    variants = [
        _variant(
            name,
            content,
            paths[name],
            (x_test, y_test),
            (keras_proba, keras_accuracy),
            params,
            (latency_warmup, latency_repeats),
        )
        for name, content in contents.items()
    ]
    pick = pick_variant(variants)
    report = {
        **{k: v for k, v in source.items() if k != "classes"},
        "image_size": size, "n_test": len(y_test), "threads": params.threads,
        "max_accuracy_drop": params.max_accuracy_drop, "head_bn_folded": inference is not model,
        "keras": {"test_accuracy": keras_accuracy, "size_mb": _keras_size_mb(model)},
        "variants": variants, "failed": failed, "pick": pick["variant"] if pick else None,
    }  # fmt: skip
    _write(report, Path(out_path))
    _log(report, [*paths.values(), Path(out_path)])
    return Exported(report, Path(out_path))


def _write(report: dict[str, Any], out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")


def _check_classes(source: dict[str, Any], classes: list[str]) -> None:
    if source["classes"] and list(source["classes"]) != classes:
        raise BakeoffError(
            f"{source['source']} was trained on classes {source['classes']}, the split has "
            f"{classes}: re-run the pipeline (`dvc repro`) before exporting"
        )


def _keras_reference(model: Any, test_px: Any, x_test: np.ndarray) -> tuple[np.ndarray, Any]:
    """The Keras model's test probabilities, and the model to convert (its head's
    BatchNorm folded into the Dense layer), checked to give the same probabilities."""
    from bakeoff.export import tflite
    from bakeoff.model.inference import predict_proba

    keras_proba = predict_proba(model, test_px)
    inference = tflite.fold_head_bn(model)
    drift = float(np.abs(predict_proba(inference, x_test[:64]) - keras_proba[:64]).max())
    if drift > 1e-4:  # the fold is exact algebra: a gap means a bug, never export it
        raise RuntimeError(f"folding head_bn changed the probabilities by {drift}")
    return keras_proba, inference


def verdict(accuracy: float, keras_accuracy: float, max_drop: float) -> tuple[bool, str]:
    """(recommended, the note saying why not): a variant may lose at most `max_drop`."""
    drop = keras_accuracy - accuracy
    if drop <= max_drop + 1e-9:  # 1e-9: accuracies are ratios of counts, not exact floats
        return True, ""
    return False, (
        f"not recommended: loses {drop:.4f} test accuracy ({keras_accuracy:.4f} -> "
        f"{accuracy:.4f}), more than export.max_accuracy_drop = {max_drop}"
    )


def _variant(name: str, content: bytes, path: Path, test: tuple, keras: tuple,
             ep: ExportParams, timing: tuple[int, int]) -> dict[str, Any]:  # fmt: skip
    """One variant's row: accuracy and its change against Keras, size, latency, verdict.
    `test` is (images, labels), `keras` (the Keras model's probabilities, its accuracy),
    `timing` (warm-up calls, timed calls) of the latency: `evaluate`'s."""
    from bakeoff.export import tflite

    (x, y), (keras_proba, keras_accuracy) = test, keras
    refused = tflite.xnnpack_error(content, ep.threads)
    xnnpack = refused is None
    proba = tflite.predict(content, x, ep.threads, xnnpack)
    accuracy = float((proba.argmax(axis=1) == y).mean())
    change = accuracy - keras_accuracy
    recommended, note = verdict(accuracy, keras_accuracy, ep.max_accuracy_drop)
    return {
        "variant": name,
        "file": str(path),
        "size_mb": len(content) / 1e6,
        "test_accuracy": accuracy,
        "accuracy_change": change,
        "agreement": float((proba.argmax(axis=1) == keras_proba.argmax(axis=1)).mean()),
        "max_probability_diff": float(np.abs(proba - keras_proba).max()),
        "latency_ms_b1": tflite.latency_ms(content, x[0], ep.threads, *timing, xnnpack),
        "kernels": "XNNPACK" if xnnpack else f"builtin (XNNPACK refused it: {refused})",
        "recommended": recommended,
        "note": note,
        **tflite.describe(content),
    }


def _log(report: dict[str, Any], files: list[Path]) -> None:
    """The files, and the variants as one table, on the model's training run (which stays
    FINISHED): a table, not a metric per variant and figure, so the exported backbone's
    run keeps the same comparison columns and charts as the others."""
    run_id = report.get("run_id")
    if not run_id or not tracking.run_exists(run_id):
        raise BakeoffError(
            f"MLflow run {run_id!r} of {report['source']} is not in {tracking.tracking_uri()}: "
            "the export cannot be logged with its model; re-run `dvc repro`"
        )
    tracking.log_artifacts(files, run_id, artifact_path="export")
    keys = ("test_accuracy", "accuracy_change", "size_mb", "latency_ms_b1")
    rows = [
        {"variant": v["variant"], **tracking.rounded({k: v[k] for k in keys}),
         "recommended": v["recommended"], "kernels": v["kernels"]}
        for v in report["variants"]
    ]  # fmt: skip
    tracking.log_table(rows, "export/tflite_variants.json", run_id)
