"""Figure lint: does a figure have a title, named axes and readable tick labels?

:func:`lint_figure` checks one matplotlib Figure and returns its findings, an
empty list when the figure is clean. The checks, each finding naming its
``check``:

``title``
    The figure has a title: an axes title (centre, left or right) or a
    suptitle.
``xlabel`` / ``ylabel``
    Every *data axes* names both axes. Not data axes, so exempt: colorbars
    (their label is on the colorbar's long axis, checked by no rule here) and
    axes switched off (text-only panels, ``ax.set_axis_off()``). An axis that
    shows no tick label (a pie chart's, a shared inner axis, a twin's hidden
    axis, ``set_yticks([])``) shows no value to name, and a categorical axis whose tick labels are words ("view",
    "mobile (n=1,204)") is named by them, as ``tests/test_plots.py`` has always
    accepted; a numeric or date axis always needs its label.
``tick-overlap``
    No two visible, non-empty tick labels of one axis overlap, measured on the
    figure's own renderer after a draw: rotated labels are compared as the
    rotated rectangles they are, not as their (much larger) upright bounding
    boxes, so 30° labels that clear each other pass.
``legend-overlap``
    A legend overlaps no other legend and no title (an axes title or the
    suptitle).

In a notebook, :func:`install` registers :func:`lint_payload` as an IPython
display formatter for Figures under :data:`LINT_MIME`: every figure the inline
backend shows (it calls ``display(fig)`` when a cell ends) also stores its
findings in the executed notebook, beside its PNG. ``funnelkit.plots`` calls it
on import, so every report carries the lint of every figure it drew; the
notebook tests read it back, and :func:`funnelkit.report.export_html` leaves it
out of the HTML.
"""
from __future__ import annotations

import re
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.category import StrCategoryFormatter
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FixedLocator

__all__ = ["LINT_MIME", "install", "lint_figure", "lint_payload", "figure_title"]

LINT_MIME = "application/vnd.funnelkit.figure-lint+json"
"""MIME type of the figure-lint data stored beside each figure's PNG in an executed notebook."""

_SLACK = 0.5
"""Pixels taken off each side of a label before testing overlap: labels that merely touch are readable."""

_LETTER = re.compile(r"[^\W\d_]")


def figure_title(fig: Figure) -> str:
    """The figure's title: its suptitle, else the first non-empty axes title, else ``""``."""
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        return suptitle.get_text().strip()
    for ax in fig.get_axes():
        for loc in ("center", "left", "right"):
            if ax.get_title(loc).strip():
                return ax.get_title(loc).strip()
    return ""


def lint_figure(fig: Figure) -> list[dict[str, str]]:
    """Findings of the figure lint on ``fig`` (see the module docstring); ``[]`` when clean.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, as it will be shown. It is drawn once (without rendering
        pixels) so that layout, tick labels and their sizes are final.

    Returns
    -------
    list of dict
        One dict per finding with the keys ``check`` (``title``, ``xlabel``,
        ``ylabel``, ``tick-overlap`` or ``legend-overlap``), ``axes`` (the
        panel: its title, or ``axes <i>``) and ``message`` (what is wrong, in
        words).
    """
    fig.draw_without_rendering()
    renderer = _renderer(fig)
    findings = []
    if not figure_title(fig):
        findings.append(_finding("title", "figure", "the figure has no title (axes title or suptitle)"))
    for i, ax in enumerate(fig.get_axes()):
        if not _is_data_axes(ax):
            continue
        name = ax.get_title().strip() or ax.get_title("left").strip() or f"axes {i}"
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = _tick_labels(axis)
            if labels and not axis.get_label_text().strip() and not _categorical(axis, labels):
                findings.append(_finding(f"{which}label", name, f"the {which} axis shows values but has no label"))
            pairs = _overlapping([_box(label, renderer) for label in labels])
            if pairs:
                a, b = pairs[0]
                findings.append(_finding(
                    "tick-overlap", name,
                    f"{len(pairs)} pair(s) of {which} tick labels overlap, the first "
                    f"{labels[a].get_text()!r} and {labels[b].get_text()!r}"))
    findings.extend(_legend_findings(fig, renderer))
    return findings


def lint_payload(fig: Figure) -> dict[str, Any]:
    """``{"title": ..., "findings": [...]}`` of ``fig``: what the display formatter stores.

    A lint that fails is itself a finding (``check`` ``lint-error``) rather than
    an exception: IPython would print the traceback into the report.
    """
    try:
        return {"title": figure_title(fig), "findings": lint_figure(fig)}
    except Exception as exc:  # noqa: BLE001 - see the docstring
        return {"title": "", "findings": [_finding("lint-error", "figure", f"{type(exc).__name__}: {exc}")]}


