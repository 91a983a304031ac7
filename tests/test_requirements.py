"""What a study needs: the check, the card that replaces a study the log cannot support, its status on the index."""
import nbformat
import pandas as pd
import pytest

from funnelkit import report, requirements
from funnelkit.eventlog import EventLog
from funnelkit.index_page import render_index
from funnelkit.requirements import StudyNotApplicable
from funnelkit.runner import NotebookRun

T0 = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture
def events():
    """Two users, no item_id, no purchase."""
    return EventLog.from_frame(pd.DataFrame({
        "user_id": ["a", "a", "b"], "session_id": ["s1", "s1", "s2"],
        "event_time": [T0, T0 + pd.Timedelta("1min"), T0], "event_type": ["view", "cart", "view"],
        "price": [10.0, 10.0, 5.0]}))


def test_missing_names_what_the_study_needs_and_what_the_log_has(events):
    problem = requirements.missing(events, study="The recommendation study", columns=["item_id", "price"])
    assert isinstance(problem, StudyNotApplicable)
    assert problem.columns == ["item_id"]  # price is there
    assert str(problem) == ("The recommendation study needs the column item_id; your log has columns "
                            "user_id, session_id, event_time, event_type, price.")


def test_missing_event_types_are_named_with_the_event_types_found(events):
    problem = requirements.missing(events, study="The drivers study", event_types=["purchase", "cart"])
    assert problem.event_types == ["purchase"]
    assert str(problem) == "The drivers study needs purchase events; your log has event types cart, view."


def test_nothing_missing_gives_none_and_require_passes(events):
    assert requirements.missing(events, study="x", columns=["price"], event_types=["view"]) is None
    requirements.require(events, study="x", columns=["price"], event_types=["view"])
    with pytest.raises(StudyNotApplicable, match="needs the column item_id"):
        requirements.require(events, study="x", columns=["item_id"])


def test_unavailable_features_are_those_whose_column_is_missing(events):
    sources = {"log_price": "price", "distinct_items": "item_id", "distinct_categories": "category",
               "top_item_share": "item_id"}
    left_out = requirements.unavailable(events, sources)
    assert left_out == {"distinct_items": "the log has no item_id column",
                        "distinct_categories": "the log has no category column",
                        "top_item_share": "the log has no item_id column"}
    text = requirements.left_out_text(left_out, "the features")
    assert text == ("**Left out of the features on this log:** `distinct_items`, `top_item_share` (the log has no "
                    "item_id column); `distinct_categories` (the log has no category column).")
    assert requirements.left_out_text({}) == ""


# --------------------------------------------------------------------------- the card and the status


@pytest.fixture
def shell():
    """An in-process IPython shell (what a kernel runs), removed afterwards so other tests see no IPython."""
    from IPython.core.interactiveshell import InteractiveShell

    instance = InteractiveShell.instance()
    yield instance
    InteractiveShell.clear_instance()


def test_not_applicable_skips_every_later_cell(shell):
    shell.user_ns["report"] = report
    assert shell.run_cell("report.not_applicable('The study needs item_id; your log has user_id.')").success
    after = shell.run_cell("raise RuntimeError('this cell must not run')\nran = True")
    assert after.success and after.error_in_exec is None
    assert "ran" not in shell.user_ns


def test_every_skipped_cell_says_so_in_one_line(shell, capsys):
    """A silent no-op would look, in JupyterLab, like a cell that ran (even one re-run after fixing params)."""
    shell.user_ns["report"] = report
    shell.user_ns["cannot"] = StudyNotApplicable("The recommendation study", ["item_id"], [], ["user_id"], [])
    assert shell.run_cell("report.not_applicable(cannot)").success
    capsys.readouterr()
    for _ in range(2):
        assert shell.run_cell("ran = True").success
        assert capsys.readouterr().out == (
            f"skipped: The recommendation study is not applicable to this log ({shell.user_ns['cannot']}); "
            "restart the kernel to run it again\n")
    assert "ran" not in shell.user_ns


def test_not_applicable_outside_a_kernel_raises_the_reason():
    reason = StudyNotApplicable("The study", ["item_id"], [], ["user_id"], [])
    with pytest.raises(StudyNotApplicable):
        report.not_applicable(reason)


def _executed_notebook() -> nbformat.NotebookNode:
    """What a kernel leaves after ``report.not_applicable``: the card and the metric in one cell."""
    metric = {"name": report.NOT_APPLICABLE, "value": "The study needs <item_id>", "unit": None,
              "label": "Not applicable", "ci": None}
    card = nbformat.v4.new_code_cell("report.not_applicable(cannot)", outputs=[
        nbformat.v4.new_output("display_data", data={"text/html": "<div>CARD</div>", "text/plain": "CARD"}),
        nbformat.v4.new_output("display_data", data={report.METRIC_MIME: metric, "text/plain": ""})])
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# The question"), card,
        nbformat.v4.new_markdown_cell("## Headline of a study that did not run"),
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", text="skipped cell output")])])


def test_the_report_of_a_study_not_applicable_ends_at_its_card(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_executed_notebook(), path)
    report.export_html(path, tmp_path / "nb.html")
    html = (tmp_path / "nb.html").read_text()
    assert "CARD" in html and "The question" in html
    assert "did not run" not in html and "skipped cell output" not in html
    assert report.not_applicable_reason(report.read_metrics(path)) == "The study needs <item_id>"


def test_the_index_says_not_applicable_with_the_reason_not_ok(tmp_path):
    metrics = report.read_metrics(_executed_notebook())
    metrics["n"] = {"name": "n", "value": 3, "unit": "users", "label": "Users", "ci": None}
    row = NotebookRun(name="03_x", title="Recs", status="ok", seconds=1.0, finished_utc="2026-01-01T00:00:00+00:00",
                      metrics=metrics)
    page = render_index({"notebooks": ["03_x"]}, [("03_x", row)], tmp_path)
    assert '<span class="badge notapplicable">not applicable</span>' in page
    assert "The study needs &lt;item_id&gt;" in page  # escaped
    assert 'class="badge ok"' not in page
    # the other figure is on the card (its label names the unit: shown once); the reason is not a figure
    assert '<span class="label">Users</span><strong class="value">3</strong>' in page
    assert 'Not applicable</span>' not in page


def test_a_hint_ends_the_message(events):
    problem = requirements.missing(events, study="S", event_types=["purchase"], hint="Map it with data.event_names.")
    assert str(problem) == "S needs purchase events; your log has event types cart, view. Map it with data.event_names."


def test_event_type_counts_are_most_frequent_first_without_missing_types():
    from funnelkit.recommend.matrix import event_types

    log = EventLog.from_frame(pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2", "u3"], "event_time": pd.to_datetime(["2026-03-01"] * 5, utc=True),
        "event_type": ["view", "purchase", "view", None, "cart"]}))
    assert requirements.event_type_counts(log) == {"view": 2, "cart": 1, "purchase": 1}
    assert list(requirements.event_type_counts(log)) == ["view", "cart", "purchase"]
    assert event_types(log) == {"view", "cart", "purchase"}
