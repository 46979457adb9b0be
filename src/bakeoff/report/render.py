"""The comparison report as text: the markdown page and the self-contained HTML page.

Both show the same cells, formatted once by `cells()`, so the two pages cannot disagree.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pandas as pd

from bakeoff.config import Params

COLUMNS = [
    ("Backbone", "backbone", "{}"),
    ("Test accuracy", "test_accuracy", "{:.4f}"),
    ("{conf}% interval", "interval", "{}"),
    ("Test acc. over seeds", "seeds_text", "{}"),
    ("Val acc. default head", "default_val_accuracy", "{:.4f}"),
    ("Val acc. tuned head", "tuned_val_accuracy", "{:.4f}"),
    ("Macro-F1", "test_macro_f1", "{:.4f}"),
    ("Latency b1 (ms)", "latency_ms_b1", "{:.2f}"),
    ("Latency b32 (ms/img)", "latency_ms_b32", "{:.2f}"),
    ("Throughput (img/s)", "throughput_ips", "{:.1f}"),
    ("Parameters", "params", "{:,}"),
    ("Size (MB)", "size_mb", "{:.2f}"),
    ("Training (s)", "train_seconds", "{:.1f}"),
    ("Epochs", "epochs_run", "{}"),
]
# Columns the report computes or reads from train.json, not from metrics/<backbone>.json.
NOT_FROM_METRICS = (
    "interval", "seeds_text", "default_val_accuracy", "tuned_val_accuracy", "epochs_run",
)  # fmt: skip
FIGURES = ("accuracy_vs_latency.png", "training_curves.png", "champion_confusion.png")
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


def cells(table: pd.DataFrame) -> list[list[str]]:
    # A head that was not tuned (no feature cache) has no default/tuned pair: "-".
    return [
        [fmt.format(row[key]) if not _missing(row[key]) else "-" for _, key, fmt in COLUMNS]
        for _, row in table.iterrows()
    ]


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


def _export_markdown(section: dict) -> str:
    lines = [f"## Mobile export (TFLite): {section['title']}", ""]
    if section["rows"]:
        lines += [
            "| " + " | ".join(section["header"]) + " |",
            "|" + "---|" * len(section["header"]),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in section["rows"]]
        lines += [""] + section["notes"]
    return "\n".join(lines)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def limit(value: float | None, unit: str) -> str:
    return "no limit" if value is None else f"<= {value:g} {unit}"


_MD = """# Backbone comparison

{table}

Test accuracy on {n_test} test images; the interval is a {conf}% percentile bootstrap over the
test images ({n_boot} resamples, seed {seed}). Latency is measured on the evaluation machine:
ms per image at batch 1, and per image within a batch of 32. {seeds_note}

**Champion** (reports/register.json): {champion_text}

**Recommendation: {pick}.** {reason}

**Accuracy-latency Pareto front** (fastest first): {front}

**Budgets** (batch-1 latency and model size):
{budget_lines}

![Accuracy vs latency](figures/{fig0})

![Training curves](figures/{fig1})

![Champion confusion matrix](figures/{fig2})

{export}
"""


def render_markdown(params: Params, table: pd.DataFrame, ctx: dict[str, Any]) -> str:
    """reports/comparison.md: the table, the decision text and links to the figures."""
    conf = f"{100 * params.report.confidence:g}"
    header = [title.format(conf=conf) for title, _, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in cells(table)]
    budget_lines = "\n".join(
        f"- {b['label']} ({b['limits']}): {b['fits']}"
        + (f"; most accurate: {b['best']}" if b["best"] else "")
        for b in ctx["budgets"]
    )
    return _MD.format(
        table="\n".join(lines),
        n_test=ctx["n_test"],
        conf=conf,
        n_boot=params.report.bootstrap,
        seed=params.report.seed,
        seeds_note=SEEDS_NOTE,
        champion_text=ctx["champion_text"],
        pick=ctx["pick"],
        reason=ctx["reason"],
        front=", ".join(ctx["front"]),
        budget_lines=budget_lines or "- none",
        fig0=FIGURES[0],
        fig1=FIGURES[1],
        fig2=FIGURES[2],
        export=_export_markdown(ctx["export"]),
    )


SEEDS_NOTE = (
    "Test acc. over seeds: mean ± standard deviation over `train.seeds` (the table shows the "
    "seed with the best validation accuracy). A backbone is statistically tied with the most "
    "accurate one when the paired bootstrap interval of their difference contains 0 or, with "
    "several seeds, their means differ by no more than the sum of their standard deviations. "
    "Val acc. default/tuned head: the head before and after tuning on cached features (the "
    "same number of trials for every backbone, selected on validation only); - without a "
    "feature cache, where tuning is off."
)

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bakeoff: backbone comparison</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f4f6f9;font-weight:600}
tr.pick td{background:#eef7ee}
.note{color:#666;font-size:13px}
.card{background:#f8f9fb;border-left:4px solid #3b7dd8;padding:.6em 1em;margin:1em 0}
figure{margin:1.5em 0}img{max-width:100%}
</style></head><body>
<h1>Backbone comparison</h1>
<table><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr{% if row[0] == pick %} class="pick"{% endif %}>
{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p class="note">Test accuracy on {{ n_test }} test images; the interval is a {{ conf }}%
percentile bootstrap over the test images ({{ n_boot }} resamples, seed {{ seed }}). Latency is
ms per image at batch 1, and per image within a batch of 32, on the evaluation machine.
{{ seeds_note }}</p>
<div class="card"><b>Champion</b> (reports/register.json): {{ champion_text }}</div>
<div class="card"><b>Recommendation: {{ pick }}.</b> {{ reason }}</div>
<p><b>Accuracy-latency Pareto front</b> (fastest first): {{ front | join(", ") }}</p>
<p><b>Budgets</b> (batch-1 latency and model size):</p><ul>
{% for b in budgets %}<li>{{ b.label }} ({{ b.limits }}): {{ b.fits -}}
{% if b.best %}; most accurate: <b>{{ b.best }}</b>{% endif %}</li>
{% endfor %}</ul>
<h2>Mobile export (TFLite): {{ export.title }}</h2>
{% if export.rows %}<table><tr>{% for h in export.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in export.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% for n in export.notes %}<p class="note">{{ n }}</p>{% endfor %}{% endif %}
{% for title, uri in figures %}<figure><img alt="{{ title }}" src="{{ uri }}">
<figcaption class="note">{{ title }}</figcaption></figure>{% endfor %}
</body></html>
"""


def render_html(
    params: Params, table: pd.DataFrame, ctx: dict[str, Any], figures: list[Path]
) -> str:
    """reports/comparison.html: self-contained, the figures embedded as data URIs."""
    import jinja2

    conf = f"{100 * params.report.confidence:g}"
    titles = ["Accuracy vs latency", "Training curves", "Champion confusion matrix"]
    uris = [
        "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii") for p in figures
    ]
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_HTML).render(
        header=[title.format(conf=conf) for title, _, _ in COLUMNS],
        rows=cells(table),
        conf=conf,
        n_boot=params.report.bootstrap,
        seed=params.report.seed,
        seeds_note=SEEDS_NOTE.replace("`", ""),
        figures=list(zip(titles, uris, strict=True)),
        **ctx,
    )
