"""Disk and memory limits as clear errors that name the size, never a silent kill.

Caches and copies check the free disk before they write; training, the feature pass and
evaluation turn an allocation failure into an error that says which setting to lower.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from bakeoff.errors import BakeoffError

DISK_MARGIN = 256 * 2**20  # left free for everything else on the disk


def human(n_bytes: float) -> str:
    """A byte count for people: 1.5 GB, 320 MB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{int(n_bytes)} B"


def ensure_free_disk(folder: Path, needed: int, what: str, fix: str) -> None:
    """Fail before writing `needed` bytes into `folder` when the disk cannot hold them.

    Raises:
        BakeoffError: Names what needs how much, what is free, and `fix`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed + DISK_MARGIN > free:
        raise BakeoffError(
            f"{what} needs {human(needed)} in {folder} but only {human(free)} is free "
            f"(keeping {human(DISK_MARGIN)} spare): {fix}"
        )


@contextmanager
def disk_full_guard(folder: Path, size: int, what: str, fix: str, partial: Path):
    """Turn a full disk while writing inside the block into an error naming the sizes.

    The free space is checked before writing, but another writer may fill the disk after
    the check. The block writes to the temporary file `partial` and renames it only when
    complete; on a full disk `partial` is removed, so no cache is left to be read back.

    Raises:
        BakeoffError: Names what was being written, its size, the folder and what is free.
    """
    import errno

    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        Path(partial).unlink(missing_ok=True)  # before measuring: it holds the space
        free = shutil.disk_usage(folder).free
        raise BakeoffError(
            f"the disk filled up while writing {what} ({human(size)}) to {folder}: "
            f"{human(free)} is free now; nothing was kept, a rerun rebuilds it: {fix}"
        ) from None


@contextmanager
def memory_guard(what: str, batch_size: int, image_size: int):
    """Turn an out-of-memory error inside the block into one that names the sizes.

    Args:
        what: The work, e.g. "training MobileNet".
        batch_size: The batch size in use (the main lever on memory).
        image_size: The image side in use.
    """
    import tensorflow as tf

    try:
        yield
    except (MemoryError, tf.errors.ResourceExhaustedError) as exc:
        batch = batch_size * image_size * image_size * 3 * 4
        raise BakeoffError(
            f"out of memory while {what} at batch size {batch_size} and {image_size} px "
            f"(one batch of pixels alone is {human(batch)}; {type(exc).__name__}): lower "
            "train.batch_size or train.image_size"
        ) from None
