"""The index page as a manager reads it: one card per report, checks and parameters folded away.

Every page here is rendered from crafted :class:`funnelkit.runner.NotebookRun` rows (no kernel); the runner's
own run of the fixture notebooks is in ``tests/test_runner.py``.
"""
from __future__ import annotations

import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from funnelkit import runner
from funnelkit.index_page import render_index, split_figures
from funnelkit.report import METRIC_MIME, format_metric, notebook_question, read_metrics

EVIL = "<script>alert(1)</script>"
THIS_RUN = {"started_utc": "2026-12-05T12:59:33+00:00", "source_label": "built-in shop", "fingerprint": "fpnow",
            "params_file": "/p/ci.yaml", "params_sha": "shanow", "params_yaml": "simulation:\n  n_users: 200\n",
            "notebooks": ["01_a", "02_b"]}


def metric(name, value, *, unit=None, label=None, ci=None, headline=False):
    found = {"name": name, "value": value, "unit": unit, "label": label or name, "ci": ci}
    return {**found, "headline": True} if headline else found


def row(name="01_a", *, status="ok", metrics=(), **fields):
    """A row as the runner writes it: an ok row describes its own report (this run's data and parameters)."""
    base = dict(name=name, title=f"Title of {name}", status=status, seconds=12.3,
                finished_utc="2026-12-05T13:00:00+00:00", metrics={m["name"]: m for m in metrics},
                params_sha="shanow", source_label="built-in shop", fingerprint="fpnow",
                question=f"Question of {name}?")
    if status == "ok":
        base.update(report_utc="2026-12-05T13:00:00+00:00", report_params_sha="shanow",
                    report_source_label="built-in shop", report_fingerprint="fpnow")
    return runner.NotebookRun(**{**base, **fields})


def card(page: str, name: str) -> str:
    start = page.index(f'id="{name}"')
    return page[page.rindex("<article", 0, start):page.index("</article>", start)]


CHECKS = "<details><summary>Checks and other figures"


def figures_part(card_html: str) -> str:
    """What the card shows before its collapsed checks."""
    return card_html[:card_html.index(CHECKS)]


def details_part(card_html: str) -> str:
    return card_html[card_html.index(CHECKS):]


def render(rows, tmp_path, last_run=THIS_RUN, reports=("01_a",)):
    for name in reports:
        (tmp_path / f"{name}.html").write_text("report")
    return render_index(last_run, [(r.name, r) for r in rows], tmp_path)


BUSINESS = [
    metric("events", 424343, unit="events", label="Events analysed"),  # recorded first, but a check
    metric("conversion", 0.048, unit="share of entrants", label="Overall conversion", ci=[0.046, 0.05],
           headline=True),
    metric("svm_objective_rel_diff", 9.53e-09, label="SVM objective: relative difference"),
    metric("lift", 0.0123, unit="pp", label="Gain at the worst step", ci=[0.01, 0.015], headline=True),
    metric("r2", 0.00448, unit="R²", label="Order value model R²"),
]


# --------------------------------------------------------------------------- the card


def test_a_card_shows_the_headline_figures_and_keeps_the_checks_behind_collapsed_details(tmp_path):
    page = render([row(metrics=BUSINESS)], tmp_path)
    shown, folded = figures_part(card(page, "01_a")), details_part(card(page, "01_a"))
    assert "Overall conversion" in shown and "4.8% of entrants" in shown and "(95% CI 4.6%–5.0%)" in shown
    assert "Gain at the worst step" in shown and "+1.2 pp" in shown and "(95% CI +1.0 to +1.5)" in shown
    for check in ("Events analysed", "SVM objective", "Order value model R²"):
        assert check not in shown and check in folded
    assert "Checks and other figures (3)" in folded
    assert "<details open" not in page, "collapsed by default"


def test_a_notebook_without_headline_figures_shows_its_first_three_labelled_as_they_are(tmp_path):
    plain = [{k: v for k, v in m.items() if k != "headline"} for m in BUSINESS]
    assert split_figures({m["name"]: m for m in plain}) == (plain[:3], plain[3:])
    shown = figures_part(card(render([row(metrics=plain)], tmp_path), "01_a"))
    assert [label in shown for label in ("Events analysed", "Overall conversion", "SVM objective",
                                         "Gain at the worst step", "Order value model R²")] == [True] * 3 + [False] * 2
    assert "424,343</strong>" in shown, "the label says events: the unit is not repeated"


