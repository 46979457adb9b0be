"""Fill the offline folder (`bakeoff.backbone.offline`): each library's own cache, complete.

A file is reused when the folder already has it, or copied from this machine's own cache;
otherwise the library that will read it downloads it (keras.utils.get_file with the hash Keras
checks, kagglehub, huggingface_hub). Everything lands in a temporary folder inside DIR first
and is renamed into place only when complete, so an interrupted or failed fetch leaves no
half file where a library would take it for a whole one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bakeoff.backbone.offline import Outcome, Want, export_line
from bakeoff.backbone.registry import get_backbone, keras_cache_dir

_PARTIAL = ".partial-"  # prefix of DIR's temporary folders


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A temporary folder inside `folder` (same file system: renames are atomic), removed after."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_PARTIAL, dir=folder))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """The environment variable `name` set to `value` inside the block, as it was after."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _hash_ok(path: Path, expected: str | None) -> bool:
    """Keras's rule: a 64-character hash is sha256, else md5."""
    if expected is None:
        return True
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256" if len(expected) == 64 else "md5")
    return digest.hexdigest() == expected


def _keras(folder: Path, want: Want) -> Outcome:
    weights = get_backbone(want.name).imagenet
    file, url = weights.file_name(want.image_size), weights.url_for(want.image_size)
    target = folder / "keras" / "models" / file
    if target.is_file():
        return Outcome(want.name, "there", str(target))
    own = keras_cache_dir() / "models" / file
    target.parent.mkdir(parents=True, exist_ok=True)
    with _staging(target.parent) as tmp:
        if own.is_file() and _hash_ok(own, weights.file_hash):
            shutil.copyfile(own, tmp / file)
            os.replace(tmp / file, target)
            return Outcome(want.name, "fetched", f"copied from {own.parent}/ to {target}")
        import keras

        try:
            path = keras.utils.get_file(
                file, url, cache_subdir=".", cache_dir=str(tmp), file_hash=weights.file_hash
            )
        except Exception as exc:  # urllib and hash errors: all mean "not fetched"
            reason = _reason(exc).replace(f"URL fetch failure on {url}: ", "")  # said once
            return Outcome(want.name, "failed", f"{url}: {reason}")
        os.replace(path, target)
    return Outcome(want.name, "fetched", f"{url} -> {target}")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _variation(root: Path, handle) -> Path:
    """kagglehub's cache folder of `handle`'s versions (and of their completion markers)."""
    return root / "models" / handle.owner / handle.model / handle.framework / handle.variation


def _kaggle_files(root: Path, handle) -> list[str] | None:
    """The files of `handle` that kagglehub's cache at `root` serves (a whole bundle, or
    each file keras-hub asked for); None without config.json and the weights."""
    base = _variation(root, handle)
    version = base / str(handle.version)
    if not version.is_dir():
        return None
    files = sorted(str(p.relative_to(version)) for p in version.rglob("*") if p.is_file())
    if not (base / f"{handle.version}.complete").is_file():  # only files fetched one by one
        marks = base / ".complete" / str(handle.version)
        files = [f for f in files if (marks / f"{f}.complete").is_file()]
    weights = {"model.weights.h5", "model.weights.json"}  # one file, or sharded
    return files if "config.json" in files and weights & set(files) else None


def _kaggle_install(src: Path, root: Path, handle, files: list[str], copy: bool) -> None:
    """Put `files` of `src` at `handle`'s place in kagglehub's cache `root`, each marked
    complete: keras-hub asks kagglehub for one file at a time, and kagglehub serves a file
    from its cache without the network only when that file has its own marker. The bundle's
    marker says the folder holds the handle's files; here, all the ones keras-hub reads."""
    base = _variation(root, handle)
    dest = base / str(handle.version)
    with _staging(root) as tmp:
        staged = tmp / "preset"
        if copy:
            for f in files:
                (staged / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / f, staged / f)
        else:
            os.replace(src, staged)
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, dest)
    for f in files:
        mark = base / ".complete" / str(handle.version) / f"{f}.complete"
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
    (base / f"{handle.version}.complete").touch()  # last: the whole bundle is there


