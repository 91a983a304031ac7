"""Headline metrics recorded by notebooks, and the HTML export of executed notebooks.

A notebook records the figures a stakeholder should see on the index page::

    report.record("overall_conversion", 0.0234, unit="share of entrants",
                  label="Overall conversion", ci=(0.021, 0.025))

:func:`record` emits a display output with the MIME type :data:`METRIC_MIME`
(``application/vnd.funnelkit.metric+json``) holding the metric as JSON, plus an
empty ``text/plain`` so that no front end shows anything for it (JupyterLab,
VS Code, the classic notebook and nbconvert all render an empty text as
nothing, whereas some of them print a "no renderer" notice for a MIME type
they do not know). The executed notebook therefore carries its own metrics:
:func:`read_metrics` reads them back for the index page and for tests, and
:func:`export_html` drops these outputs from the HTML report altogether.

A metric is a dict with the keys ``name`` (identifier-like), ``value`` (a
number, a string, a boolean or None), ``unit`` and ``label`` (strings or
None) and ``ci`` (None, or a ``[low, high]`` list of numbers or None: the 95%
confidence interval of an estimate).
"""
from __future__ import annotations

import copy
import json
import math
import numbers
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .text import points

if TYPE_CHECKING:  # pragma: no cover
    # imported where a notebook is read: nbformat's schema validation imports jsonschema's format checkers,
    # about 1.2 s (rfc3987-syntax builds its grammar), which every notebook's kernel would pay for record()
    import nbformat

__all__ = [
    "METRIC_MIME",
    "atomic_write",
    "export_html",
    "format_metric",
    "metric_label",
    "not_applicable",
    "not_applicable_reason",
    "notebook_question",
    "notebook_title",
    "read_metrics",
    "record",
    "record_metrics",
]

METRIC_MIME = "application/vnd.funnelkit.metric+json"
"""MIME type of the display outputs written by :func:`record`."""