def test_the_not_applicable_marker_is_a_status_with_its_reason_not_a_figure(tmp_path):
    marker = metric("not_applicable", "the log has no purchases", label="Not applicable")
    page = render([row(metrics=[marker, metric("seen", 10, unit="users", label="Accounts seen")])], tmp_path)
    shown = figures_part(card(page, "01_a"))
    assert "Not applicable to this log.</strong> the log has no purchases" in shown
    assert "10 users" in shown and "Not applicable</span>" not in shown
    assert "0 ok, 1 not applicable" in page


def test_a_card_has_title_link_question_status_data_and_run_time(tmp_path):
    shown = figures_part(card(render([row(metrics=BUSINESS)], tmp_path), "01_a"))
    assert '<a href="01_a.html">Title of 01_a</a>' in shown
    assert "Question of 01_a?" in shown and ">ok<" in shown
    assert "Data: built-in shop" in shown and "2026-12-05 13:00:00 UTC" in shown and "12.3 s" in shown


# --------------------------------------------------------------------------- failed and other-data reports


def failed_row(**fields):
    """A failed attempt of this run, the earlier report of other data and parameters still in place."""
    return row("02_b", status="failed", metrics=BUSINESS,
               **{**dict(error="RuntimeError: boom", failed_cell="cell 5 (In [4]): raise RuntimeError('boom')",
                         report_utc="2026-01-02T03:04:05+00:00", report_source_label="older shop",
                         report_fingerprint="fpold", report_params_sha="shaold",
                         report_params_yaml="simulation:\n  n_users: 999\n"), **fields})


def test_a_failed_card_says_before_its_figures_that_they_come_from_a_report_of_other_data(tmp_path):
    page = render([failed_row()], tmp_path, reports=("02_b",))
    shown = figures_part(card(page, "02_b"))
    said = shown.index("Figures below are from the previous report</strong>, made from older shop, data "
                       "<code>fpold</code>, on 2026-01-02 03:04:05 UTC")
    assert said < shown.index("Overall conversion"), "said before the figures, not after"
    assert "report made from other data than the latest run" in shown
    assert "report made with other parameters than the latest run" in shown and "n_users: 999" in shown
    assert "cell 5 (In [4])" in shown and "RuntimeError: boom" in shown
    assert "1 failed (02_b)" in page


def test_a_failed_card_over_a_report_of_the_same_data_still_says_whose_figures_they_are(tmp_path):
    same = failed_row(report_fingerprint="fpnow", report_params_sha="shanow", report_source_label="built-in shop")
    shown = figures_part(card(render([same], tmp_path, reports=("02_b",)), "02_b"))
    assert shown.index("Figures below are from the previous report") < shown.index("Overall conversion")
    assert "other data" not in shown and "other parameters" not in shown


def test_a_failed_card_without_a_previous_report_shows_no_figures(tmp_path):
    page = render([failed_row()], tmp_path, reports=())
    shown = card(page, "02_b")
    for label in ("Overall conversion", "Events analysed", "4.8%", "Kept"):
        assert label not in shown
    assert "no earlier report" in shown and 'href="02_b.html"' not in shown
    assert "RuntimeError: boom" in shown


def test_a_report_of_an_earlier_run_with_other_data_says_so_before_its_figures(tmp_path):
    earlier = row(metrics=BUSINESS, params_sha="shaold", fingerprint="fpold", report_fingerprint="fpold",
                  report_source_label="older shop", report_params_sha="shaold", report_utc="2026-01-02T03:04:05+00:00")
    page = render([earlier], tmp_path, last_run={**THIS_RUN, "notebooks": ["02_b"]})
    shown = figures_part(card(page, "01_a"))
    assert shown.index("Figures below are from a report made from older shop") < shown.index("Overall conversion")
    assert "report made from other data than the latest run" in shown
    for note in ("from an earlier run", "this attempt used other parameters",
                 "this attempt used other data (fingerprint fpold)"):
        assert note in shown
    assert "1 report kept from an earlier run" in page