def install(display_formatter=None) -> bool:
    """Store :func:`lint_payload` beside every Figure an IPython kernel displays; True if installed.

    Parameters
    ----------
    display_formatter : IPython.core.formatters.DisplayFormatter, optional
        The formatter to extend; by default the running IPython shell's. Outside
        IPython (plain Python, the tests) nothing happens and False is returned.

    Notes
    -----
    A JSON formatter for :data:`LINT_MIME` is registered (once: a second call
    finds it) that answers :func:`lint_payload` for every
    ``matplotlib.figure.Figure`` and nothing for other objects.
    ``active_types`` is left alone: it is a whitelist whose observer switches
    off every formatter missing from a new value, and a registered formatter is
    enabled by default. ``display(fig)`` computes every enabled formatter, so
    the output holds the PNG, the ``text/plain`` repr and the lint; front ends
    that do not know the type show the PNG, as before.
    """
    if display_formatter is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with ipykernel
            return False
        shell = get_ipython()
        if shell is None:
            return False
        display_formatter = shell.display_formatter
    if LINT_MIME not in display_formatter.formatters:
        from IPython.core.formatters import JSONFormatter

        class _LintFormatter(JSONFormatter):
            format_type = LINT_MIME
            print_method = "_repr_funnelkit_figure_lint_"  # no class has it: only Figures get an answer

            def __call__(self, obj):
                # not a for_type(Figure, ...) entry: IPython's select_figure_formats, run when the inline
                # backend is configured (at the first figure, after this import), pops every formatter's
                # Figure entry, and a lint that silently stopped would pass every notebook test
                return lint_payload(obj) if self.enabled and isinstance(obj, Figure) else None

        display_formatter.register_formatter(_LintFormatter(parent=display_formatter))
    return True


# --------------------------------------------------------------------------- helpers


def _finding(check: str, axes: str, message: str) -> dict[str, str]:
    return {"check": check, "axes": axes, "message": message}


def _renderer(fig: Figure):
    canvas = fig.canvas
    return canvas.get_renderer() if hasattr(canvas, "get_renderer") else fig._get_renderer()


def _is_data_axes(ax) -> bool:
    """False for colorbars and axes switched off or hidden (see the module docstring)."""
    return not (hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>" or not ax.axison or not ax.get_visible())


def _tick_labels(axis) -> list[Text]:
    """The tick labels the axis draws: visible, non-empty, at a tick inside the view limits."""
    if not axis.get_visible():
        return []
    low, high = sorted(axis.get_view_interval())
    tolerance = 1e-9 * max(abs(low), abs(high), 1.0)
    labels = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        if not tick.get_visible() or not low - tolerance <= tick.get_loc() <= high + tolerance:
            continue
        labels.extend(label for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text().strip())
    return labels


def _categorical(axis, labels: list[Text]) -> bool:
    """True if the axis's ticks name categories (words), not numbers or dates."""
    formatter = axis.get_major_formatter()
    if isinstance(formatter, StrCategoryFormatter):
        return True
    if isinstance(formatter, (mdates.DateFormatter, mdates.AutoDateFormatter, mdates.ConciseDateFormatter)):
        return False
    fixed = isinstance(axis.get_major_locator(), FixedLocator) or isinstance(formatter, FixedFormatter)
    return fixed and all(_LETTER.search(label.get_text()) for label in labels)


def _box(text: Text, renderer) -> Path:
    """The rectangle ``text`` covers on screen (pixels), rotated with it, ``_SLACK`` smaller on each side."""
    upright = Text(0, 0, text.get_text(), fontproperties=text.get_fontproperties(),
                   linespacing=text.get_linespacing(), rotation=0)
    upright.set_figure(text.get_figure(root=True))
    size = upright.get_window_extent(renderer)
    half = np.array([max(size.width / 2 - _SLACK, 0.0), max(size.height / 2 - _SLACK, 0.0)])
    # the rotated rectangle is inscribed in the axis-aligned extent matplotlib reports, centred in it
    extent = text.get_window_extent(renderer)
    angle = np.deg2rad(text.get_rotation())
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * half
    return Path(corners @ turn.T + [extent.x0 + extent.width / 2, extent.y0 + extent.height / 2], closed=True)


def _overlapping(boxes: list[Path]) -> list[tuple[int, int]]:
    """Index pairs of boxes that overlap (one inside the other counts)."""
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].intersects_path(boxes[j], filled=True)]


def _legend_findings(fig: Figure, renderer) -> list[dict[str, str]]:
    legends = [legend for ax in fig.get_axes() for legend in [ax.get_legend()] if legend is not None]
    legends += [legend for legend in fig.legends]
    legends = [legend for legend in legends if legend.get_visible()]
    titles = [t for ax in fig.get_axes() for t in (ax.title, ax._left_title, ax._right_title)
              if t.get_visible() and t.get_text().strip()]
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        titles.append(suptitle)
    findings = []
    boxes = [legend.get_window_extent(renderer) for legend in legends]
    for i, box in enumerate(boxes):
        name = figure_title(fig) or "figure"
        for j in range(i + 1, len(boxes)):
            if box.overlaps(boxes[j]):
                findings.append(_finding("legend-overlap", name, "two legends overlap"))
        for title in titles:
            if box.overlaps(title.get_window_extent(renderer)):
                findings.append(_finding("legend-overlap", name, f"a legend overlaps the title {title.get_text()!r}"))
    return findings
