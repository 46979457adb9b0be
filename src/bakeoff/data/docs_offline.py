"""Great Expectations Data Docs that work offline.

GE 1.x's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and the date
picker from CDNs, and its logo from S3. Offline, the pages are unstyled and the index's list
of validation results stays empty (bootstrap-table draws it). GE has no setting for local
copies, so after GE builds the site each page's `<script>`, `<link>` and `<img>` URLs are
pointed at copies shipped in `docs_assets/` (see its README: versions and licences).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).with_name("docs_assets")

_BT = "https://unpkg.com/bootstrap-table@"
_FILTER = "dist/extensions/filter-control/bootstrap-table-filter-control"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
# The URLs GE 1.x's templates write -> the copy under static/ (vendor/: docs_assets).
_LOCAL = {
    f"{_BT}1.19.1/dist/bootstrap-table.min.css": "vendor/bootstrap-table.min.css",
    f"{_BT}1.19.1/dist/bootstrap-table.min.js": "vendor/bootstrap-table.min.js",
    f"{_BT}1.19.0/{_FILTER}.min.css": "vendor/bootstrap-table-filter-control.min.css",
    f"{_BT}1.19.0/{_FILTER}.css": "vendor/bootstrap-table-filter-control.min.css",
    f"{_BT}1.19.1/{_FILTER}.min.js": "vendor/bootstrap-table-filter-control.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "vendor/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "vendor/bootstrap.min.js"
    ),
    f"{_CDNJS}bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "vendor/bootstrap-datepicker.min.css"
    ),
    f"{_CDNJS}bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "vendor/bootstrap-datepicker.min.js"
    ),
    f"{_CDNJS}font-awesome/6.6.0/css/all.min.css": "vendor/css/fontawesome-all.min.css",
    f"{_CDNJS}popper.js/1.12.9/umd/popper.min.js": "vendor/popper.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "vendor/jquery.min.js",
    # GE ships its logo in static/images/ too, yet links the one on S3.
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": (
        "images/logo-long.png"
    ),
}
# Loaded by every page but used only by what bakeoff's suites never render: Vega draws the
# profiling charts (`vegaEmbed(`, checked), bootstrap-dark a dark theme (light stays).
_UNUSED = (
    "https://cdn.jsdelivr.net/npm/vega@5",
    "https://cdn.jsdelivr.net/npm/vega-lite@5",
    "https://cdn.jsdelivr.net/npm/vega-embed@6",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css",
)
_TAG = re.compile(r"<(script|link|img)\b[^>]*>(\s*</script>)?", re.IGNORECASE)
_URL = re.compile(r'\b(src|href)="(https?://[^"?]+)(\?[^"]*)?"')
# Subresource integrity and CORS mode make a browser refuse a file:// script.
_CDN_ONLY = re.compile(r'\s(integrity|crossorigin)="[^"]*"')


def make_offline(site: Path) -> list[Path]:
    """Point every page of the Data Docs site at local copies of its CSS, JS and images.

    Args:
        site: The site's folder (index.html at its top, GE's `static/` next to it).

    Returns:
        The pages rewritten.

    Raises:
        RuntimeError: A page loads a URL with no local copy (GE changed its templates), or
            renders Vega charts: say which, so the copy can be added to `docs_assets/`.
    """
    site = Path(site)
    shutil.copytree(ASSETS, site / "static" / "vendor", dirs_exist_ok=True)
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if "vegaEmbed(" in text:
            raise RuntimeError(f"{page} draws Vega charts, which have no offline copy")
        static = Path(os.path.relpath(site / "static", page.parent)).as_posix()
        swap = functools.partial(_local_tag, static=static, page=page)
        page.write_text(_TAG.sub(lambda m, swap=swap: swap(m.group(0)), text))
    return pages


def _local_tag(tag: str, static: str, page: Path) -> str:
    """The tag loading its local copy; "" for a tag whose library no page uses."""
    found = _URL.search(tag)
    if found is None:
        return tag
    url = found.group(2)
    if url in _UNUSED:
        return ""
    if url not in _LOCAL:
        raise RuntimeError(
            f"{page} loads {url}, which has no offline copy: add it to bakeoff/data/docs_assets"
        )
    tag = _CDN_ONLY.sub("", tag)
    return tag[: found.start()] + f'{found.group(1)}="{static}/{_LOCAL[url]}"' + tag[found.end() :]