def test_a_failure_of_an_earlier_run_is_not_called_this_runs(tmp_path):
    page = render([failed_row()], tmp_path, last_run={**THIS_RUN, "notebooks": ["01_a"]}, reports=("02_b",))
    assert "Its latest run failed" in card(page, "02_b") and "This run failed" not in page
    assert "from an earlier run" in card(page, "02_b")


def test_a_report_of_this_runs_data_carries_no_warning(tmp_path):
    page = render([row(metrics=BUSINESS)], tmp_path)
    assert 'class="warn"' not in page and "other data" not in page
    assert "report made from built-in shop, data fpnow, parameters shanow" in details_part(card(page, "01_a"))


# --------------------------------------------------------------------------- the page


def test_the_header_names_the_run_data_version_and_status(tmp_path):
    page = render([row(metrics=BUSINESS), failed_row()], tmp_path)
    header = page[:page.index('<main class="cards">')]
    for text in ("2026-12-05 12:59:33", "built-in shop", "fpnow", "0.1.0", "2 notebooks run: 1 ok, 1 failed (02_b)"):
        assert text in header


def test_the_parameters_are_collapsed_at_the_bottom(tmp_path):
    page = render([row(metrics=BUSINESS)], tmp_path)
    params = page[page.index('<details class="params">'):]
    assert page.index("</main>") < page.index('<details class="params">')
    assert "n_users: 200" in params and "/p/ci.yaml" in params
    assert "n_users: 200" not in page[:page.index('<details class="params">')]


def test_every_string_from_params_data_and_notebooks_is_escaped(tmp_path):
    hostile = row(title=f"T {EVIL}", question=f"Q {EVIL}?", source_label=f"S {EVIL}",
                  metrics=[metric("m", 1.5, unit=f"U{EVIL}", label=f"L {EVIL}", headline=True),
                           metric("c", f"V {EVIL}", label=f"C {EVIL}")])
    failed = failed_row(report_source_label=f"R {EVIL}", report_params_yaml=f"y: {EVIL}", error=f"E {EVIL}")
    last_run = {**THIS_RUN, "source_label": f"D {EVIL}", "params_yaml": f"p: {EVIL}", "params_file": EVIL,
                "fingerprint": EVIL}
    page = render([hostile, failed], tmp_path, last_run=last_run, reports=("01_a", "02_b"))
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for text in ("T ", "Q ", "S ", "U", "L ", "V ", "C ", "R ", "y: ", "E ", "D ", "p: "):
        assert text + escaped in page, text


