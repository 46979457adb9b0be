"""The comparison report as markdown (reports/comparison.md), and what both pages share.

Decision first: how the backbones were trained, the recommendation and the champion, then
the evidence (the main table, the mistakes, per-class accuracy, the details, the figures).
The HTML page (`bakeoff.report.html`) shows the same cells and sentences, built once in
the page context, so the two pages cannot disagree.
"""

from __future__ import annotations

from typing import Any

from bakeoff.export.choice import SIZE_TIE, pick_variant, rule
from bakeoff.report import issues_section, per_class

FIGURES = ("accuracy_vs_latency.png", "training_curves.png", "champion_confusion.png")
FIGURE_TITLES = ("Accuracy vs latency", "Training curves", "Champion confusion matrix")
EXPORT_COLUMNS = [
    ("Variant", "variant", "{}"),
    ("Test accuracy", "test_accuracy", "{:.4f}"),
    ("Change vs Keras", "accuracy_change", "{:+.4f}"),
    ("Agreement with Keras", "agreement", "{:.4f}"),
    ("Size (MB)", "size_mb", "{:.2f}"),
    ("Latency b1 (ms)", "latency_ms_b1", "{:.3f}"),
    ("Input", "input_dtype", "{}"),
    ("Verdict", "verdict", "{}"),
]


def _verdict(v: dict[str, Any], pick: dict[str, Any] | None) -> str:
    """One variant's verdict: exactly one variant (the pick) says "recommended"."""
    if pick is not None and v["variant"] == pick["variant"]:
        return "recommended"
    if not v["recommended"]:
        return v["note"]
    if v["size_mb"] <= pick["size_mb"] * (1 + SIZE_TIE):
        return "accuracy kept; as small, not faster"
    return f"accuracy kept; {v['size_mb'] / pick['size_mb']:.1f}x larger"


def export_section(export: dict[str, Any] | None, champion_version: str | None) -> dict:
    """The TFLite table of reports/export.json: a title, header, rows and notes.

    The recommended variant is chosen here by `bakeoff.export.choice`, the rule the export
    stage writes its pick with, and the rule is the first note.
    """
    if export is None:
        return {"title": "not run (`bakeoff export`, a stage of `dvc repro`)", "rows": []}
    pick = pick_variant(export["variants"])
    rows = [
        [fmt.format({**v, "verdict": _verdict(v, pick)}[k]) for _, k, fmt in EXPORT_COLUMNS]
        for v in export["variants"]
    ]
    keras = export["keras"]
    rows.append(["Keras (reference)", f"{keras['test_accuracy']:.4f}", "-", "-",
                 f"{keras['size_mb']:.2f}", "-", "float32", "-"])  # fmt: skip
    notes = [
        rule(export["max_accuracy_drop"]),
        f"Measured on the {export['n_test']} test images at {export['image_size']} px with "
        f"the LiteRT interpreter, {export['threads']} thread(s). int8 is calibrated on "
        "training images and takes uint8 pixels as they are.",
    ]
    notes += [f"{f['variant']}: not exported, {f['reason']}." for f in export.get("failed", [])]
    notes += [
        f"{v['variant']} ran on LiteRT's {v['kernels']}."
        for v in export["variants"]
        if not v.get("kernels", "XNNPACK").startswith("XNNPACK")
    ]
    if export.get("version") != champion_version:
        notes.append(
            f"This export is of {export['source']}, not of the current champion "
            f"(version {champion_version}): run `bakeoff export`."
        )
    return {
        "title": f"{export['backbone']} ({export['source']})",
        "header": [title for title, _, _ in EXPORT_COLUMNS],
        "rows": rows,
        "notes": notes,
    }


def limit(value: float | None, unit: str) -> str:
    return "no limit" if value is None else f"<= {value:g} {unit}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _decision(ctx: dict[str, Any]) -> list[str]:
    how = f"**How the backbones were trained:** {'; '.join(ctx['recipe'])}."
    if ctx["improving"]:
        how += f" {ctx['improving']}"
    pick = f"**Recommendation: {ctx['pick']}.** {ctx['reason']}"
    if ctx["scratch_note"]:
        pick += f" {ctx['scratch_note']}"
    champion = f"**Champion** (reports/register.json): {ctx['champion_text']}"
    return [how, "", pick, "", champion, ""]


def _evidence(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Results", "", *_table(**_cells(ctx["tables"]["main"])), "", ctx["how_to_read"]]
    lines += ["", f"**Accuracy-latency Pareto front** (fastest first): {ctx['front_text']}", ""]
    lines += ["**Budgets** (batch-1 latency and model size):"]
    lines += [
        f"- {b['label']} ({b['limits']}): {b['fits']}"
        + (f"; most accurate: {b['best']}" if b["best"] else "")
        for b in ctx["budgets"]
    ] or ["- none"]
    lines += ["", *issues_section.markdown(ctx["label_issues"])]
    for g in ctx["galleries"]:
        lines += ["", f"## Mistakes of {g['title']}", "", g["caption"], ""]
        if g["shown"]:
            lines += _table(
                ["Image (under data/raw)", "True", "Predicted", "Confidence"],
                [[m.path, m.actual, m.predicted, f"{m.confidence:.2f}"] for m in g["shown"]],
            )
    lines += ["", "## Per-class test accuracy", "", per_class.markdown(ctx["per_class"])]
    lines += ["", per_class.NOTE]
    lines += ["", "## Details", "", *_table(**_cells(ctx["tables"]["details"])), ""]
    return lines


def _cells(t: dict[str, list]) -> dict[str, list]:
    return {"header": t["header"], "rows": t["rows"]}


def render_markdown(ctx: dict[str, Any]) -> str:
    """reports/comparison.md: the decision, the evidence and links to the figures."""
    lines = ["# Backbone comparison", "", *_decision(ctx), *_evidence(ctx)]
    lines += [f"![{t}](figures/{f})\n" for t, f in zip(FIGURE_TITLES, FIGURES, strict=True)]
    export = ctx["export"]
    lines += [f"## Mobile export (TFLite): {export['title']}", ""]
    if export["rows"]:
        lines += [*_table(export["header"], export["rows"]), "", *export["notes"]]
    lines += ["", "## How the numbers were measured", ""]
    lines += [f"- {title}: {text}" for title, text in ctx["measured"]]
    return "\n".join(lines) + "\n"
