"""The report's "Your folder's own problems" section: label issues and cross-class copies.

Both pages show the same thing near their top: one line saying how many images look
mislabelled, the first `MAX_SHOWN` of reports/label_issues.csv as thumbnails (given class,
suggested class, score), then the near-duplicate groups that span classes (from
reports/validation.json) as rows of thumbnails. Built once here; `render` and `html` each
add one call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bakeoff.data.dataset import manifest_file
from bakeoff.report.gallery import thumbnail
from bakeoff.report.label_issues import LabelCheck

MAX_SHOWN = 24  # label issues shown as thumbnails; the CSV has them all
MAX_GROUPS = 12  # cross-class near-duplicate groups shown

_HTML = """<h2 id="folder-problems">Your folder's own problems</h2>
<p id="label-issues-line"><b>{{ s.line }}</b></p>
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% if s.shown %}<div class="gallery" id="label-issues">
{% for m in s.shown %}<figure><img src="{{ m.uri }}" alt="{{ m.path }}" title="{{ m.path }}">
<figcaption>{{ m.rank }}. given: {{ m.given }}<br>
<span class="pred">suggested: {{ m.suggested }}</span><br>score {{ m.score }}</figcaption></figure>
{% endfor %}</div>{% endif %}
<p id="conflicts-line"><b>{{ s.groups_line }}</b></p>
{% for g in s.groups %}<div class="gallery conflict">
{% for m in g %}<figure><img src="{{ m.uri }}" alt="{{ m.path }}" title="{{ m.path }}">
<figcaption>{{ m.label }}<br>{{ m.path }}</figcaption></figure>{% endfor %}</div>
{% endfor %}"""


def _thumb(image_root: Path, path: str, what: str) -> str:
    return thumbnail(manifest_file(image_root, path, what))


def _conflicts(validation: Path, image_root: Path) -> tuple[str, list[list[dict[str, str]]]]:
    if not validation.is_file():
        return "Near-duplicates: not checked (reports/validation.json is missing).", []
    near = json.loads(validation.read_text()).get("near_duplicates") or {}
    if near.get("distance") is None:
        return "Near-duplicates: not checked (validate.near_duplicate_distance is null).", []
    groups = [g for g in near.get("list", []) if g["label_conflict"]]
    line = (
        f"{len(groups)} near-duplicate group(s) span classes (of {near.get('groups', 0)} "
        f"groups; pHash distance <= {near['distance']})"
    )
    line += ": the same picture filed under two classes?" if groups else "."
    shown = [
        [
            {"path": p, "label": c, "uri": _thumb(image_root, p, "reports/validation.json")}
            for p, c in zip(g["paths"], g["labels"], strict=True)
        ]
        for g in groups[:MAX_GROUPS]
    ]
    return line, shown


def section(check: LabelCheck, validation: Path, image_root: Path) -> dict[str, Any]:
    """Everything the section shows, with thumbnails.

    Args:
        check: The label check (bakeoff.report.label_issues.check_labels).
        validation: reports/validation.json (its near-duplicate groups).
        image_root: data/raw (paths are relative to it, as to data.source).
    """
    n = len(check.issues)
    if check.reason:
        line, note = f"No label check: {check.reason}.", ""
    else:
        line = f"{n} of {check.checked} images look mislabelled (reports/label_issues.csv)."
        note = (
            f"Confident learning (cleanlab) on {check.source}, most likely wrong first; "
            "score: the probability of the given class (low: likely wrong). List the ones "
            "you reject in validate.exclude; bakeoff never edits your folder."
        )
    shown = [
        {**row, "score": f"{row['score']:.2f}",
         "uri": _thumb(image_root, str(row["path"]), "reports/label_issues.csv")}
        for row in check.issues.head(MAX_SHOWN).to_dict("records")
    ]  # fmt: skip
    groups_line, groups = _conflicts(validation, image_root)
    return {"line": line, "note": note, "shown": shown, "n": n,
            "groups_line": groups_line, "groups": groups}  # fmt: skip


def markdown(s: dict[str, Any]) -> list[str]:
    """The section as Markdown lines (the same cells as the HTML)."""
    lines = ["## Your folder's own problems", "", f"**{s['line']}**", ""]
    if s["note"]:
        lines += [s["note"], ""]
    if s["shown"]:
        lines += ["| Rank | Image (as in data.source) | Given | Suggested | Score |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {m['rank']} | {m['path']} | {m['given']} | {m['suggested']} | {m['score']} |"
            for m in s["shown"]
        ]
        lines.append("")
    lines += [f"**{s['groups_line']}**", ""]
    lines += ["- " + ", ".join(f"{m['path']} ({m['label']})" for m in g) for g in s["groups"]]
    return [*lines, ""] if s["groups"] else lines


def html(s: dict[str, Any]) -> str:
    """The section as an HTML block (the page's `.gallery` styles)."""
    import jinja2

    env = jinja2.Environment(autoescape=True)
    return env.from_string(_HTML).render(s={**s, "note": s["note"].replace("`", "")})


def build(
    oofs: dict[str, Any], classes: list[str], pick: str, off_reason: str | None, out_dir: Path,
    image_root: Path,
) -> tuple[dict[str, Any], Path, dict[str, float]]:  # fmt: skip
    """Run the label check, write reports/label_issues.csv, build the section.

    Returns:
        (the section, the CSV, the report run's metrics: `label_issues` when checked).
    """
    from bakeoff.report.label_issues import check_labels, write_csv

    check = check_labels(oofs, classes, pick, off_reason)
    csv = write_csv(check, out_dir / "label_issues.csv")
    metrics = {} if check.reason else {"label_issues": float(len(check.issues))}
    return section(check, out_dir / "validation.json", image_root), csv, metrics