class _Resources(HTMLParser):
    """Every tag and attribute of a page, to find what would load from elsewhere."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, key, value or "") for key, value in attrs)


def test_the_page_is_self_contained_without_script_or_external_resource(tmp_path):
    hostile_link = row(title="http://evil.example/x.js", metrics=BUSINESS)
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / "02_b.ipynb").write_text("{}")
    page = render([hostile_link, failed_row()], tmp_path, reports=("01_a", "02_b"))
    parsed = _Resources()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attrs if a[1] == "src"]
    hrefs = [value for _, key, value in parsed.attrs if key == "href"]
    assert sorted(hrefs) == ["01_a.html", "02_b.html", "02_b.html", "failed/02_b.ipynb"]
    style = page[page.index("<style>"):page.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert "repeat(auto-fill, minmax(min(100%" in style, "cards in a grid that wraps to one column on a phone"


# --------------------------------------------------------------------------- units, headline flag, question


@pytest.mark.parametrize("found, beside_label", [
    (metric("r2", 0.00448, unit="R²", label="Order value model R²"), "0.00448"),
    (metric("auc", 0.715, unit="ROC-AUC", label="Logistic model ROC-AUC (pre-specified)", ci=[0.686, 0.744]),
     "0.715 (95% CI 0.686–0.744)"),
    (metric("ndcg", 0.0689, unit="NDCG@10", label="ALS NDCG@10 on the test period"), "0.0689"),
    (metric("users", 1357, unit="users", label="Test users evaluated"), "1,357"),
    (metric("conv", 0.3, unit="share of entrants", label="Share of entrants who buy"), "30.0%"),
    # not named by the label: kept
    (metric("users", 409, unit="users", label="Flagged accounts"), "409 users"),
    (metric("bots", 1.0, unit="PR-AUC", label="Best detector on the planted bots"), "1 PR-AUC"),
    (metric("pr", 0.7, unit="PR", label="PR-curve area"), "0.7 PR"),  # "PR" of "PR-curve" is no word of its own
    (metric("lift", 0.00036, unit="pp", label="Lift"), "+0.036 pp"),
])
def test_a_unit_the_label_already_names_is_shown_once(found, beside_label, tmp_path):
    assert format_metric(found, label_shown=True) == beside_label
    assert format_metric(found).startswith(beside_label.split(" (")[0]), "alone, the value keeps its unit"
    page = render([row(metrics=[{**found, "headline": True}])], tmp_path)
    assert f'<strong class="value">{beside_label.split(" (")[0]}</strong>' in page


def test_read_metrics_keeps_the_headline_flag():
    def out(name, **extra):
        data = {"name": name, "value": 1, "unit": None, "label": None, "ci": None, **extra}
        return new_output("display_data", data={METRIC_MIME: data, "text/plain": ""})

    nb = new_notebook(cells=[new_code_cell("", outputs=[out("a", headline=True), out("b", headline=False), out("c")])])
    metrics = read_metrics(nb)
    assert metrics["a"]["headline"] is True and "headline" not in metrics["b"] and "headline" not in metrics["c"]
    assert split_figures(metrics) == ([metrics["a"]], [metrics["b"], metrics["c"]])


def test_the_question_is_the_question_paragraph_of_the_first_markdown_cell_as_plain_text():
    nb = new_notebook(cells=[
        new_code_cell("x = 1"),
        new_markdown_cell("# Title\n\n**Question.** Which `items` sell,\nand [why](http://x)?\n\nThe method follows."),
        new_markdown_cell("**Question.** not this one"),
    ])
    assert notebook_question(nb) == "Which items sell, and why?"
    assert notebook_question(new_notebook(cells=[new_markdown_cell("# T\n\nNo question here.")])) is None
    assert notebook_question(new_notebook(cells=[new_code_cell("1")])) is None


def _notebook_with_question(path: Path, question: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell(f"# Asks\n\n**Question.** {question}"),
                             new_code_cell('params_file = "../params/default.yaml"',
                                           metadata={"tags": ["parameters"]})])
    nbformat.write(nb, path)
    return path


def test_the_runner_stores_the_question_in_the_row_and_fills_it_for_older_rows(tmp_path, monkeypatch):
    import papermill

    from funnelkit.params import load_params

    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    reports.mkdir()
    source = _notebook_with_question(notebooks / "01_a.ipynb", "Does it <b>ask</b>?")
    params_file = tmp_path / "p.yaml"
    params_file.write_text("simulation:\n  n_users: 200\n")
    monkeypatch.setattr(papermill, "inspect_notebook", lambda path: {})
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, **kwargs: shutil.copy(src, dst))
    ctx = runner._Context(load_params(params_file), params_file, reports, "label", "fp", False, 1, io.StringIO())
    done = runner._execute(source, ctx)
    assert done.ok and done.question == "Does it <b>ask</b>?"
    assert runner.NotebookRun.from_json(done.to_json()).question == done.question
    # a row of runs.json written before rows kept the question: read from the executed notebook kept beside it
    older = {**done.to_json(), "question": None}
    runner._write_index(reports, {"notebooks": {"01_a": older}}, [], [source], ctx, params_file, "2026-01-01")
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert "Does it &lt;b&gt;ask&lt;/b&gt;?" in figures_part(card(page, "01_a"))
    kept = json.loads((reports / "runs.json").read_text())["notebooks"]["01_a"]
    assert kept == {**done.to_json(), "question": None}, "the row of an earlier run stays as it was written"