def _kaggle(folder: Path, want: Want) -> Outcome:
    from kagglehub.config import get_cache_folder
    from kagglehub.handle import parse_model_handle

    source = get_backbone(want.name).hub.handle.removeprefix("kaggle://")
    handle = parse_model_handle(source)
    root = folder / "kagglehub"
    versioned = handle.is_versioned()
    if versioned and (_variation(root, handle) / f"{handle.version}.complete").is_file():
        return Outcome(want.name, "there", f"{source} in {root}")  # the marker written last
    own = Path(get_cache_folder())
    files = _kaggle_files(own, handle) if versioned and own != root else None
    if files:
        src = _variation(own, handle) / str(handle.version)
        _kaggle_install(src, root, handle, files, copy=True)
        return Outcome(want.name, "fetched", f"{source}: copied from {own}")
    import kagglehub

    with _staging(folder) as tmp, _env("KAGGLEHUB_CACHE", str(tmp)):
        try:
            path = Path(kagglehub.model_download(source))
        except Exception as exc:  # kagglehub raises many kinds; all mean "not fetched"
            return Outcome(want.name, "failed", f"{source}: {_reason(exc)}")
        handle = handle if handle.is_versioned() else handle.with_version(int(path.name))
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        _kaggle_install(path, root, handle, files, copy=False)
    return Outcome(want.name, "fetched", f"kaggle://{source} -> {root}")


_HF_FILES = ["*.json", "*.safetensors"]  # what keras-hub's timm loader reads


def _hf(folder: Path, want: Want) -> Outcome:
    from huggingface_hub import constants, snapshot_download, try_to_load_from_cache
    from huggingface_hub.file_download import repo_folder_name

    repo = get_backbone(want.name).hub.source.removeprefix("hf://")
    hub = folder / "huggingface" / "hub"
    name = repo_folder_name(repo_id=repo, repo_type="model")

    def has(cache: Path) -> bool:
        files = ("config.json", "model.safetensors")
        return all(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache), str) for f in files)

    if has(hub):
        return Outcome(want.name, "there", f"hf://{repo} in {hub}")
    own = Path(constants.HF_HUB_CACHE)
    hub.mkdir(parents=True, exist_ok=True)
    with _staging(hub) as tmp:
        if own.resolve() != hub.resolve() and has(own):
            shutil.copytree(own / name, tmp / name, symlinks=True)  # snapshots link to blobs
            detail = f"hf://{repo}: copied from {own}"
        else:
            try:
                snapshot_download(repo, cache_dir=tmp, allow_patterns=_HF_FILES)
            except Exception as exc:  # huggingface_hub raises many kinds
                return Outcome(want.name, "failed", f"hf://{repo}: {_reason(exc)}")
            detail = f"hf://{repo} -> {hub}"
        shutil.rmtree(hub / name, ignore_errors=True)
        os.replace(tmp / name, hub / name)
    return Outcome(want.name, "fetched", detail)


_FETCHERS = {"keras": _keras, "kaggle": _kaggle, "hf": _hf}


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """The libraries' progress bars and download messages, on a terminal only."""
    if progress:
        yield
        return
    import logging

    logger = logging.getLogger("kagglehub")
    level = logger.level
    logger.setLevel(logging.WARNING)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        logger.setLevel(level)


def fetch_one(folder: Path, want: Want, progress: bool = False) -> Outcome:
    """Put what `want` needs into `folder`, or say why it could not."""
    if want.kind == "none":
        return Outcome(want.name, "none", want.note.removeprefix("nothing to fetch: "))
    with _quiet(progress):
        try:
            return _FETCHERS[want.kind](folder, want)
        except OSError as exc:  # a full disk, a folder not writable: this backbone fails
            return Outcome(want.name, "failed", _reason(exc))


def _clear_partials(folder: Path) -> None:
    """Staging folders a killed run left behind (a finished run removes its own)."""
    for parent in (folder, folder / "keras" / "models", folder / "kagglehub",
                   folder / "huggingface" / "hub"):  # fmt: skip
        for stale in parent.glob(f"{_PARTIAL}*") if parent.is_dir() else ():
            shutil.rmtree(stale, ignore_errors=True)


def fetch_all(folder: Path, wants: list[Want], echo, progress: bool = False) -> list[str]:
    """Fetch every backbone's weights into `folder`, one line each through `echo`, then how
    to use the folder offline.

    Returns:
        The backbones that could not be fetched.
    """
    _clear_partials(folder)
    outcomes = []
    for want in wants:
        outcomes.append(fetch_one(folder, want, progress))
        echo(str(outcomes[-1]))
    local = [w for w in wants if w.note.startswith("nothing to fetch: the local preset")]
    echo(f"\non the offline machine, copy {folder} there and before running bakeoff:")
    echo(f"  {export_line(folder)}")
    echo("  (with the folder's path on that machine where it differs)")
    if local:
        names = ", ".join(w.name for w in local)
        echo(f"  and copy the local preset folders of {names} to the paths `sources:` names")
    return [o.name for o in outcomes if o.status == "failed"]
