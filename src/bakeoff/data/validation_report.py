"""What validate found, in words: the result object, its JSON and its Markdown summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from bakeoff.config.params import ValidateParams
from bakeoff.data.expectations import SuiteOutcome

_MAX_LISTED = 50  # problems listed in the Markdown summary; validation.json has them all


@dataclass(frozen=True)
class ValidationResult:
    """Counts, every problem with its file and reason, the GE verdicts, and the gate."""

    total: int
    accepted: int
    rejected: int
    classes: list[str]
    per_class: dict[str, dict[str, int]]
    per_reason: dict[str, int]
    problems: list[dict[str, str]]
    suites: list[SuiteOutcome]
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    data_version: str = ""
    # Groups of near-identical images (`near_duplicates.mark_groups`), and the paths the
    # user excluded (validate.exclude).
    near_duplicates: dict = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @classmethod
    def build(
        cls,
        rows: list[dict],
        classes: list[str],
        params: ValidateParams,
        suites: list[SuiteOutcome],
        warnings: list[str],
    ) -> ValidationResult:
        """Summarise manifest rows and decide the gate (see `dataset_problems`)."""
        per_class = {c: {"accepted": 0, "rejected": 0} for c in classes}
        for row in rows:
            if row["label"]:
                per_class[str(row["label"])][str(row["status"])] += 1
        bad = [r for r in rows if r["status"] == "rejected"]
        result = cls(
            total=len(rows),
            accepted=len(rows) - len(bad),
            rejected=len(bad),
            classes=classes,
            per_class=per_class,
            per_reason=dict(sorted(Counter(str(r["reason"]) for r in bad).items())),
            problems=[{k: str(r[k]) for k in ("path", "label", "reason")} for r in bad],
            suites=suites,
            warnings=warnings,
        )
        return cls(**{**result.__dict__, "failures": dataset_problems(result, params)})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["invalid_fraction"] = round(self.rejected / self.total, 6) if self.total else 0.0
        return out

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [
            f"validation {verdict}: {self.accepted} of {self.total} files accepted, "
            f"{self.rejected} rejected, {len(self.classes)} classes (data version "
            f"{self.data_version or '-'})"
        ]
        lines += [f"  rejected {reason}: {n}" for reason, n in self.per_reason.items()]
        if self.excluded:
            lines.append(f"  excluded by you (validate.exclude): {len(self.excluded)}")
        near = self.near_duplicates
        if near.get("groups"):
            lines.append(
                f"  near-duplicate groups: {near['groups']} ({near['images']} images, "
                f"{near['label_conflicts']} spanning classes)"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  problem: {f}" for f in self.failures]
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        """A Markdown summary (for a Prefect artifact or a PR comment)."""
        verdict = "passed" if self.passed else "**failed**"
        md = [
            f"## Data validation {verdict}",
            "",
            f"{self.accepted} of {self.total} files accepted, {self.rejected} rejected; "
            f"data version `{self.data_version or '-'}`.",
            "",
        ]
        if self.failures:
            md += ["### Why it failed", "", *[f"- {f}" for f in self.failures], ""]
        md += ["| class | accepted | rejected |", "|---|---:|---:|"]
        md += [f"| {c} | {n['accepted']} | {n['rejected']} |" for c, n in self.per_class.items()]
        if self.per_reason:
            md += ["", "| reason | files |", "|---|---:|"]
            md += [f"| `{r}` | {n} |" for r, n in self.per_reason.items()]
            md += ["", "### Rejected files", ""]
            md += [f"- `{p['path']}`: `{p['reason']}`" for p in self.problems[:_MAX_LISTED]]
            if len(self.problems) > _MAX_LISTED:
                md.append(f"- ... and {len(self.problems) - _MAX_LISTED} more (validation.json)")
        if self.excluded:
            md += ["", f"### Excluded by you ({len(self.excluded)}, validate.exclude)", ""]
            md += [f"- `{p}`" for p in self.excluded[:_MAX_LISTED]]
        md += _near_duplicates_markdown(self.near_duplicates)
        if self.warnings:
            md += ["", "### Warnings", "", *[f"- {w}" for w in self.warnings]]
        md += ["", "### Great Expectations", ""]
        md += [
            f"- `{s.suite}`: {'passed' if s.success else 'failed'} ({s.evaluated} expectations)"
            for s in self.suites
        ]
        return "\n".join(md) + "\n"


def _near_duplicates_markdown(near: dict) -> list[str]:
    if not near.get("groups"):
        return []
    md = ["", f"### Near-duplicate groups: {near['groups']} ({near['images']} images)", ""]
    conflicts = [g for g in near["list"] if g["label_conflict"]]
    if conflicts:
        md += [f"{len(conflicts)} span classes (label conflicts):", ""]
    for g in conflicts[:_MAX_LISTED]:
        pairs = zip(g["paths"], g["labels"], strict=True)
        md.append("- " + ", ".join(f"`{p}` ({label})" for p, label in pairs))
    return md


def dataset_problems(result: ValidationResult, params: ValidateParams) -> list[str]:
    """Every reason the data cannot be used as it is, each saying what to change."""
    out = []
    if result.total and result.rejected / result.total > params.max_invalid_fraction:
        out.append(
            f"{result.rejected} of {result.total} files ({result.rejected / result.total:.1%}) "
            f"are invalid, more than validate.max_invalid_fraction="
            f"{params.max_invalid_fraction}: fix or remove them (reports/validation.json "
            "lists each file and its reason)"
        )
    counts = {c: n["accepted"] for c, n in result.per_class.items()}
    usable = {c: n for c, n in counts.items() if n > 0}
    if len(usable) < 2:
        out.append(
            f"found {len(usable)} class(es) with usable images ({', '.join(usable) or 'none'}): "
            "put at least 2 class sub-folders in data.source"
        )
    small = [f"'{c}' ({n})" for c, n in counts.items() if n < params.min_images_per_class]
    if small:
        out.append(
            f"classes with fewer than validate.min_images_per_class="
            f"{params.min_images_per_class} usable images: {', '.join(small)}: add images "
            "or remove the class folder"
        )
    if len(usable) >= 2:
        big, tiny = max(usable, key=usable.get), min(usable, key=usable.get)
        ratio = usable[big] / usable[tiny]
        if ratio > params.max_class_imbalance:
            out.append(
                f"classes are imbalanced: '{big}' has {usable[big]} images, '{tiny}' has "
                f"{usable[tiny]} (ratio {ratio:.1f} > validate.max_class_imbalance="
                f"{params.max_class_imbalance}): balance them or raise the limit"
            )
    for suite in result.suites:
        if suite.suite == "near_duplicates":
            continue  # look-alikes across classes are listed for the user to decide, not fatal
        if suite.success or (suite.suite == "classes" and out):
            continue  # the classes suite checks what the messages above already explain
        out.append(f"Great Expectations suite '{suite.suite}' failed: {'; '.join(suite.failed)}")
    return out
