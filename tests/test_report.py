"""report.record / read_metrics / export_html / format_metric.

One notebook is built here and executed once (module fixture, one kernel start);
everything else works on hand-made notebooks without a kernel.
"""
from __future__ import annotations

import json
import math
import re

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from funnelkit import report
from funnelkit.report import METRIC_MIME, export_html, format_metric, notebook_title, read_metrics, record

SECRET_SOURCE = "HIDDEN_SOURCE_TOKEN_7f3a"
VISIBLE_OUTPUT = "VISIBLE_OUTPUT_TOKEN_91c2"
PARAMS_SOURCE = "PARAMS_CELL_TOKEN_55d0"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A small notebook executed in-process: metrics, a print, a PNG plot, an expected error."""
    folder = tmp_path_factory.mktemp("report")
    nb = new_notebook(cells=[
        new_markdown_cell("Some intro text.\n\n## The *report* title\n\nMore text."),
        new_code_cell(f'params_file = "{PARAMS_SOURCE}"', metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import numpy as np\n"
            "from funnelkit import report\n"
            'report.record("conversion", np.float64(0.0234), unit="share", label="Conversion",\n'
            "              ci=(np.float32(0.021), np.float64(0.025)))\n"
            'report.record("users", np.int64(12345), unit="users")\n'
            'report.record("undefined", float("nan"), ci=(float("nan"), float("inf")))\n'
            'report.record("step", "cart", label="Worst step")\n'
            'report.record("users", 54321, unit="users")  # a later record wins'
        ),
        new_code_cell(f'# {SECRET_SOURCE}\nprint("{VISIBLE_OUTPUT[:10]}" + "{VISIBLE_OUTPUT[10:]}")'),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([0, 1], [0, 1]);"
        ),
        new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(folder)}}).execute()
    path = folder / "executed.ipynb"
    nbformat.write(nb, path)
    html_path = folder / "out" / "executed.html"
    export_html(path, html_path)
    return path, html_path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- record / read_metrics


def test_record_round_trips_through_an_executed_notebook(executed):
    path, _ = executed
    metrics = read_metrics(path)
    assert list(metrics) == ["conversion", "users", "undefined", "step"]
    assert metrics["conversion"] == {"name": "conversion", "value": 0.0234, "unit": "share",
                                     "label": "Conversion", "ci": [pytest.approx(0.021), 0.025]}
    assert metrics["users"]["value"] == 54321, "a later record of the same name wins"
    assert metrics["step"] == {"name": "step", "value": "cart", "unit": None, "label": "Worst step", "ci": None}


def test_numpy_scalars_and_nan_are_stored_as_plain_json(executed):
    path, _ = executed

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in the notebook")

    raw = json.loads(path.read_text(), parse_constant=reject)
    bundles = [o["data"][METRIC_MIME] for c in raw["cells"] for o in c.get("outputs", [])
               if METRIC_MIME in o.get("data", {})]
    assert len(bundles) == 5
    undefined = next(b for b in bundles if b["name"] == "undefined")
    assert undefined["value"] is None and undefined["ci"] is None
    users = next(b for b in bundles if b["name"] == "users")
    assert type(users["value"]) is int


def test_metric_outputs_render_as_nothing_in_notebook_front_ends(executed):
    """Only our MIME type plus an empty text/plain: JupyterLab, VS Code and nbconvert show nothing."""
    path, _ = executed
    nb = nbformat.read(path, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", []) if METRIC_MIME in o.get("data", {})]
    assert outputs and all(o.output_type == "display_data" for o in outputs)
    assert all(set(o.data) == {METRIC_MIME, "text/plain"} and o.data["text/plain"] == "" for o in outputs)


def test_read_metrics_keeps_first_position_and_last_value_without_a_kernel():
    def out(name, value):
        return new_output("display_data", data={METRIC_MIME: {"name": name, "value": value, "unit": None,
                                                              "label": None, "ci": None}, "text/plain": ""})

    nb = new_notebook(cells=[
        new_code_cell("", outputs=[out("a", 1), new_output("stream", name="stdout", text="x\n"), out("b", 2)]),
        new_markdown_cell("text"),
        new_code_cell("", outputs=[out("a", 3)]),
    ])
    assert {k: m["value"] for k, m in read_metrics(nb).items()} == {"a": 3, "b": 2}
    assert list(read_metrics(nb)) == ["a", "b"]


@pytest.mark.parametrize("name", ["", "1st", "has space", "dash-name", "dot.name", None, 3])
def test_record_rejects_names_that_are_not_identifiers(name):
    with pytest.raises(ValueError, match="identifier"):
        record(name, 1)


@pytest.mark.parametrize("ci", [(1,), (1, 2, 3), "ab", 0.5, ("low", "high"), (0.3, 0.1), (True, 1)])
def test_record_rejects_a_ci_that_is_not_two_ordered_numbers(ci):
    with pytest.raises(ValueError, match="ci"):
        record("x", 0.2, ci=ci)


def test_record_rejects_non_scalar_values_and_non_string_units():
    with pytest.raises(ValueError, match="value"):
        record("x", [1, 2])
    with pytest.raises(ValueError, match="unit"):
        record("x", 1, unit=5)


def test_record_outside_a_kernel_validates_and_prints_nothing(capsys):
    assert record("fine_name", np.float32(0.5), ci=(0.1, 0.9)) is None
    assert capsys.readouterr() == ("", "")


# --------------------------------------------------------------------------- export_html


def test_export_html_hides_code_but_keeps_its_output(executed):
    _, page = executed
    assert VISIBLE_OUTPUT in page
    assert SECRET_SOURCE not in page
    assert "report.record" not in page and "matplotlib.use" not in page
    assert not re.search(r'class="[^"]*jp-(InputPrompt|OutputPrompt|CodeMirrorEditor)', page)
    assert "In&nbsp;[" not in page


def test_export_html_leaves_out_parameter_cells_and_metric_outputs(executed):
    _, page = executed
    assert PARAMS_SOURCE not in page
    assert "funnelkit.metric" not in page and "Conversion" not in page
    # cells left: markdown, the print, the plot, the error; no empty box for the record-only cell
    assert len(re.findall(r'class="jp-Cell jp-CodeCell', page)) == 3


def test_export_html_embeds_the_png_and_references_no_local_file(executed):
    _, page = executed
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page)
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', page)
    assert sources, "expected at least the embedded image"
    assert all(s.startswith(("data:", "https://")) for s in sources), sources


def test_export_html_title_is_the_first_markdown_heading(executed):
    _, page = executed
    assert "<title>The report title</title>" in page


def test_export_html_shows_a_cell_error_as_readable_text(executed):
    _, page = executed
    assert "ZeroDivisionError" in page
    assert "\x1b[" not in page, "ANSI colour codes must be converted, not copied"


def test_export_html_replaces_the_file_atomically(tmp_path, executed):
    path, page = executed
    target = tmp_path / "r.html"
    target.write_text("old")
    export_html(path, target)
    assert target.read_text(encoding="utf-8") == page
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"], "no temporary file left behind"


@pytest.mark.parametrize("source, title", [
    ("# Plain title", "Plain title"),
    ("Intro\n\n## Second-level `code` **bold** ##", "Second-level code bold"),
    ("Setext title\n============\n\ntext", "Setext title"),
    ("```\n# not a heading\n```\n\n# Real", "Real"),
    ("#not a heading either", None),
])
def test_notebook_title_is_the_first_heading(source, title):
    nb = new_notebook(cells=[new_code_cell("# a comment"), new_markdown_cell(source)])
    assert notebook_title(nb) == title


# --------------------------------------------------------------------------- format_metric


@pytest.mark.parametrize("metric, text", [
    ({"value": 0.0234, "unit": "share", "ci": [0.021, 0.025]}, "2.3% (95% CI 2.1%–2.5%)"),
    ({"value": 0.0234, "unit": "share of entrants", "ci": [0.021, 0.025]}, "2.3% of entrants (95% CI 2.1%–2.5%)"),
    ({"value": 0.00123, "unit": "share"}, "0.12%"),
    ({"value": 0.0000123, "unit": "share"}, "0.0012%"),
    # a rounding error of an interval bound is not a figure: no scientific notation
    ({"value": 0.0, "unit": "share of entrants", "ci": [4.3e-19, 0.35]}, "0.0% of entrants (95% CI < 0.001%–35.0%)"),
    ({"value": -2e-18, "unit": "share"}, "> −0.001%"),
    ({"value": 1.0, "unit": "share"}, "100.0%"),
    ({"value": 1234567, "unit": "users"}, "1,234,567 users"),
    ({"value": 1234567.0, "unit": "events"}, "1,234,567 events"),
    ({"value": 12345.678, "unit": "EUR", "ci": [11000, 13500.5]}, "12,346 EUR (95% CI 11,000–13,500)"),
    ({"value": 12.5, "unit": "USD"}, "12.50 USD"),
    ({"value": 3.14159, "unit": "min"}, "3.14 min"),
    ({"value": 0.75, "unit": "share", "ci": [None, 0.9]}, "75.0% (95% CI n/a–90.0%)"),
    ({"value": "cart", "unit": None}, "cart"),
    ({"value": None, "unit": "users"}, "n/a"),
    ({"value": True}, "yes"),
    ({"value": 7}, "7"),
])
def test_format_metric(metric, text):
    assert format_metric(metric) == text


def test_format_metric_accepts_what_record_builds():
    metric = report._metric("x", np.float64(0.5), unit="share", label=None, ci=(0.4, 0.6))
    assert format_metric(metric) == "50.0% (95% CI 40.0%–60.0%)"
    assert not math.isnan(metric["value"])


def test_a_difference_of_shares_is_shown_in_signed_percentage_points_never_as_percent():
    from funnelkit.report import format_metric

    text = format_metric({"value": 0.00036, "unit": "pp", "ci": [-0.0001, 0.0012]})
    assert text == "+0.036 pp (95% CI −0.01 to +0.12)"
    assert "%" not in text.replace("95% CI", "")
    assert format_metric({"value": -0.0123, "unit": "pp"}) == "−1.2 pp"
    assert format_metric({"value": 0.0, "unit": "pp"}) == "0 pp"


def test_headline_flag_is_recorded_and_must_be_a_bool():
    from funnelkit.report import _metric

    assert _metric("x", 1, unit=None, label=None, ci=None, headline=True)["headline"] is True
    assert _metric("x", 1, unit=None, label=None, ci=None)["headline"] is False
    with pytest.raises(ValueError, match="headline"):
        _metric("x", 1, unit=None, label=None, ci=None, headline="yes")


# --------------------------------------------------------------------------- offline HTML, folds (issue 18)

import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from bs4 import BeautifulSoup  # noqa: E402  (nbconvert's own dependency)

from tests.reference.offline_html import offline_problems  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("html, kind", [
    ('<script src="https://cdn.example/require.js"></script>', "<script src>"),
    ('<script src="lib/local.js"></script>', "<script src>"),
    ('<link rel="stylesheet" href="https://fonts.example/css?family=Roboto">', "<link"),
    ('<link rel="preload" as="font" href="font.woff2">', "<link"),
    ("<style>@import 'theme.css';</style>", "@import"),
    ("<style>@font-face { src: url(https://fonts.example/a.woff2); }</style>", "url()"),
    ('<div style="background: url(\'http://example.com/a.png\')">x</div>', "url()"),
    ('<script type="module">const m = await import("https://cdn.example/mermaid.mjs");</script>', "<script> fetches"),
    ('<img src="http://example.com/chart.png">', "<img src>"),
    (r"<p>Least squares: $\hat\beta = \arg\min_\beta \lVert y - X\beta\rVert^2$.</p>", "unrendered maths"),
    ("<p>with $k$ items</p>", "unrendered maths"),
    (r"<td>$$L = \sum_u x_u$$</td>", "unrendered maths"),
    (r"<li>inline \(x^2\) too</li>", "unrendered maths"),
    (r"<p>\begin{aligned} a &= b \end{aligned}</p>", "unrendered maths"),
    (r"<p>after <br> a void tag $x_t$</p>", "unrendered maths"),
])
def test_offline_check_finds_each_external_resource_and_unrendered_maths(html, kind):
    problems = offline_problems(f"<html><head></head><body>{html}</body></html>")
    assert problems and all(kind in problem for problem in problems), problems


def test_offline_check_accepts_links_data_uris_code_prices_and_mathml():
    page = (
        '<html><head><style>.x { background: url(data:image/png;base64,AAAA); } .y { mask: url(#m); }</style></head>'
        '<body><a href="https://example.com/other.html">other report</a> <a href="03_files/lists.csv">CSV</a>'
        '<img src="data:image/png;base64,iVBOR"><p>It costs $5 and $10, or $5–$7.</p>'
        r"<p>Code: <code>$\hat\beta$</code></p><pre>echo $HOME $PATH$</pre>"
        r'<p><math display="inline"><mi>x</mi><mtext>$k$</mtext></math></p>'
        "<script>var a = 1;</script></body></html>"
    )
    assert offline_problems(page) == []


def test_latex_to_mathml_escapes_text_spells_arg_and_refuses_what_it_cannot_convert():
    from funnelkit.math_render import latex_to_mathml

    mathml = latex_to_mathml(r"a<b \text{<script>} \arg\min_\beta x \! y")
    assert "<script>" not in mathml and "&lt;script&gt;" in mathml and "<mo>&lt;</mo>" in mathml
    assert "\\arg" not in BeautifulSoup(mathml, "html.parser").get_text()  # latex2mathml alone leaves "\arg"
    assert 'width="-0.1667em"' in mathml  # \! as a length Chromium understands, not "negativethinmathspace"
    assert 'display="block"' in latex_to_mathml("x", display=True)
    with pytest.raises(ValueError, match=r"\\foo"):
        latex_to_mathml(r"\foo x")


def _export(tmp_path, cells, name="crafted"):
    nb = new_notebook(cells=cells)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    export_html(path, tmp_path / f"{name}.html")
    return (tmp_path / f"{name}.html").read_text(encoding="utf-8")


def test_export_renders_every_formula_of_the_notebooks_as_mathml_and_loads_nothing(tmp_path):
    # every Markdown cell of the project's notebooks that holds maths, plus the cases that must stay text
    sources = [cell.source for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
               for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown" and "$" in cell.source]
    assert len(sources) >= 5 and any("\\arg\\min" in s for s in sources) and any("| metric |" in s for s in sources)
    sources.append("A price: it costs $5 and $10, a range $12.50–$14. In code: `$x$` and\n\n```\n$HOME\n```\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = _export(tmp_path, [new_markdown_cell(s) for s in sources])
    assert not [w for w in caught if "LaTeX" in str(w.message)], "a formula was left as text"
    assert offline_problems(page) == []
    soup = BeautifulSoup(page, "html.parser")
    assert len(soup.find_all("math")) > 80
    assert soup.find("math", attrs={"display": "block"}) is not None  # $$…$$ is a display formula
    assert "costs $5 and $10" in soup.get_text() and "range $12.50–$14" in soup.get_text()
    assert [c.get_text() for c in soup.find_all("code")][-2:] == ["$x$", "$HOME\n"]
    assert not soup.find_all("script")


def _table_output(rows):
    import pandas as pd

    frame = pd.DataFrame({"step": [f"s{i}" for i in range(rows)], "odds ratio": range(rows)})
    return new_output("execute_result", data={"text/html": frame.to_html(), "text/plain": "table"}, execution_count=1)


def _cell_with(output):
    cell = new_code_cell("frame")
    cell.outputs = [output]
    return cell


def test_method_sections_fold_down_to_the_next_heading_of_the_same_or_higher_level(tmp_path):
    page = _export(tmp_path, [
        new_markdown_cell("# Report title\n\nIntro FINDING_A."),
        new_markdown_cell("```\n## Method inside code is no heading\n```\nFINDING_B"),
        new_markdown_cell("Prose FINDING_C before.\n\n## Method and checks\n\nDerivation METHOD_A with $x_t$."),
        _cell_with(new_output("stream", name="stdout", text="METHOD_B output\n")),
        new_markdown_cell("### Details\n\nMETHOD_C deeper"),
        new_markdown_cell("## Next section\n\nFINDING_D after"),
        new_markdown_cell("## Method\n\nMETHOD_D to the end"),
        _cell_with(new_output("stream", name="stdout", text="METHOD_E last output\n")),
    ])
    soup = BeautifulSoup(page, "html.parser")
    folds = soup.find_all("details", class_="funnelkit-fold")
    assert [fold.summary.get_text(" ", strip=True).rstrip("¶ ") for fold in folds] == ["Method and checks", "Method"]
    assert not any(fold.has_attr("open") for fold in folds)  # closed by default
    assert folds[0].summary.find("h2") is not None  # the heading itself is the summary, not repeated below
    assert len(soup.find_all(string=re.compile("Method and checks"))) == 1
    inside = [fold.get_text() for fold in folds]
    for token in ("METHOD_A", "METHOD_B", "METHOD_C"):
        assert token in inside[0]
    for token in ("METHOD_D", "METHOD_E"):
        assert token in inside[1]
    for token in ("FINDING_A", "FINDING_B", "FINDING_C", "FINDING_D"):
        assert token in page and not any(token in text for text in inside), token
    assert folds[0].find("math") is not None  # maths inside a fold is rendered too
    assert page.count("<details") == page.count("</details>") == 2  # well-formed, not left to the browser to close
    assert offline_problems(page) == []


def test_a_table_of_more_than_20_rows_is_folded_with_its_size_and_columns(tmp_path):
    page = _export(tmp_path, [
        new_markdown_cell("# Tables"),
        _cell_with(_table_output(20)),
        _cell_with(_table_output(45)),
    ])
    soup = BeautifulSoup(page, "html.parser")
    folds = soup.find_all("details", class_="funnelkit-table")
    assert len(folds) == 1 and not folds[0].has_attr("open")
    assert folds[0].summary.get_text() == "Show all 45 rows (step, odds ratio)"
    assert len(folds[0].find("tbody").find_all("tr")) == 45  # the whole table, behind the summary
    open_tables = [t for t in soup.find_all("table") if not t.find_parent("details")]
    assert len(open_tables) == 1 and len(open_tables[0].find("tbody").find_all("tr")) == 20


def test_a_latex_output_is_mathml_too(tmp_path):
    # IPython.display.Math(...) shows as text/latex: MathJax typeset it, the export now does
    page = _export(tmp_path, [_cell_with(new_output(
        "display_data", data={"text/latex": r"$$\hat\beta = (X^\top X)^{-1} X^\top y$$", "text/plain": "<Math>"}))])
    assert offline_problems(page) == []
    assert BeautifulSoup(page, "html.parser").find("math", attrs={"display": "block"}) is not None


def test_a_negative_figure_has_a_real_minus_and_an_interval_across_zero_reads_low_to_high():
    text = format_metric({"value": 351.7, "unit": "EUR", "ci": [-663.01, 1366.0]})
    assert text == "351.70 EUR (95% CI −663.01 to 1,366)" and "-" not in text
    assert format_metric({"value": -12.5, "unit": "users"}) == "−12.5 users"
    assert format_metric({"value": 5.0, "unit": "EUR", "ci": [1.0, 9.0]}) == "5.00 EUR (95% CI 1.00–9.00)"
