"""The comparison report as markdown (reports/comparison.md), and what both pages share.

Decision first: how the backbones were trained, the recommendation and the champion, then
the evidence (the main table, the mistakes, per-class accuracy, the details, the figures).
The HTML page (`bakeoff.report.html`) shows the same cells and sentences, built once in
the page context, so the two pages cannot disagree.
"""

from __future__ import annotations

from typing import Any

from bakeoff.report import per_class

FIGURES = ("accuracy_vs_latency.png", "training_curves.png", "champion_confusion.png")
FIGURE_TITLES = ("Accuracy vs latency", "Training curves", "Champion confusion matrix")
EXPORT_COLUMNS = [
    ("Variant", "variant", "{}"),
    ("Test accuracy", "test_accuracy", "{:.4f}"),
    ("Change vs Keras", "accuracy_change", "{:+.4f}"),
    ("Agreement with Keras", "agreement", "{:.1%}"),
    ("Size (MB)", "size_mb", "{:.2f}"),
    ("Latency b1 (ms)", "latency_ms_b1", "{:.3f}"),
    ("Input", "input_dtype", "{}"),
    ("Verdict", "verdict", "{}"),
]
TIE_NOTE = (
    "A backbone is statistically tied with the most accurate one when the paired bootstrap "
    "interval of their difference contains 0 or, with several seeds, their means differ by "
    "no more than the sum of their standard deviations."
)
# Said only when their columns are shown.
COLUMN_NOTES = {
    "seeds_text": "Test acc. over seeds: mean ± standard deviation over `train.seeds` (the "
    "tables show the seed with the best validation accuracy).",
    "tuned_val_accuracy": "Val acc. default/tuned head: the head before and after tuning on "
    "cached features (the same number of trials for every backbone, selected on validation "
    "only); - without a feature cache, where tuning is off.",
}


def export_section(export: dict[str, Any] | None, champion_version: str | None) -> dict:
    """The TFLite table of reports/export.json: a title, header, rows and notes."""
    if export is None:
        return {"title": "not run (`bakeoff export`, a stage of `dvc repro`)", "rows": []}
    rows = []
    for v in export["variants"]:
        verdict = "recommended" if v["recommended"] else v["note"]
        if v["variant"] == export.get("pick"):
            verdict = "recommended: smallest within the threshold"
        rows.append([fmt.format({**v, "verdict": verdict}[k]) for _, k, fmt in EXPORT_COLUMNS])
    keras = export["keras"]
    rows.append(["Keras (reference)", f"{keras['test_accuracy']:.4f}", "-", "-",
                 f"{keras['size_mb']:.2f}", "-", "float32", "-"])  # fmt: skip
    notes = [
        f"On the {export['n_test']} test images at {export['image_size']} px; LiteRT "
        f"interpreter, {export['threads']} thread(s). A variant losing more than "
        f"export.max_accuracy_drop = {export['max_accuracy_drop']} is not recommended. "
        "int8 is calibrated on training images and takes uint8 pixels as they are."
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
    lines = [f"**How the backbones were trained:** {'; '.join(ctx['recipe'])}.", ""]
    pick = f"**Recommendation: {ctx['pick']}.** {ctx['reason']}"
    if ctx["scratch_note"]:
        pick += f" {ctx['scratch_note']}"
    lines += [pick + f" Its training: {ctx['pick_outcome']}.", ""]
    champion = f"**Champion** (reports/register.json): {ctx['champion_text']}"
    if ctx["champion_outcome"]:
        champion += f" Its training: {ctx['champion_outcome']}."
    return [*lines, champion, ""]


def _evidence(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Results", "", *_table(**ctx["tables"]["main"]), "", *ctx["notes"], ""]
    lines += [f"**Accuracy-latency Pareto front** (fastest first): {', '.join(ctx['front'])}", ""]
    lines += ["**Budgets** (batch-1 latency and model size):"]
    lines += [
        f"- {b['label']} ({b['limits']}): {b['fits']}"
        + (f"; most accurate: {b['best']}" if b["best"] else "")
        for b in ctx["budgets"]
    ] or ["- none"]
    for g in ctx["galleries"]:
        lines += ["", f"## Mistakes of {g['title']}", "", g["caption"], ""]
        if g["shown"]:
            lines += _table(
                ["Image (under data/raw)", "True", "Predicted", "Confidence"],
                [[m.path, m.actual, m.predicted, f"{m.confidence:.2f}"] for m in g["shown"]],
            )
    lines += ["", "## Per-class test accuracy", "", per_class.markdown(ctx["per_class"])]
    lines += ["", "## Details", "", *_table(**ctx["tables"]["details"]), ""]
    return lines


def render_markdown(ctx: dict[str, Any]) -> str:
    """reports/comparison.md: the decision, the evidence and links to the figures."""
    lines = ["# Backbone comparison", "", *_decision(ctx), *_evidence(ctx)]
    lines += [f"![{t}](figures/{f})\n" for t, f in zip(FIGURE_TITLES, FIGURES, strict=True)]
    export = ctx["export"]
    lines += [f"## Mobile export (TFLite): {export['title']}", ""]
    if export["rows"]:
        lines += [*_table(export["header"], export["rows"]), "", *export["notes"]]
    return "\n".join(lines) + "\n"
