"""Near-duplicate images: the same picture resized, re-encoded or cropped and saved twice.

A byte hash (sha256) only finds identical files. Each accepted image also gets a 64-bit
perceptual hash (ImageHash's pHash: the signs of the lowest DCT frequencies, which survive
resizing by 0.5-2x, JPEG quality 60 and a crop of a few pixels); images whose hashes differ
in at most `validate.near_duplicate_distance` bits are joined into one group (the connected
components of the close pairs). The pair search is multi-index hashing: cut into d+1
bands, two hashes within distance d agree exactly on at least one band, so only images
sharing a band value are compared (no all-pairs loop: 100,000 images take seconds).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

_BITS = 64
_BLOCK = 256  # rows of a bucket compared at once: memory stays bounded in a huge bucket
_PENDING = 2_000_000  # pairs held before they are folded into the spanning forest
_FLAT_STD = 2.0  # grey levels: below it an image is one colour (JPEG noise included)
_LARGE_GROUP = 20  # images: more copies of one picture than a folder usually holds


def perceptual_hash(img: Image.Image) -> str:
    """The image's 64-bit pHash as 16 hex digits; "" for a flat image (one colour), whose
    hash says nothing (every flat image has the same one, whatever its colour)."""
    import imagehash
    from PIL import ImageStat

    if ImageStat.Stat(img.convert("L")).stddev[0] < _FLAT_STD:
        return ""
    return str(imagehash.phash(img))


def _bands(distance: int) -> list[tuple[int, int]]:
    """(shift, width) of d+1 bands that cover the 64 bits."""
    n = min(distance + 1, _BITS)
    edges = np.linspace(0, _BITS, n + 1).astype(int)
    return [(int(lo), int(hi - lo)) for lo, hi in itertools.pairwise(edges)]


def _pair_blocks(hashes: np.ndarray, distance: int) -> Iterator[np.ndarray]:
    """Blocks of pairs (i < j) at most `distance` bits apart (a pair may recur in another
    band), each block at most _BLOCK rows of one bucket."""
    for shift, width in _bands(distance):
        key = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
        ends = np.r_[starts[1:], len(order)]
        for lo, hi in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
            members = np.sort(order[lo:hi])
            for row in range(0, len(members), _BLOCK):
                left = members[row : row + _BLOCK]
                bits = np.bitwise_count(hashes[left][:, None] ^ hashes[members][None, :])
                i, j = np.nonzero((bits <= distance) & (left[:, None] < members[None, :]))
                if len(i):
                    yield np.stack([left[i], members[j]], axis=1).astype(np.int64)


def close_pairs(hashes: np.ndarray, distance: int) -> np.ndarray:
    """Every pair (i < j) of hashes at most `distance` bits apart.

    Args:
        hashes: The hashes as uint64.
        distance: The largest Hamming distance of a pair.

    Returns:
        An (n_pairs, 2) int64 array, each pair once.
    """
    found = list(_pair_blocks(np.asarray(hashes, dtype=np.uint64), distance))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    """Each node's component, named by its smallest node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n)
    np.minimum.at(smallest, labels, np.arange(n))
    return smallest[labels]


def group_ids(n: int, blocks: Iterable[np.ndarray]) -> np.ndarray:
    """Union-find over the pairs: each item's group, the smallest index in it.

    The pairs are folded into a spanning forest (each node to its group's smallest) as
    they come: thousands of mutually close hashes keep memory at O(n), not O(pairs).
    """
    forest = np.empty((0, 2), dtype=np.int64)
    pending: list[np.ndarray] = []
    size = 0
    for block in blocks:
        pending.append(block)
        size += len(block)
        if size > _PENDING:
            ids = _components(n, np.concatenate([forest, *pending]))
            forest = np.stack([np.arange(n), ids], axis=1)[ids != np.arange(n)]
            pending, size = [], 0
    return _components(n, np.concatenate([forest, *pending]))


def near_duplicate_groups(hex_hashes: Sequence[str], distance: int | None) -> list[list[int]]:
    """Groups of two or more images whose hashes chain within `distance` bits.

    Args:
        hex_hashes: Each image's pHash (hex).
        distance: The largest Hamming distance of two copies; None: no grouping.

    Returns:
        The groups as lists of indices, each sorted, ordered by their first index.
    """
    if distance is None or len(hex_hashes) < 2:
        return []
    hashes = np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)
    # Identical hashes are one node: a folder of near-blank scans is not n^2 pairs.
    unique, node = np.unique(hashes, return_inverse=True)
    ids = group_ids(len(unique), _pair_blocks(unique, distance))[node]
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(ids):
        groups.setdefault(int(g), []).append(i)
    return sorted((m for m in groups.values() if len(m) > 1), key=lambda m: m[0])


def mark_groups(rows: list[dict], distance: int | None) -> dict[str, object]:
    """Set each accepted row's `group` and summarise the near-duplicate groups.

    An accepted row's group is the sha256 of its group's first file (its own sha256 when it
    has no near-duplicate), so split and cross-validation keep a group together as they
    keep identical files together.

    Args:
        rows: Manifest rows in path order; accepted ones have an empty `reason`.
        distance: validate.near_duplicate_distance (None: only identical files group).

    Returns:
        For validation.json: the distance, counts, and every group's paths and labels
        (`label_conflict` when they span classes).
    """
    for row in rows:
        if not row["reason"]:
            row["group"] = row["sha256"]
    accepted = [r for r in rows if not r["reason"] and r["phash"]]
    found = near_duplicate_groups([str(r["phash"]) for r in accepted], distance)
    listed = []
    for members in found:
        group = [accepted[i] for i in members]
        for row in group:
            row["group"] = group[0]["sha256"]
        labels = sorted({str(r["label"]) for r in group})
        listed.append(
            {
                "paths": [str(r["path"]) for r in group],
                "labels": [str(r["label"]) for r in group],
                "label_conflict": len(labels) > 1,
            }
        )
    return {
        "distance": distance,
        "groups": len(listed),
        "images": sum(len(g["paths"]) for g in listed),
        "largest": max((len(g["paths"]) for g in listed), default=0),
        "label_conflicts": sum(g["label_conflict"] for g in listed),
        "list": listed,
    }


def group_warnings(summary: dict) -> list[str]:
    """What a user should look at: groups that span classes, and a group so large that
    it is more likely a chain of look-alikes than copies of one picture."""
    out = []
    if summary["label_conflicts"]:
        out.append(
            f"{summary['label_conflicts']} near-duplicate group(s) span two or more classes "
            "(label conflicts, listed in reports/validation.json under near_duplicates): "
            "review them and list the wrongly filed copies in validate.exclude"
        )
    if summary["largest"] > _LARGE_GROUP:
        out.append(
            f"the largest near-duplicate group holds {summary['largest']} images: if they are "
            "look-alikes rather than copies, lower validate.near_duplicate_distance "
            f"(now {summary['distance']})"
        )
    return out
