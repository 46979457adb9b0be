"""reports/comparison.html: one self-contained page, laid out for a 1024 px screen.

The first screen holds the decision (how the backbones were trained, the recommendation,
the champion) and the main table; the evidence follows. Figures and thumbnails are
embedded as data URIs. Wide tables (many backbones or classes) scroll inside their box,
never the page.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bakeoff.report import issues_section, per_class
from bakeoff.report.render import FIGURE_TITLES

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bakeoff: backbone comparison</title>
<style>
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin:.2em 0 .4em}h2{font-size:1.2em;margin:1.6em 0 .5em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:14px}
th,td{padding:.3em .5em;border-bottom:1px solid #ddd;text-align:right}
td{white-space:nowrap}td:last-child{white-space:normal}
th:first-child,td:first-child{text-align:left}
th{background:#f4f6f9;font-weight:600;vertical-align:bottom}
th[title]{cursor:help;text-decoration:underline dotted #999}
tr.pick td{background:#eef7ee;font-weight:600}
.note{color:#555;font-size:13px}
.how{margin:.3em 0 .6em}
.card{background:#f8f9fb;border-left:4px solid #3b7dd8;padding:.5em .9em;margin:.6em 0}
.card.rec{border-color:#2e9e4f;background:#f1f8f3}
.card .scratch{display:block;margin-top:.3em;color:#8a4b00}
.warn{display:block;color:#8a4b00}
.gallery{display:flex;flex-wrap:wrap;gap:8px}
.gallery figure{margin:0;width:132px;font-size:12px;line-height:1.3}
.gallery figcaption{overflow-wrap:normal;word-break:keep-all}
.gallery .cls{display:inline-block;max-width:100%;white-space:nowrap;overflow:hidden;
 text-overflow:ellipsis;vertical-align:bottom}
.gallery img{width:112px;height:112px;object-fit:contain;background:#eee;
 image-rendering:pixelated;display:block}
.gallery .pred{color:#b3261e}
table.heat{width:auto}table.heat td,table.heat th{text-align:center;min-width:6em}
table.heat td:first-child,table.heat td:nth-child(2){text-align:left}
figure.fig{margin:1.5em 0}figure.fig img{max-width:100%}
</style></head><body>
<h1>Backbone comparison</h1>
<p class="how"><b>How the backbones were trained:</b>
{% for clause in recipe %}{% if recipe | length > 1 %}<br>{% endif %}{{ clause -}}
{{ ";" if not loop.last else "." }}{% endfor %}
{% if improving %}<span class="warn" id="improving">{{ improving | plain }}</span>{% endif %}</p>
<div class="card rec" id="recommendation"><b>Recommendation: {{ pick }}.</b> {{ reason | plain }}
{% if scratch_note %}<span class="scratch">{{ scratch_note | plain }}</span>{% endif %}</div>
<div class="card" id="champion"><b>Champion</b> (reports/register.json):
{{ champion_text | plain }}</div>
{% macro table(t, pick=None, id="") %}<div class="scroll">
<table{% if id %} id="{{ id }}"{% endif %}>
<tr>{% for h in t.header %}<th{% if t.tips and t.tips[loop.index0] %}
 title="{{ h }}: {{ t.tips[loop.index0] | plain }}"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr{% if row[0] == pick %} class="pick"{% endif %}>
{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table></div>{% endmacro %}
{{ table(tables.main, pick, "main") }}
<p class="note">{{ how_to_read }}</p>
<p><b>Accuracy-latency Pareto front</b> (fastest first): {{ front_text }}</p>
<p><b>Budgets</b> (batch-1 latency and model size):</p><ul>
{% for b in budgets %}<li>{{ b.label }} ({{ b.limits }}): {{ b.fits -}}
{% if b.best %}; most accurate: <b>{{ b.best }}</b>{% endif %}</li>
{% else %}<li>none</li>{% endfor %}</ul>
{{ folder_problems }}
{% for g in galleries %}<h2>Mistakes of {{ g.title }}</h2>
<p class="note">{{ g.caption }}</p><div class="gallery">
{% for m in g.shown %}<figure><img src="{{ m.uri }}" alt="{{ m.path }}" title="{{ m.path }}">
<figcaption>true: <span class="cls" title="{{ m.actual }}">{{ m.actual }}</span><br>
<span class="pred">predicted: <span class="cls" title="{{ m.predicted }}">{{ m.predicted -}}
</span></span><br>confidence {{ '%.2f' % m.confidence }}</figcaption></figure>
{% endfor %}</div>{% endfor %}
<h2>Per-class test accuracy</h2>
<p class="note">{{ per_class_note }} Colour from the lowest ({{ '%.4f' % heat.low }}, red) to
the highest ({{ '%.4f' % heat.high }}, green) value in this table.</p>
<div class="scroll"><table class="heat"><tr><th>Class</th><th>Test images</th>
{% for b in heat.backbones %}<th>{{ b }}</th>{% endfor %}</tr>
{% for r in heat.rows %}<tr><td>{{ r.cls }}</td><td>{{ r.images }}</td>
{% for text, bg in r.cells %}<td style="background:{{ bg }}">{{ text }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
<h2>Details</h2>
{{ table(tables.details, pick) }}
{% for title, uri in figures %}<figure class="fig"><img alt="{{ title }}" src="{{ uri }}">
<figcaption class="note">{{ title }}</figcaption></figure>{% endfor %}
<h2>Mobile export (TFLite): {{ export.title | plain }}</h2>
{% if export.rows %}{{ table(export) }}
{% for n in export.notes %}<p class="note">{{ n | plain }}</p>{% endfor %}{% endif %}
<h2>How the numbers were measured</h2>
<ul class="note" id="measured">{% for title, text in measured %}
<li>{{ title }}: {{ text | plain }}</li>{% endfor %}</ul>
</body></html>
"""


def render_html(ctx: dict[str, Any], figures: list[Path]) -> str:
    """reports/comparison.html from the page context; the figures embedded as data URIs."""
    import jinja2
    import markupsafe

    uris = [
        "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii") for p in figures
    ]
    env = jinja2.Environment(autoescape=True)
    # Code spans read as plain text in the page (the markdown shows them as code).
    env.filters["plain"] = lambda text: str(text).replace("`", "")
    return env.from_string(_HTML).render(
        {
            **ctx,
            "heat": per_class.heat_cells(ctx["per_class"]),
            "per_class_note": per_class.NOTE,
            "folder_problems": markupsafe.Markup(issues_section.html(ctx["label_issues"])),
            "figures": list(zip(FIGURE_TITLES, uris, strict=True)),
        }
    )
