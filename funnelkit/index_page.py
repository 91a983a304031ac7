"""``reports/index.html``: one self-contained page a manager reads first.

The header says which run and which data the page describes (time, data label
and fingerprint, funnelkit version, one line of status). Then one card per
report: its title linking to the report, the question it answers, its two to
four business figures (the metrics recorded with ``headline=True``), its
status, data and run time; the checks of the method and the other figures sit
behind a collapsed ``<details>`` on the card, and the parameters of the run
behind one at the bottom. A card whose figures come from a report made from
other data or other parameters than this run (a failed attempt leaves the
previous report in place) says so before the figures.

The page has inline CSS only: no script, no external resource. Every string
that comes from params, data or notebooks is escaped.
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

FALLBACK_FIGURES = 3
"""Figures on the card of a notebook that marks none with ``headline=True``: its first ones, in recording order."""


_CSS = """
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1200px; margin: 1.5rem auto; padding: 0 1rem; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0 0 1.2rem;
        color: #57606a; }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; }
.runstatus { font-weight: 600; color: #1a7f37; }
.runstatus.bad { color: #cf222e; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 28rem), 1fr)); gap: 1rem;
         align-items: start; }
.card { border: 1px solid #d0d7de; border-left: 6px solid #1a7f37; border-radius: 6px; padding: .9rem 1rem;
        background: #fff; }
.card.failed { border-left-color: #cf222e; }
.card.notapplicable { border-left-color: #bf8700; }
.card.notrun { border-left-color: #8c959f; }
.card h2 { font-size: 1.1rem; margin: 0; }
.badge { display: inline-block; font-size: .8rem; font-weight: 600; padding: 0 .5rem; border-radius: 1rem;
         margin-bottom: .3rem; }
.badge.ok { background: #dafbe1; color: #1a7f37; }
.badge.failed { background: #ffebe9; color: #cf222e; }
.badge.notapplicable { background: #fff8c5; color: #9a6700; }
.badge.notrun { background: #eaeef2; color: #57606a; }
.question { color: #424a53; margin: .4rem 0 .6rem; }
.figures { list-style: none; margin: .6rem 0; padding: 0; }
.figures li { margin: 0 0 .45rem; }
.figures .label { display: block; color: #57606a; font-size: .9rem; }
.figures .value { font-size: 1.25rem; }
.figures .ci { color: #57606a; font-size: .9rem; white-space: nowrap; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 4px; padding: .5rem .7rem; margin: .5rem 0; }
.problem { background: #ffebe9; border: 1px solid #ff8182; border-radius: 4px; padding: .5rem .7rem; margin: .5rem 0; }
.error { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; color: #cf222e; }
.cardmeta, .note, .file { color: #57606a; font-size: .85rem; }
details { margin-top: .6rem; }
summary { cursor: pointer; color: #0969da; }
ul.checks { margin: .4rem 0; padding-left: 1.1rem; font-size: .9rem; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .85em; }
details.params { margin: 2rem 0; }
details.params > summary { font-size: 1.1rem; font-weight: 600; }
""".strip()


def _when(iso: str | None) -> str:
    """``2026-09-01T12:00:00+00:00`` as ``2026-09-01 12:00:00`` (the page says UTC)."""
    return (iso or "").replace("T", " ").removesuffix("+00:00")


def _href(path: str) -> str:
    return escape(quote(path))


# --------------------------------------------------------------------------- figures


def split_figures(metrics: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """The figures of a card and the rest (checks and other figures), in recording order.

    The card shows the metrics recorded with ``headline=True``; a notebook
    that marks none shows its first :data:`FALLBACK_FIGURES` metrics there.
    The not-applicable marker is a status, never a figure.
    """
    figures = [m for name, m in metrics.items() if name != NOT_APPLICABLE]
    headline = [m for m in figures if m.get("headline") is True]
    if not headline:
        return figures[:FALLBACK_FIGURES], figures[FALLBACK_FIGURES:]
    return headline, [m for m in figures if m.get("headline") is not True]


def _figure_html(metric: dict) -> str:
    """One card figure: its label above, the value large, its interval beside it in grey."""
    value, _, interval = format_metric(metric, label_shown=True).partition(" (95% CI ")
    ci = f' <span class="ci">(95% CI {escape(interval)}</span>' if interval else ""
    return (f'<li><span class="label">{escape(metric_label(metric))}</span>'
            f'<strong class="value">{escape(value)}</strong>{ci}</li>')


def _figures_html(metrics: list[dict]) -> str:
    return f'<ul class="figures">{"".join(_figure_html(m) for m in metrics)}</ul>' if metrics else ""


def _checks_html(metrics: list[dict]) -> str:
    items = "".join(f"<li>{escape(metric_label(m))}: <strong>{escape(format_metric(m, label_shown=True))}</strong></li>"
                    for m in metrics)
    return f'<ul class="checks">{items}</ul>' if items else ""


# --------------------------------------------------------------------------- provenance


def _attempt_notes(row: NotebookRun, last_run: dict) -> list[str]:
    """How this row's attempt differs from the run the header describes (an earlier run kept by ``--only``)."""
    notes = []
    if row.name not in last_run.get("notebooks", []):
        notes.append("from an earlier run")
    if row.params_sha and row.params_sha != last_run.get("params_sha"):
        notes.append("this attempt used other parameters")
    if row.fingerprint and row.fingerprint != last_run.get("fingerprint"):
        notes.append(f"this attempt used other data (fingerprint {escape(row.fingerprint)})")
    return notes


def _report_differs(row: NotebookRun, last_run: dict) -> list[str]:
    """Where the report in place was made from other data or parameters than the run the header describes."""
    notes = []
    if row.report_fingerprint and row.report_fingerprint != last_run.get("fingerprint"):
        notes.append("<strong>report made from other data than the latest run</strong>")
    if row.report_params_sha and row.report_params_sha != last_run.get("params_sha"):
        notes.append("<strong>report made with other parameters than the latest run</strong>")
    return notes


def _made_from(row: NotebookRun) -> str:
    """``made from <label>, data <fingerprint>, on <date> UTC`` of the report in place."""
    label = f"{escape(row.report_source_label)}, " if row.report_source_label else ""
    when = f", on {escape(_when(row.report_utc))} UTC" if row.report_utc else ""
    return f"made from {label}data <code>{escape(row.report_fingerprint or '?')}</code>{when}"


def _warning_html(row: NotebookRun, last_run: dict, has_report: bool) -> str:
    """The box before the figures when they are not this run's: a failed attempt's previous report, or a
    report made from other data or parameters. Empty when the figures describe this run's data."""
    if not has_report:
        return ""
    differs = _report_differs(row, last_run)
    if row.ok and not differs:
        return ""
    if row.ok:
        lead = f"Figures below are from a report {_made_from(row)}"
    else:
        lead = f"<strong>Figures below are from the previous report</strong>, {_made_from(row)}"
    notes = "".join(f"<br>{note}" for note in differs)
    yaml = ""
    if row.report_params_yaml and row.report_params_sha and row.report_params_sha != last_run.get("params_sha"):
        yaml = (f"<details><summary>parameters of this report</summary>"
                f"<pre>{escape(row.report_params_yaml)}</pre></details>")
    return f'<div class="warn">{lead}.{notes}{yaml}</div>'


def _provenance_line(row: NotebookRun, has_report: bool) -> str:
    """What made the report in place (data label, fingerprint, parameters), for the card's details."""
    if not has_report or not (row.report_fingerprint or row.report_params_sha):
        return ""
    label = f"{escape(row.report_source_label)}, " if row.report_source_label else ""
    return (f'<div class="file">report made from {label}data {escape(row.report_fingerprint or "?")}, '
            f'parameters {escape(row.report_params_sha or "?")}</div>')


# --------------------------------------------------------------------------- cards


def _status(row: NotebookRun, last_run: dict, reports_dir: Path, has_report: bool) -> tuple[str, str, str, bool]:
    """``(css class, badge text, details html, whether the card shows figures)`` of a row."""
    reason = not_applicable_reason(row.metrics) if row.ok else None
    if reason is not None:  # ran to its end, but the log lacks what the study needs: say so, not "ok"
        box = f'<div class="warn"><strong>Not applicable to this log.</strong> {escape(reason)}</div>'
        return "notapplicable", "not applicable", box, True
    if row.ok:
        return "ok", "ok", "", True
    name = row.name
    failed_file = f"{FAILED_DIR}/{name}.ipynb"
    ran = row.name in last_run.get("notebooks", [])
    parts = [f"<strong>{'This run' if ran else 'Its latest run'} failed</strong>"]
    if row.failed_cell:
        parts.append(f'<div class="error">{escape(row.failed_cell)}</div>')
    if row.error:
        parts.append(f'<div class="error">{escape(row.error)}</div>')
    links = []
    if (reports_dir / failed_file).is_file():
        links.append(f'<a href="{_href(failed_file)}">failed notebook</a> (with the traceback)')
    if has_report:
        links.append(f'<a href="{_href(name + ".html")}">previous report</a>')
    else:
        links.append("no earlier report: no figures to show")
    parts.append(f'<div>{" · ".join(links)}</div>')
    # a failed attempt's figures are the previous report's, shown only when that report is there to read
    return "failed", "failed", f'<div class="problem">{"".join(parts)}</div>', has_report


def _not_run_card(name: str) -> str:
    return (f'<article class="card notrun" id="{_href(name)}"><span class="badge notrun">not run yet</span>'
            f'<h2>{escape(name)}</h2><div class="file">{escape(name)}.ipynb</div></article>')


def _card_html(name: str, row: NotebookRun | None, last_run: dict, reports_dir: Path) -> str:
    """One report's card: title, question, status, figures, data and time; the rest behind ``<details>``."""
    if row is None:
        return _not_run_card(name)
    report_file = f"{name}.html"
    has_report = (reports_dir / report_file).is_file()
    title = escape(row.title)
    title_html = f'<a href="{_href(report_file)}">{title}</a>' if has_report else title
    question = f'<p class="question">{escape(row.question)}</p>' if row.question else ""
    css, badge, status_html, shows_figures = _status(row, last_run, reports_dir, has_report)
    figures, rest = split_figures(row.metrics) if shows_figures else ([], [])
    warning = _warning_html(row, last_run, has_report) if shows_figures and figures else ""
    notes = _attempt_notes(row, last_run)
    note_html = f'<div class="note">{"; ".join(notes)}</div>' if notes else ""
    attempt = "" if row.ok else "This attempt: "  # a failed card's figures (if any) are the earlier report's
    meta = (f'<div class="cardmeta">{attempt}Data: {escape(row.source_label or "?")} · finished '
            f"{escape(_when(row.finished_utc))} UTC · {row.seconds:.1f} s</div>")
    checks = _checks_html(rest) or '<div class="note">no other figures</div>'
    count = f" ({len(rest)})" if rest else ""
    details = (f"<details><summary>Checks and other figures{count}</summary>{checks}"
               f'{_provenance_line(row, has_report)}<div class="file">{escape(name)}.ipynb</div></details>')
    return (f'<article class="card {css}" id="{_href(name)}"><span class="badge {css}">{badge}</span>'
            f"<h2>{title_html}</h2>{question}{status_html}{warning}{_figures_html(figures)}"
            f"{meta}{note_html}{details}</article>")


# --------------------------------------------------------------------------- page


def _run_status(last_run: dict, rows: list[tuple[str, NotebookRun | None]]) -> tuple[str, bool]:
    """One line on the run (``2 notebooks run: 1 ok, 1 failed (02_x)``) and whether something failed."""
    ran = last_run.get("notebooks", [])
    this_run = [(name, row) for name, row in rows if name in ran and row is not None]
    failed = [name for name, row in this_run if not row.ok]
    not_applicable = sum(1 for _, row in this_run if row.ok and not_applicable_reason(row.metrics) is not None)
    ok = len(this_run) - len(failed) - not_applicable
    parts = [f"{ok} ok"]
    if not_applicable:
        parts.append(f"{not_applicable} not applicable")
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    line = f"{len(ran)} notebook{'s' if len(ran) != 1 else ''} run: {', '.join(parts)}"
    earlier = sum(1 for name, row in rows if name not in ran and row is not None)
    if earlier:
        line += f"; {earlier} report{'s' if earlier != 1 else ''} kept from an earlier run"
    return line, bool(failed)


def render_index(last_run: dict, rows: list[tuple[str, NotebookRun | None]], reports_dir: Path) -> str:
    """The HTML of ``index.html``: one self-contained page with inline CSS, no script, no external resource.

    Parameters
    ----------
    last_run : dict
        ``runs.json``'s ``last_run``: ``started_utc``, ``source_label``,
        ``fingerprint``, ``params_file``, ``params_sha``, ``params_yaml`` and
        ``notebooks`` (the names run this time).
    rows : list of (name, NotebookRun or None)
        Every notebook in reading order; None for one never run.
    reports_dir : path
        Where the reports are (a link is shown only to a file that exists).

    Notes
    -----
    Every string coming from params, data or notebooks is escaped.
    """
    cards = "\n".join(_card_html(name, row, last_run, reports_dir) for name, row in rows)
    status, bad = _run_status(last_run, rows)
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
<dt>Data</dt><dd>{escape(last_run.get("source_label", ""))}</dd>
<dt>Data fingerprint</dt><dd><code>{escape(last_run.get("fingerprint", ""))}</code></dd>
<dt>funnelkit version</dt><dd>{escape(__version__)}</dd>
<dt>Status</dt><dd class="runstatus{' bad' if bad else ''}">{escape(status)}</dd>
</dl>
<main class="cards">
{cards}
</main>
<details class="params"><summary>Parameters of this run</summary>
<p>Parameters file: <code>{escape(last_run.get("params_file", ""))}</code></p>
<pre>{escape(last_run.get("params_yaml", ""))}</pre>
</details>
</body>
</html>
"""
