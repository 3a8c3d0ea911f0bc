"""The validation page: one self-contained HTML file (template pipelines/validation/templates/validation.html) with
the failures, a few failing rows and every check that ran.

It replaces Great Expectations' Data Docs, which rendered failing warehouse values as live HTML and loaded scripts and
styles from public CDNs. Here every value goes through Jinja's autoescape, the page loads nothing from the network and
its Content-Security-Policy allows no script at all. jinja2 loads only when a page is rendered.
"""

from __future__ import annotations

import functools
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.validation.report import ValidationReport

if TYPE_CHECKING:
    import jinja2

PAGE = "index.html"
# What an earlier version's GX Data Docs left in the folder: the marker file, and the folders the site wrote.
_GX_MARKER = Path("static", "styles", "data_docs_default_styles.css")
_GX_FOLDERS = ("validations", "expectations", "static")


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("pipelines.validation", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def render_validation_page(report: ValidationReport, validated_at: datetime) -> str:
    """The validation report as one HTML page that opens with no network and runs no script."""
    by_table = {table: [run for run in report.runs if run.table == table] for table in report.tables}
    return _environment().get_template("validation.html").render(
        report=report, validated_at=f"{validated_at:%Y-%m-%d %H:%M}", by_table=by_table)


def write_validation_page(report: ValidationReport, folder: Path | str, validated_at: datetime) -> Path:
    """Write the validation page as `folder`/index.html; return its path.

    GX Data Docs that an earlier version wrote into the folder (pages that can hold live HTML from the data) are
    removed, and only when GX's own stylesheet shows the folder is theirs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / _GX_MARKER).is_file():
        for name in _GX_FOLDERS:
            shutil.rmtree(folder / name, ignore_errors=True)
    path = folder / PAGE
    path.write_text(render_validation_page(report, validated_at), encoding="utf-8")
    return path
