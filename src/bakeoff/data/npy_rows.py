"""Random access to the rows of an on-disk `.npy` (the decode and feature caches).

Below both the caches that write these files (`pixels`, `train.features`) and the input
pipeline that streams them (`dataset.stream`), so neither imports the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bakeoff.errors import BakeoffError


class NpyRows:
    """Rows of a C-order `.npy` file, read with `pread` (no mapping: RSS stays flat)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            self.offset = fh.tell()
        if fortran:
            raise BakeoffError(f"{self.path} is Fortran-ordered: delete it to rebuild the cache")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Rows `indices` in that order; a run of consecutive rows is one read."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(indices), *self.row_shape), dtype=self.dtype)
        flat = out.reshape(len(indices), -1).view(np.uint8)
        start = 0
        while start < len(indices):
            stop = start + 1
            while stop < len(indices) and indices[stop] == indices[stop - 1] + 1:
                stop += 1
            nbytes = (stop - start) * self.row_bytes
            data = os.pread(self._fd, nbytes, self.offset + int(indices[start]) * self.row_bytes)
            if len(data) != nbytes:
                raise BakeoffError(f"{self.path} is truncated: delete it to rebuild the cache")
            flat[start:stop] = np.frombuffer(data, np.uint8).reshape(stop - start, -1)
            start = stop
        return out
