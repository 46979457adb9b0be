"""Stage `validate`: decode every image once, write the manifest, gate it with GE.

Every problem is found in one pass (never only the first). Bad files are excluded and
listed with a reason code; the stage fails only when their share is too high or the
dataset as a whole is unusable (too few classes, a class too small, too imbalanced).
raw_dir is only read.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import signal
import sys
import warnings
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from bakeoff.config.params import ValidateParams
from bakeoff.data.exclude import missing_paths, read_exclude
from bakeoff.data.folders import EMPTY_FOLDER, read_ingest_report, walk_class_folders
from bakeoff.data.images import open_rgb_described
from bakeoff.data.near_duplicates import group_warnings, mark_groups, perceptual_hash
from bakeoff.data.validation_report import ValidationResult
from bakeoff.errors import BakeoffError

log = logging.getLogger(__name__)
_CHUNK = 64


class ValidationFailed(BakeoffError):
    """The data did not pass the gate; `result` holds everything that was found."""

    def __init__(self, message: str, result: ValidationResult):
        super().__init__(message)
        self.result = result


def _row(path: str, label: str, reason: str = "", **info: object) -> dict[str, object]:
    row: dict[str, object] = {"path": path, "label": label, "format": "", "mode": "", "width": 0}
    row.update(height=0, bytes=0, sha256="", status="", reason=reason, conversion="")
    row.update(phash="", group="")
    row.update(info)
    return row


def inspect_file(path: str, min_size: int) -> dict[str, object]:
    """Header and full decode of one file (runs in a worker process).

    Args:
        path: The file.
        min_size: The smallest accepted width and height.

    Returns:
        The manifest fields it can fill: format, mode, width, height, bytes, sha256, reason
        (empty when fine), conversion and phash (the perceptual hash).
    """
    data = Path(path).read_bytes()
    out: dict[str, object] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if not data:
        return {**out, "reason": "zero_bytes"}
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that: both are bombs here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                out.update(format=img.format or "", mode=img.mode, width=img.width)
                out.update(height=img.height)
            if min(int(out["width"]), int(out["height"])) < min_size:
                return {**out, "reason": "too_small"}
            rgb, conversion = open_rgb_described(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return {**out, "reason": "decompression_bomb"}
        except Image.UnidentifiedImageError:
            return {**out, "reason": "not_an_image"}
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            text = str(exc).lower()
            broken = any(w in text for w in ("truncated", "broken", "premature", "end of file"))
            return {**out, "reason": "truncated" if broken else "undecodable"}
    return {**out, "conversion": conversion, "phash": perceptual_hash(rgb)}


def _default_sigterm() -> None:
    """Pool worker start-up: the default SIGTERM action, not the parent's handler.

    Forked workers inherit the parent's handlers; inside a Prefect task that is Prefect's,
    which turns the SIGTERM a pool sends its workers into a `TerminationSignal` traceback.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _inspect_star(args: tuple[str, int]) -> dict[str, object]:
    return inspect_file(*args)


def _scan(raw_dir: Path) -> tuple[list[dict], list[tuple[dict, str]], list[str]]:
    """Walk raw_dir: (rows already decided, (row, file) pairs to inspect, warnings)."""
    decided: list[dict] = []
    todo: list[tuple[dict, str]] = []
    notes: list[str] = []
    for entry in walk_class_folders(raw_dir):
        if entry.problem == EMPTY_FOLDER:
            notes.append(f"empty class folder ignored: {entry.rel}")
        elif entry.problem:
            decided.append(_row(entry.rel, entry.label, entry.problem))
        else:
            reason = "" if entry.label else "outside_class_folder"
            todo.append((_row(entry.rel, entry.label, reason), str(entry.path)))
    for entry in read_ingest_report(raw_dir):
        if entry["reason"] == EMPTY_FOLDER:
            notes.append(f"empty class folder ignored: {entry['path']}")
        else:
            parts = entry["path"].split("/")
            decided.append(_row(entry["path"], parts[0] if len(parts) > 1 else "", entry["reason"]))
    return decided, todo, notes


def _inspect_all(todo: list[tuple[dict, str]], params: ValidateParams) -> list[dict]:
    from tqdm import tqdm

    files = [path for _, path in todo]
    args = [(path, params.min_size) for path in files]
    workers = params.workers or os.cpu_count() or 1
    bar = dict(total=len(files), desc="validate", unit="img", file=sys.stderr, mininterval=0.5)
    if workers == 1 or len(files) <= _CHUNK:
        results = [inspect_file(*a) for a in tqdm(args, **bar)]
    else:
        # Streaming imap in chunks: memory stays flat however many images there are.
        with get_context("fork").Pool(workers, initializer=_default_sigterm) as pool:
            results = list(tqdm(pool.imap(_inspect_star, args, chunksize=_CHUNK), **bar))
            # Let the workers exit on their own: leaving the block would SIGTERM them.
            pool.close()
            pool.join()
    rows = []
    for (row, _), found in zip(todo, results, strict=True):
        reason = row["reason"] or found.pop("reason", "")
        found.pop("reason", None)
        rows.append({**row, **found, "reason": reason})
    return rows


