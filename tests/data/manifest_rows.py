"""Manifest rows as validate writes them, for the Great Expectations suites' tests."""

from __future__ import annotations

from bakeoff.config.params import ValidateParams

PARAMS = ValidateParams(min_size=16, min_images_per_class=3, max_class_imbalance=2.0)


def row(path: str, label: str, sha: str, width: int = 28, status: str = "accepted", reason="",
         group=None):  # fmt: skip
    info = dict(format="PNG", mode="L", width=width, height=28, bytes=500, conversion="L->RGB")
    info |= dict(phash="c3a5" * 4 if sha else "", group=sha if group is None else group)
    return dict(path=path, label=label, sha256=sha, status=status, reason=reason, **info)


def sha(i: int) -> str:
    return f"{i:064x}"
