"""The figure lint finds untitled figures, unnamed axes and overlapping tick labels, and reaches notebooks."""
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.core.pylabtools import select_figure_formats

from funnelkit import report
from funnelkit.figure_lint import LINT_MIME, install, lint_figure, lint_payload


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def clean_figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [3, 1, 2], label="a")
    ax.plot([0, 1, 2], [1, 2, 3], label="b")
    ax.legend(loc="lower right")
    ax.set(title="A clean chart", xlabel="day", ylabel="events (count)")
    return fig


def checks(fig):
    return sorted(f["check"] for f in lint_figure(fig))


def test_a_clean_figure_has_no_findings():
    assert lint_figure(clean_figure()) == []


def test_a_figure_without_a_title_is_reported_and_a_suptitle_is_a_title():
    fig = clean_figure()
    fig.axes[0].set_title("")
    assert checks(fig) == ["title"]
    fig.suptitle("Traffic")
    assert checks(fig) == []


def test_a_missing_y_label_is_reported():
    fig = clean_figure()
    fig.axes[0].set_ylabel("")
    findings = lint_figure(fig)
    assert [(f["check"], f["axes"]) for f in findings] == [("ylabel", "A clean chart")]


def test_forty_long_tick_labels_that_overlap_are_reported():
    fig, ax = plt.subplots()
    ax.bar([f"a long event name number {i}" for i in range(40)], np.arange(40))
    ax.set(title="Too many names", xlabel="event type", ylabel="events (count)")
    findings = lint_figure(fig)
    assert [f["check"] for f in findings] == ["tick-overlap"]
    assert "x tick labels overlap" in findings[0]["message"]


def test_rotated_labels_that_clear_each_other_pass_though_their_upright_boxes_overlap():
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar([f"event name {i}" for i in range(12)], np.arange(12))
    ax.set(title="Rotated", xlabel="event type", ylabel="events (count)")
    ax.tick_params(axis="x", rotation=30)
    fig.draw_without_rendering()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))  # an upright-box test would flag this chart
    assert lint_figure(fig) == []


def test_colorbars_pies_and_text_panels_need_no_axis_labels_but_a_numeric_colourless_axis_does():
    fig, (heat, pie, note) = plt.subplots(1, 3, figsize=(12, 4))
    image = heat.imshow(np.eye(3))
    heat.set(title="Heat", xlabel="next", ylabel="current")
    fig.colorbar(image, ax=heat)  # the colorbar axes has no x/y label
    pie.pie([1, 2])
    note.set_axis_off()
    note.text(0.5, 0.5, "no data")
    assert lint_figure(fig) == []
    heat.set_xlabel("")
    assert checks(fig) == ["xlabel"]


def test_a_categorical_axis_is_named_by_its_words_but_numbers_need_a_label():
    fig, ax = plt.subplots()
    ax.barh([0, 1], [5, 3])
    ax.set_yticks([0, 1], ["view", "cart"])
    ax.set(title="Funnel", xlabel="users (count)")
    assert lint_figure(fig) == []
    ax.set_yticks([0, 1], ["0.5", "1"])  # numbers on fixed ticks are values: they need a unit
    assert checks(fig) == ["ylabel"]


def test_a_legend_over_the_title_is_reported():
    fig = clean_figure()
    ax = fig.axes[0]
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 0.98))
    assert checks(fig) == ["legend-overlap"]


def test_the_display_formatter_stores_the_lint_beside_the_png_and_the_report_drops_it():
    formatter = DisplayFormatter()
    assert install(formatter)
    registered = formatter.formatters[LINT_MIME]
    assert install(formatter) and formatter.formatters[LINT_MIME] is registered  # a second call finds it
    # the inline backend configures its figure formats after funnelkit.plots is imported, dropping every
    # formatter's Figure entry: the lint must survive that
    select_figure_formats(SimpleNamespace(display_formatter=formatter), {"png"})
    fig = clean_figure()
    fig.axes[0].set_ylabel("")
    data, _ = formatter.format(fig)
    assert data[LINT_MIME]["title"] == "A clean chart"
    assert [f["check"] for f in data[LINT_MIME]["findings"]] == ["ylabel"]
    assert "image/png" in data
    assert LINT_MIME not in formatter.format(object())[0]  # only figures are linted
    # in the report, the figure stays and its lint goes
    output = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>",
                                                          LINT_MIME: data[LINT_MIME]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("plot()", outputs=[output])])
    shown = report._report_notebook(nb).cells[0].outputs[0]["data"]
    assert set(shown) == {"image/png", "text/plain"}
    assert LINT_MIME in nb.cells[0].outputs[0]["data"]  # the executed notebook keeps it for the tests


def test_a_lint_that_fails_is_a_finding_not_a_traceback_in_the_report():
    class Broken:
        def draw_without_rendering(self):
            raise RuntimeError("no canvas")

        def get_axes(self):
            return []

    payload = lint_payload(Broken())
    assert [f["check"] for f in payload["findings"]] == ["lint-error"]
    assert "no canvas" in payload["findings"][0]["message"]


def test_outside_ipython_install_does_nothing():
    assert install() is False
