"""``reports/index.html``: one self-contained page linking every report.

Shows the run (time, version, data label and fingerprint, parameters) and,
per notebook, its status, run time and headline figures. Every string that
comes from params, data or notebooks is escaped.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import __version__
from .report import NOT_APPLICABLE, format_metric, metric_label, not_applicable_reason
from .tables import escape

if TYPE_CHECKING:  # pragma: no cover
    from .runner import NotebookRun

FAILED_DIR = "failed"


_CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.meta { color: #57606a; margin: 0 0 1.5rem; }
.meta dt { float: left; clear: left; width: 11rem; font-weight: 600; }
.meta dd { margin: 0 0 .2rem 11rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: .5rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.file { color: #57606a; font-size: .85em; }
.ok { color: #1a7f37; font-weight: 600; }
.failed { color: #cf222e; font-weight: 600; }
.notrun { color: #57606a; }
.notapplicable { color: #9a6700; font-weight: 600; }
.note { color: #57606a; font-size: .85em; }
.error { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; color: #cf222e; }
ul.metrics { margin: 0; padding-left: 1rem; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .85em; }
""".strip()


def _when(iso: str | None) -> str:
    """``2026-09-01T12:00:00+00:00`` as ``2026-09-01 12:00:00`` (the column says UTC)."""
    return (iso or "").replace("T", " ").removesuffix("+00:00")


def _href(path: str) -> str:
    return escape(quote(path))


def _metrics_html(metrics: dict[str, dict]) -> str:
    if not metrics:
        return ""
    items = "".join(f"<li>{escape(metric_label(m))}: <strong>{escape(format_metric(m))}</strong></li>" for m in metrics.values())
    return f'<ul class="metrics">{items}</ul>'


def _row_html(name: str, row: NotebookRun | None, last_run: dict, reports_dir: Path) -> str:
    report_file = f"{name}.html"
    has_report = (reports_dir / report_file).is_file()
    file_note = f'<div class="file">{escape(name)}.ipynb</div>'
    if row is None:
        return (f"<tr><td>{escape(name)}{file_note}</td><td class=\"notrun\">not run yet</td>"
                f"<td class=\"num\"></td><td></td><td></td></tr>")
    title = escape(row.title)
    title_html = f'<a href="{_href(report_file)}">{title}</a>' if has_report else title
    note_html = _provenance_html(row, last_run, has_report)
    reason = not_applicable_reason(row.metrics) if row.ok else None
    if reason is not None:  # ran to its end, but the log lacks what the study needs: say so, not "ok"
        status = f'<span class="notapplicable">not applicable</span><div class="note">{escape(reason)}</div>'
        metrics = _metrics_html({k: m for k, m in row.metrics.items() if k != NOT_APPLICABLE})
    elif row.ok:
        status = '<span class="ok">ok</span>'
        metrics = _metrics_html(row.metrics)
    else:
        failed_file = f"{FAILED_DIR}/{name}.ipynb"
        status = '<span class="failed">failed</span>'
        if (reports_dir / failed_file).is_file():
            status += f'<div><a href="{_href(failed_file)}">failed notebook</a></div>'
        if row.failed_cell:
            status += f'<div class="error">{escape(row.failed_cell)}</div>'
        if row.error:
            status += f'<div class="error">{escape(row.error)}</div>'
        if has_report:
            when = f" ({escape(_when(row.report_utc))} UTC)" if row.report_utc else ""
            status += f'<div><a href="{_href(report_file)}">previous report</a>{when}</div>'
            metrics = _metrics_html(row.metrics)
            metrics = (f'<div class="note">from the previous report</div>{metrics}') if metrics else ""
        else:
            metrics = ""
    return (f"<tr><td>{title_html}{file_note}{note_html}</td><td>{status}</td>"
            f'<td class="num">{row.seconds:.1f}</td><td>{escape(_when(row.finished_utc))}</td><td>{metrics}</td></tr>')


def _provenance_html(row: NotebookRun, last_run: dict, has_report: bool) -> str:
    """What made this row's report (data fingerprint, parameters) and where it differs from the latest run.

    A report made from other data or with other parameters than the run the page's header
    describes (an earlier run kept by ``--only``, or a failed attempt that left the previous
    report in place) says so, with that report's own data and parameters.
    """
    notes = []
    if row.name not in last_run.get("notebooks", []):
        notes.append("from an earlier run")
    if row.params_sha and row.params_sha != last_run.get("params_sha"):
        notes.append("this attempt used other parameters")
    if row.fingerprint and row.fingerprint != last_run.get("fingerprint"):
        notes.append(f"this attempt used other data (fingerprint {escape(row.fingerprint)})")
    details = ""
    if has_report and (row.report_fingerprint or row.report_params_sha):
        label = f"{escape(row.report_source_label)}, " if row.report_source_label else ""
        details = (f'<div class="file">report made from {label}data {escape(row.report_fingerprint or "?")}, '
                   f'parameters {escape(row.report_params_sha or "?")}</div>')
        if row.report_fingerprint and row.report_fingerprint != last_run.get("fingerprint"):
            notes.append("<strong>report made from other data than the latest run</strong>")
        if row.report_params_sha and row.report_params_sha != last_run.get("params_sha"):
            notes.append("<strong>report made with other parameters than the latest run</strong>")
            if row.report_params_yaml:
                details += (f"<details><summary>parameters of this report</summary>"
                            f"<pre>{escape(row.report_params_yaml)}</pre></details>")
    note_html = f'<div class="note">{"; ".join(notes)}</div>' if notes else ""
    return note_html + details


def render_index(last_run: dict, rows: list[tuple[str, NotebookRun | None]], reports_dir: Path) -> str:
    """The HTML of ``index.html``: one self-contained page with inline CSS.

    Every string coming from params, data or notebooks is escaped.
    """
    ran = last_run.get("notebooks", [])
    body_rows = "\n".join(_row_html(name, row, last_run, reports_dir) for name, row in rows)
    failed = [name for name, row in rows if name in ran and row is not None and not row.ok]
    summary = f"{len(ran)} notebook{'s' if len(ran) != 1 else ''} run"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>funnelkit reports</title>
<style>
{_CSS}
</style>
</head>
<body>
<h1>funnelkit reports</h1>
<dl class="meta">
<dt>Run (UTC)</dt><dd>{escape(_when(last_run.get("started_utc")))}</dd>
<dt>funnelkit version</dt><dd>{escape(__version__)}</dd>
<dt>Data</dt><dd>{escape(last_run.get("source_label", ""))}</dd>
<dt>Data fingerprint</dt><dd><code>{escape(last_run.get("fingerprint", ""))}</code></dd>
<dt>Parameters file</dt><dd><code>{escape(last_run.get("params_file", ""))}</code></dd>
<dt>This run</dt><dd>{escape(summary)}</dd>
</dl>
<table>
<thead><tr><th>Notebook</th><th>Status</th><th>Run time (s)</th><th>Finished (UTC)</th><th>Headline figures</th></tr></thead>
<tbody>
{body_rows}
</tbody>
</table>
<h2>Parameters used</h2>
<pre>{escape(last_run.get("params_yaml", ""))}</pre>
</body>
</html>
"""