def _mark_label_conflicts(rows: list[dict]) -> None:
    labels: dict[str, set[str]] = {}
    for row in rows:
        if not row["reason"]:
            labels.setdefault(str(row["sha256"]), set()).add(str(row["label"]))
    for row in rows:
        if not row["reason"] and len(labels[str(row["sha256"])]) > 1:
            row["reason"] = "label_conflict"


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    # A new file, never the old one rewritten: with DVC's hardlink cache the old one is
    # a link into .dvc/cache, and writing through it would corrupt the cached version.
    path.unlink(missing_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def check_files(
    folder: Path, params: ValidateParams, exclude: frozenset[str] = frozenset()
) -> tuple[list[dict], list[str]]:
    """Every file under `folder` (`<class>/<file>`, only read) checked and marked accepted or
    rejected, in path order, with the walk's notes (skipped files): validate's checks, also
    what `bakeoff init` scans a user's folder with. Paths in `exclude` are neither read nor
    compared with the others: their rows come back with status and reason `excluded`."""
    decided, todo, notes = _scan(folder)
    dropped = [r for r in decided if r["path"] in exclude] + [
        r for r, _ in todo if r["path"] in exclude
    ]
    decided = [r for r in decided if r["path"] not in exclude]
    todo = [(r, f) for r, f in todo if r["path"] not in exclude]
    rows = decided + _inspect_all(todo, params)
    _mark_label_conflicts(rows)
    for row in rows:
        row["status"] = "rejected" if row["reason"] else "accepted"
    rows += [{**r, "status": "excluded", "reason": "excluded"} for r in dropped]
    rows.sort(key=lambda r: str(r["path"]))
    return rows, notes


def validate(
    params: ValidateParams,
    raw_dir: Path,
    out_dir: Path,
    reports_dir: Path,
    root: Path,
) -> ValidationResult:
    """Check every file under raw_dir; write manifest, accepted list, report and Data Docs.

    Args:
        params: The `validate` section.
        raw_dir: Ingest's output, `<class>/<file>` (only read).
        out_dir: Gets manifest.csv and accepted.csv.
        reports_dir: Gets validation.json and data_docs/.
        root: The project root, which `validate.exclude` is relative to.

    Returns:
        The result (counts, problems, GE outcomes, data version).

    Raises:
        ValidationFailed: After writing the reports, when too many files are invalid, the
            dataset is unusable, or a GE suite fails; `exc.result` holds the result.
    """
    import pandas as pd

    from bakeoff.data.expectations import COLUMNS, run_suites
    from bakeoff.lineage import data_version

    if not raw_dir.is_dir():
        raise BakeoffError(f"no images at {raw_dir}: run `bakeoff ingest` first")
    names = read_exclude(Path(root) / params.exclude)
    rows, notes = check_files(raw_dir, params, frozenset(names))
    excluded = [str(r["path"]) for r in rows if r["status"] == "excluded"]
    rows = [r for r in rows if r["status"] != "excluded"]
    notes += missing_paths(names, excluded, params.exclude)
    near = mark_groups(rows, params.near_duplicate_distance)
    notes += group_warnings(near)
    for note in notes:
        log.warning(note)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(out_dir / "manifest.csv", rows, COLUMNS)
    accepted = [r for r in rows if r["status"] == "accepted"]
    _write_csv(out_dir / "accepted.csv", accepted, COLUMNS)

    classes = sorted({str(r["label"]) for r in rows if r["label"]})
    manifest = pd.read_csv(out_dir / "manifest.csv", keep_default_na=False, dtype={"label": str})
    docs = reports_dir / "data_docs"
    if docs.exists():
        import shutil

        shutil.rmtree(docs)
    version = data_version(out_dir / "accepted.csv")
    outcomes = run_suites(manifest, params, classes, docs, run_name=version)
    result = ValidationResult.build(rows, classes, params, outcomes, notes)
    result = dataclasses.replace(
        result, data_version=version, near_duplicates=near, excluded=excluded
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "validation.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if result.failures:
        raise ValidationFailed("data validation failed: " + "; ".join(result.failures), result)
    return result
