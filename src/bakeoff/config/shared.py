"""Settings several stages use, written once in params.yaml and copied into their sections.

Each stage reads only its own section (dvc.yaml lists what it reads), yet a seed, the
bootstrap count, the budgets or the latency timing are written once: `share_settings`
copies them into every section that uses them before validation. Written in one of those
sections as well, a shared setting is an unknown key, so two values can never disagree.
"""

from __future__ import annotations

from typing import Any

from bakeoff.errors import BakeoffError

# The setting (top level, or `section.key`) -> the sections it is copied into.
SHARED: dict[str, tuple[str, ...]] = {
    "seed": ("data", "split", "register", "export", "report"),
    "bootstrap": ("register", "report"),
    "budgets": ("register", "report"),
    "evaluate.latency_repeats": ("export",),
    "evaluate.latency_warmup": ("export",),
}


def share_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The parsed params.yaml with each `SHARED` setting copied into its sections.

    A setting params.yaml leaves out is copied nowhere: the sections' defaults equal its own.

    Raises:
        BakeoffError: A section sets a shared setting itself; the message names both keys.
    """
    raw, problems = dict(raw), []
    for source, targets in SHARED.items():
        *section, key = source.split(".")
        where = raw.get(section[0]) if section else raw
        for target in targets:
            part = raw.get(target)
            if not isinstance(part, dict | None):
                continue  # validation names the section that is not a mapping
            if key in (part or {}):
                problems.append(f"unknown key '{target}.{key}': set `{source}` (shared by "
                                f"{', '.join(targets)}) instead")  # fmt: skip
            elif isinstance(where, dict) and key in where:
                raw[target] = {**(part or {}), key: where[key]}
    if problems:
        raise BakeoffError("params.yaml: " + "; ".join(problems))
    return raw