NOT_APPLICABLE = "not_applicable"
"""Name of the metric :func:`not_applicable` records; its value is the reason the study cannot run."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Cell tags whose cells never appear in the HTML report: the parameters cell,
#: the cell papermill injects with the values of this run (the index page shows
#: the parameters), and nothing else.
HIDDEN_CELL_TAGS = frozenset({"parameters", "injected-parameters"})


# --------------------------------------------------------------------------- record


def _json_number(value: Any, what: str) -> int | float | None:
    """A real number as a JSON-safe Python int/float; NaN and infinities become None."""
    if value is None:
        return None
    if hasattr(value, "item") and getattr(value, "shape", ()) == ():  # numpy scalar / 0-d array
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a real number or None, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def _json_value(value: Any) -> int | float | str | bool | None:
    if hasattr(value, "item") and getattr(value, "shape", ()) == ():  # numpy scalar / 0-d array
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Real):
        return _json_number(value, "value")
    raise ValueError(
        f"value must be a number, a string, a boolean or None, got {type(value).__name__} {value!r}"
    )


def _metric(name: str, value: Any, *, unit: str | None, label: str | None, ci: Any, headline: bool = False) -> dict:
    """Validate the arguments of :func:`record` and build the JSON-safe metric dict."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"metric name must be identifier-like (letters, digits, _; not starting with a digit), got {name!r}")
    for key, text in (("unit", unit), ("label", label)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{key} must be a string or None, got {type(text).__name__} {text!r}")
    if ci is not None:
        if isinstance(ci, (str, bytes)) or not hasattr(ci, "__len__") or len(ci) != 2:
            raise ValueError(f"ci must be None or a pair (low, high) of numbers, got {ci!r}")
        low, high = (_json_number(bound, "ci bound") for bound in ci)
        if low is not None and high is not None and low > high:
            raise ValueError(f"ci must be ordered (low, high), got {ci!r}")
        ci = None if low is None and high is None else [low, high]
    if not isinstance(headline, bool):
        raise ValueError(f"headline must be True or False, got {headline!r}")
    return {"name": name, "value": _json_value(value), "unit": unit, "label": label, "ci": ci, "headline": headline}


def record(
    name: str,
    value: Any,
    *,
    unit: str | None = None,
    label: str | None = None,
    ci: tuple | None = None,
    headline: bool = False,
) -> None:
    """Record a figure of the study in the executed notebook.

    Parameters
    ----------
    name : str
        Identifier-like key (``overall_conversion``); tests and the index page
        look metrics up by it. Recording a name again replaces the value.
    value : number, str, bool or None
        numpy scalars become Python numbers; NaN and infinities become None.
    unit : str, optional
        ``"share"`` or ``"share of <units>"`` for proportions in [0, 1] (shown
        as percentages), a currency code such as ``"EUR"`` for money, a count
        unit such as ``"users"``, or any unit (``"min"``).
    label : str, optional
        Readable name shown on the index page (default: ``name``).
    ci : (low, high), optional
        95% confidence interval, in the same unit as ``value``.
    headline : bool
        A business figure a manager reads on the index card (two to four per
        notebook); the others (checks of the method, counts) are listed
        behind the card's details.

    Raises
    ------
    ValueError
        If ``name`` is not identifier-like, ``ci`` is not two numbers (or
        None) in order, ``unit``/``label`` are not strings, or ``value`` is
        not a scalar.

    Notes
    -----
    Outside an IPython kernel (a plain script) the arguments are validated and
    nothing is emitted.
    """
    metric = _metric(name, value, unit=unit, label=label, ci=ci, headline=headline)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    display({METRIC_MIME: metric, "text/plain": ""}, raw=True)


# --------------------------------------------------------------------------- not applicable

_CARD = ('<div class="funnelkit-not-applicable" style="border-left: 4px solid #bf8700; background: #fff8c5; '
         'padding: .8rem 1rem; margin: .5rem 0;"><strong>Not applicable to this log.</strong> {reason}'
         '<br>The rest of this study is skipped; the other notebooks run as usual.</div>')


class _SkipCell:
    """An IPython input transformer that turns every cell into one that prints ``message``.

    A cell that printed nothing would look as if it ran: in JupyterLab, a cell
    re-run after fixing the params would silently do nothing.
    """

    def __init__(self, message: str):
        self.message = message

    def __call__(self, lines: list[str]) -> list[str]:
        return [f"print({self.message!r})\n"]


def record_metrics(metrics) -> None:
    """:func:`record` every :class:`funnelkit.study.Metric` of a study's ``metrics()``, in order."""
    for metric in metrics:
        record(metric.name, metric.value, unit=metric.unit, label=metric.label, ci=metric.ci,
               headline=metric.headline)


def not_applicable(reason: Any) -> None:
    """Stop a study the log cannot support: a card with ``reason``, the status for the index, the rest skipped.

    In a notebook this displays one card ("Not applicable to this log." and the
    reason), records the metric :data:`NOT_APPLICABLE` whose value is the
    reason (the index page then shows the notebook as *not applicable*, with
    the reason, instead of *ok*), and makes every later cell of the kernel
    print one line instead of running ("skipped: <study> is not applicable to
    this log (<reason>); restart the kernel to run it again"), so the notebook
    ends without an error (the runner counts it as run). The HTML report ends
    at the card (:func:`export_html`), without those lines.

    The call must be the last statement of its cell: the statements after it
    in the same cell still run.

    Parameters
    ----------
    reason : str or exception
        Typically a :class:`funnelkit.requirements.StudyNotApplicable`;
        shown as text (escaped).

    Raises
    ------
    Exception
        Outside an IPython kernel (a plain script), where later code cannot be
        skipped: ``reason`` itself when it is an exception, else a
        :class:`funnelkit.errors.FunnelkitError` with its text.

    Notes
    -----
    The cells are skipped by an input transformer of the kernel
    (``input_transformers_cleanup``) that stays until the kernel ends; in
    JupyterLab, restart the kernel to run the notebook again with other
    parameters.
    """
    import html

    text = str(reason)
    metric = _metric(NOT_APPLICABLE, text, unit=None, label="Not applicable", ci=None)
    shell = _shell()
    if shell is None:
        if isinstance(reason, BaseException):
            raise reason
        from .errors import FunnelkitError

        raise FunnelkitError(text)
    from IPython.display import display

    display({"text/html": _CARD.format(reason=html.escape(text)), "text/plain": f"Not applicable to this log. {text}"},
            raw=True)
    display({METRIC_MIME: metric, "text/plain": ""}, raw=True)
    study = getattr(reason, "study", "this study")
    skip = _SkipCell(f"skipped: {study} is not applicable to this log ({text}); restart the kernel to run it again")
    if not any(isinstance(t, _SkipCell) for t in shell.input_transformers_cleanup):
        shell.input_transformers_cleanup.append(skip)


def not_applicable_reason(metrics: dict[str, dict]) -> str | None:
    """The reason a notebook's study was not applicable (from its metrics, :func:`read_metrics`), or None."""
    metric = metrics.get(NOT_APPLICABLE)
    return None if metric is None else str(metric.get("value") or "")


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        return None
    return get_ipython()


# --------------------------------------------------------------------------- read


def _read_notebook(notebook: str | os.PathLike | nbformat.NotebookNode) -> nbformat.NotebookNode:
    import nbformat

    if isinstance(notebook, nbformat.NotebookNode):
        return notebook
    return nbformat.read(os.fspath(notebook), as_version=4)


def _cell_metrics(cell) -> list[dict]:
    """The metric dicts of one cell's outputs, in output order."""
    if cell.cell_type != "code":
        return []
    found = []
    for output in cell.get("outputs", []):
        if output.get("output_type") in ("display_data", "execute_result") and METRIC_MIME in output.get("data", {}):
            data = output["data"][METRIC_MIME]
            found.append(json.loads(data) if isinstance(data, str) else data)  # JSON stored as text by some writers
    return found


def read_metrics(notebook: str | os.PathLike | nbformat.NotebookNode) -> dict[str, dict]:
    """The metrics recorded in an executed notebook.

    Parameters
    ----------
    notebook : path or NotebookNode
        An executed ``.ipynb`` (or a notebook already read with nbformat).

    Returns
    -------
    dict
        ``name -> {"name", "value", "unit", "label", "ci"}`` in the order the
        names were first recorded, plus ``"headline": True`` for a figure
        recorded with ``headline=True`` (the index card shows those); when a
        name is recorded again, the later record's content wins.
    """
    metrics: dict[str, dict] = {}
    for cell in _read_notebook(notebook).cells:
        for data in _cell_metrics(cell):
            metric = {key: data.get(key) for key in ("name", "value", "unit", "label", "ci")}
            metric = {k: (list(v) if k == "ci" and v is not None else v) for k, v in metric.items()}
            if data.get("headline") is True:  # only when set: rows of runs.json written before the flag stay equal
                metric["headline"] = True
            metrics[metric["name"]] = metric
    return metrics


# --------------------------------------------------------------------------- title


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_INLINE_MARKUP = re.compile(r"(\*\*|__|`|\*)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _plain(text: str) -> str:
    return _INLINE_MARKUP.sub("", _LINK.sub(r"\1", text)).strip()


def notebook_title(notebook: str | os.PathLike | nbformat.NotebookNode, default: str | None = None) -> str | None:
    """The text of the first Markdown heading of a notebook (markup removed).

    ATX (``# Title``) and setext (``Title`` underlined with ``===``) headings
    are recognised; returns ``default`` when the notebook has none.
    """
    nb = _read_notebook(notebook)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        in_fence = False
        for i, line in enumerate(lines):
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
            if in_fence:
                continue
            match = _ATX.match(line)
            if match and _plain(match.group(2)):
                return _plain(match.group(2))
            if i + 1 < len(lines) and line.strip() and _SETEXT.match(lines[i + 1]):
                return _plain(line)
    return default


_QUESTION = re.compile(r"^\s*(?:\*\*|__)Question[.:]?(?:\*\*|__)[.:]?\s*")


def notebook_question(notebook: str | os.PathLike | nbformat.NotebookNode) -> str | None:
    """The question a notebook answers: the paragraph of its first Markdown cell that starts with
    ``**Question.**``, without that word, as plain text on one line (markup removed); None without one.
    """
    nb = _read_notebook(notebook)
    cell = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if cell is None:
        return None
    for paragraph in re.split(r"\n[ \t]*\n", cell.source):
        if _QUESTION.match(paragraph):
            text = " ".join(line.strip() for line in _QUESTION.sub("", paragraph).splitlines())
            return _plain(text) or None
    return None


# --------------------------------------------------------------------------- HTML


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial
    file, and a crash leaves the old file in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _report_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` prepared for the report.

    Removes the ``parameters`` and papermill's ``injected-parameters`` cells
    and every metric output, then every code cell left without outputs (with
    inputs hidden it would only render as an empty box). Error outputs are
    kept: nbconvert turns the traceback's ANSI colours into escaped HTML, so a
    report never hides that a cell failed. A study that was not applicable
    (:func:`not_applicable`) ends at the cell of its card: the headings and
    prose of the sections it skipped would describe results that are not there.
    """
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells[:_end_of_study(nb)]:
        if HIDDEN_CELL_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [
                out for out in cell.get("outputs", [])
                if not (out.get("output_type") in ("display_data", "execute_result")
                        and METRIC_MIME in out.get("data", {}))
            ]
            from .figure_lint import LINT_MIME  # the figure lint beside a PNG is for the tests, not readers

            for out in cell.outputs:
                out.get("data", {}).pop(LINT_MIME, None)
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def _end_of_study(nb: nbformat.NotebookNode) -> int | None:
    """Index after the cell that recorded :data:`NOT_APPLICABLE`, or None (the whole notebook)."""
    for i, cell in enumerate(nb.cells):
        if any(metric.get("name") == NOT_APPLICABLE for metric in _cell_metrics(cell)):
            return i + 1
    return None


def export_html(notebook_path: str | os.PathLike, html_path: str | os.PathLike) -> None:
    """Render an executed notebook as a self-contained HTML report for people.

    Code inputs and prompts are hidden (nbconvert's ``exclude_input``: papermill's
    report mode only marks inputs collapsed, which nbconvert ignores); plots are
    embedded as ``data:`` URIs (outputs already are, Markdown images with
    ``embed_images``), so the file can be mailed or archived alone and read
    offline: no script, stylesheet or font loads from the network, and the
    maths of the Markdown is MathML written at export
    (:mod:`funnelkit.html_export`, :mod:`funnelkit.math_render`). Sections
    whose heading starts with "Method" and tables of more than 20 rows are
    folded in a ``<details>``, closed by default. The page title is the
    notebook's first Markdown heading. Metric outputs, the parameters cell
    and papermill's injected-parameters cell are left out; error tracebacks
    stay visible. The file is written atomically.

    Parameters
    ----------
    notebook_path : path
        Executed ``.ipynb``.
    html_path : path
        Where to write the ``.html``; its folder is created if needed.
    """
    from funnelkit.html_export import ReportExporter, fold_long_tables, fold_sections

    notebook_path = Path(notebook_path)
    nb = _report_notebook(_read_notebook(notebook_path))
    nb.metadata["title"] = notebook_title(nb, default=notebook_path.stem)
    nb = fold_long_tables(fold_sections(nb))
    exporter = ReportExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": notebook_path.stem, "path": str(notebook_path.parent)}}
    )
    atomic_write(html_path, body)


# --------------------------------------------------------------------------- format


_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CURRENCY_SYMBOLS = frozenset("€$£¥₹")
_PERCENT_UNITS = frozenset({"%", "percent", "pct"})
#: Unit of a difference of two shares (values in [-1, 1]), shown in percentage points: "−0.036 pp", never "%".
POINTS = "pp"


def _is_share(unit: str | None) -> bool:
    return unit is not None and (unit == "share" or unit.startswith("share of ") or unit in ("proportion", "fraction"))


def _percent(value: float) -> str:
    pct = value * 100
    if pct == 0 or abs(pct) >= 1:
        return f"{pct:,.1f}%"
    if abs(pct) >= 0.001:
        return f"{pct:.2g}%"
    # never "4.3e-17%": a reader takes scientific notation for a real figure; below a thousandth of a
    # percent only the side of zero matters
    return "< 0.001%" if pct > 0 else "> −0.001%"


def _number(value: float | int, unit: str | None) -> str:
    if unit is not None and (_CURRENCY.match(unit) or unit in _CURRENCY_SYMBOLS):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _label_names(label: str, unit: str) -> bool:
    """Whether ``label`` already names ``unit`` as a word of its own (any case): "Order value model R²" names
    "R²", "Logistic model ROC-AUC (pre-specified)" names "ROC-AUC", "Test users evaluated" names "users"."""
    return bool(unit) and re.search(rf"(?<![\w@-]){re.escape(unit)}(?![\w@-])", label, re.IGNORECASE) is not None


def format_metric(metric: dict, *, label_shown: bool = False) -> str:
    """A metric's value as people read it, with its unit and 95% CI.

    Examples: ``2.3% of entrants (95% CI 2.1%–2.5%)`` for ``unit="share of
    entrants"``, ``12,345 users``, ``4,210 EUR (95% CI 3,900–4,500)``,
    ``cart`` for a text value, ``n/a`` for a missing one.

    Shares (``share``, ``share of …``, ``proportion``, ``fraction``: values in
    [0, 1]) are shown as percentages; a difference of two shares (unit
    ``"pp"``, values in [−1, 1]) in signed percentage points (``−0.036 pp``); integers get thousands separators; a
    three-letter upper-case unit (or a currency symbol) is a currency: two
    decimals below 1,000, none above.

    Parameters
    ----------
    metric : dict
        As :func:`read_metrics` returns it.
    label_shown : bool
        The text is shown after :func:`metric_label` (``Label: value``): a unit
        word the label already names is not repeated (``Order value model R²:
        0.00448``, not ``… R²: 0.00448 R²``). The ``%`` of a share, a currency
        symbol and the interval are always kept.
    """
    value, unit, ci = metric.get("value"), metric.get("unit"), metric.get("ci")
    # the unit word after the value: "users", "EUR", "pp", "of entrants" ("share of entrants"); a "%" or a
    # currency symbol is part of the number itself
    word = unit.removeprefix("share ") if unit and unit.startswith("share of ") else unit
    if label_shown and word and _label_names(metric_label(metric), word):
        word = None
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f"{value} {word}" if word else value

    def fmt(v: Any) -> str:
        if v is None:
            return "n/a"
        if _is_share(unit):
            return _percent(float(v))
        if unit in _PERCENT_UNITS:
            return f"{float(v):,.1f}%"
        if unit == POINTS:
            return points(float(v), signed=True)
        return _number(v, unit).replace("-", "−")  # a real minus sign, never a hyphen

    text = fmt(value)
    if unit in _CURRENCY_SYMBOLS:
        text = f"{unit}{text}"
    elif _is_share(unit):
        text += f" {word}" if word and unit.startswith("share of ") else ""
    elif word and unit not in _PERCENT_UNITS:
        text += f" {word}"
    if ci is not None and any(bound is not None for bound in ci):
        low, high = (fmt(bound) for bound in ci)
        if unit in _CURRENCY_SYMBOLS:
            low, high = f"{unit}{low}", f"{unit}{high}"
        # "−0.01–+0.12" and "−663–1,366" read as subtractions
        negative = any(bound is not None and bound < 0 for bound in ci)
        dash = " to " if unit == POINTS or negative else "–"
        text += f" (95% CI {low}{dash}{high})"
    return text


def metric_label(metric: dict) -> str:
    """The label of a metric for people (its ``label``, else its ``name``)."""
    return metric.get("label") or metric.get("name") or ""


def write_csv(frame, path: str | os.PathLike) -> None:
    """Write a table as CSV (no index) atomically: a reader never sees half a file."""
    atomic_write(path, frame.to_csv(index=False))
