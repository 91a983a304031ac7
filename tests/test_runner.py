"""The runner and the CLI on two small fixture notebooks.

``tests/fixtures/notebooks/01_metric.ipynb`` records metrics from the params file
it is given and writes a CSV to its ``output_dir``; ``02_fails.ipynb`` writes a
file, then raises in its fifth cell. Kernel starts cost ~2 s
each, so the notebooks are executed only four times: one parallel run of both
(module fixture), one ``only`` run, one CLI run.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from funnelkit import cli, runner
from funnelkit.errors import ParamsError
from funnelkit.report import read_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
PREVIOUS_HTML = b"<html><body>previous report of 02_fails</body></html>"
PREVIOUS_ROW = {  # the runs.json row of that earlier report: other data, other parameters
    "name": "02_fails", "title": "Failing fixture", "status": "ok", "seconds": 3.0,
    "finished_utc": "2026-01-02T03:04:05+00:00", "report_utc": "2026-01-02T03:04:05+00:00",
    "metrics": {"kept_share": {"name": "kept_share", "value": 0.125, "unit": "share", "label": "Kept share"}},
    "params_sha": "0123456789ab", "source_label": "older shop", "fingerprint": "olderfingerprint",
}


def card(page: str, title: str) -> str:
    """The index card (``<article>``) holding ``title``."""
    start = page.rindex("<article", 0, page.index(title))
    return page[start:page.index("</article>", start)]


def fake_prepare(params):
    return "test data <b>label</b>", "abc123"


def no_check(params, stream, **sections):
    """The fixture notebooks read no data: skip the preflight (tests/test_preflight.py covers it)."""


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("params") / "small.yaml"
    path.write_text("simulation:\n  n_users: 200\n  days: 7\n")
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, params_file):
    """Both fixture notebooks, jobs=2, into a reports folder holding an earlier report of 02 and a stale failure of 01."""
    reports = tmp_path_factory.mktemp("run") / "reports"
    (reports / "failed").mkdir(parents=True)
    (reports / "02_fails.html").write_bytes(PREVIOUS_HTML)
    (reports / "02_fails_files").mkdir()
    (reports / "02_fails_files" / "previous.csv").write_text("from the previous successful run\n")
    (reports / "01_metric_files").mkdir()
    (reports / "01_metric_files" / "stale.csv").write_text("from an older run\n")
    (reports / "failed" / "01_metric.ipynb").write_text("{}")
    (reports / "runs.json").write_text(json.dumps({"notebooks": {"02_fails": PREVIOUS_ROW}}))
    stream = io.StringIO()
    summary = runner.run(params_file, jobs=2, notebooks_dir=FIXTURES, reports_dir=reports, prepare=fake_prepare,
                         check=no_check, progress=False, stream=stream)
    return summary, reports, stream.getvalue()


# --------------------------------------------------------------------------- a run


def test_fixture_notebooks_are_committed_clean_with_one_parameters_cell():
    for path in sorted(FIXTURES.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert [c.source.splitlines()[0] for c in tagged] == ['params_file = "../params/default.yaml"'], path.name


def test_successful_notebook_gets_html_and_executed_notebook(first_run):
    summary, reports, _ = first_run
    ok = {r.name: r for r in summary.runs}["01_metric"]
    assert ok.status == "ok" and ok.seconds > 0
    assert (reports / "01_metric.html").is_file()
    metrics = read_metrics(reports / "01_metric.ipynb")
    assert metrics["n_users"]["value"] == 200, "the notebook read the params file the runner injected"
    assert metrics["runs_in_notebook_folder"]["value"] is True, "the kernel's working folder is the notebook's"
    assert ok.metrics == metrics
    assert "fixture output 7 days" in (reports / "01_metric.html").read_text(encoding="utf-8")


def test_files_of_a_successful_notebook_replace_the_previous_ones(first_run):
    _, reports, _ = first_run
    assert sorted(p.name for p in (reports / "01_metric_files").iterdir()) == ["table.csv"]
    assert (reports / "01_metric_files" / "table.csv").read_text() == "a,b\n1,2\n"


def test_files_of_a_failed_notebook_never_replace_the_previous_ones(first_run):
    _, reports, _ = first_run
    assert sorted(p.name for p in (reports / "02_fails_files").iterdir()) == ["previous.csv"]


def test_stale_failed_notebook_is_removed_after_success(first_run):
    _, reports, _ = first_run
    assert not (reports / "failed" / "01_metric.ipynb").exists()


def test_failing_notebook_fails_the_run_and_keeps_its_traceback(first_run):
    summary, reports, _ = first_run
    assert not summary.ok
    assert [r.name for r in summary.failed] == ["02_fails"]
    failed = reports / "failed" / "02_fails.ipynb"
    nb = nbformat.read(failed, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert [(e.ename, e.evalue) for e in errors] == [("RuntimeError", "planted failure in fixture")]
    assert any("planted failure" in line for line in errors[0].traceback)
    assert not (reports / "02_fails.ipynb").exists()


def test_failing_notebook_leaves_the_previous_report_untouched(first_run):
    _, reports, _ = first_run
    assert (reports / "02_fails.html").read_bytes() == PREVIOUS_HTML


def test_failure_message_names_notebook_cell_and_error(first_run):
    _, _, messages = first_run
    line = next(m for m in messages.splitlines() if "02_fails" in m)
    assert "cell 5" in line and 'raise RuntimeError("planted failure in fixture")' in line
    assert "RuntimeError: planted failure in fixture" in messages
    assert "01_metric.ipynb ok" in messages


def test_no_temporary_files_are_left(first_run):
    _, reports, _ = first_run
    names = sorted(str(p.relative_to(reports)) for p in reports.rglob("*"))
    assert names == [".funnelkit.lock", "01_metric.html", "01_metric.ipynb", "01_metric_files", "01_metric_files/table.csv",
                     "02_fails.html", "02_fails_files", "02_fails_files/previous.csv", "failed",
                     "failed/02_fails.ipynb", "index.html", "runs.json"]


def test_index_lists_notebooks_metrics_and_data(first_run):
    _, reports, _ = first_run
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert 'href="01_metric.html"' in page
    assert "Failing fixture" in page and 'href="failed/02_fails.ipynb"' in page
    assert 'href="02_fails.html">previous report' in page
    metric_card = card(page, "Metric fixture")
    assert "Users &lt;simulated&gt;" in metric_card and ">200</strong>" in metric_card
    assert "2.3%</strong>" in metric_card and "(95% CI 2.1%–2.5%)" in metric_card
    assert "abc123" in page and "0.1.0" in page
    params = page[page.index('<details class="params">'):]
    assert "n_users: 200" in params, "the parameters used are shown, behind a collapsed <details>"
    assert "RuntimeError: planted failure in fixture" in card(page, "Failing fixture")


def test_index_escapes_strings_from_notebooks_and_data(first_run):
    _, reports, _ = first_run
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "Metric fixture &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Users &lt;simulated&gt;" in page
    assert "test data &lt;b&gt;label&lt;/b&gt;" in page


def test_failed_attempt_keeps_the_previous_reports_metrics_and_provenance(first_run):
    """The HTML left in place is the earlier report: its row keeps that report's metrics, time, data and params."""
    summary, reports, _ = first_run
    row = json.loads((reports / "runs.json").read_text())["notebooks"]["02_fails"]
    assert row["status"] == "failed" and row["fingerprint"] == "abc123"  # the attempt
    assert row["metrics"] == PREVIOUS_ROW["metrics"] and row["report_utc"] == PREVIOUS_ROW["report_utc"]
    assert (row["report_fingerprint"], row["report_params_sha"]) == ("olderfingerprint", "0123456789ab")
    page = (reports / "index.html").read_text(encoding="utf-8")
    failing_row = card(page, "Failing fixture")
    warning = failing_row.index("from the previous report")
    assert warning < failing_row.index("Kept share") and "12.5%</strong>" in failing_row, "said before the figure"
    assert "report made from other data than the latest run" in failing_row
    assert "report made with other parameters than the latest run" in failing_row
    assert "olderfingerprint" in failing_row and "older shop" in failing_row
    ok_row = card(page, "Metric fixture")
    assert "report made from" in ok_row and "abc123" in ok_row and "other data" not in ok_row


def test_manifest_records_every_notebook(first_run):
    _, reports, _ = first_run
    manifest = json.loads((reports / "runs.json").read_text())
    assert set(manifest["notebooks"]) == {"01_metric", "02_fails"}
    assert manifest["last_run"]["fingerprint"] == "abc123"


def test_only_run_keeps_the_other_notebooks_rows(first_run, params_file, tmp_path):
    _, reports, _ = first_run
    copy = tmp_path / "reports"
    shutil.copytree(reports, copy)
    summary = runner.run(params_file, only=["01"], notebooks_dir=FIXTURES, reports_dir=copy, prepare=fake_prepare,
                         check=no_check, progress=False, stream=io.StringIO())
    assert summary.ok and [r.name for r in summary.runs] == ["01_metric"]
    page = (copy / "index.html").read_text(encoding="utf-8")
    assert "Failing fixture" in page and "from an earlier run" in page
    assert 'href="failed/02_fails.ipynb"' in page
    assert set(json.loads((copy / "runs.json").read_text())["notebooks"]) == {"01_metric", "02_fails"}


# --------------------------------------------------------------------------- before anything runs


def test_params_error_stops_the_run_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation:\n  n_user: 200\n")
    called = []
    with pytest.raises(ParamsError, match="n_user"):
        runner.run(bad, notebooks_dir=FIXTURES, reports_dir=tmp_path / "reports",
                   prepare=lambda p: called.append(p) or ("x", "y"))
    assert not called
    assert not (tmp_path / "reports").exists()


def test_unknown_only_name_lists_the_available_notebooks(params_file, tmp_path):
    with pytest.raises(ParamsError, match="unknown notebook 'nope'.*01_metric, 02_fails"):
        runner.run(params_file, only=["nope"], notebooks_dir=FIXTURES, reports_dir=tmp_path / "r",
                   prepare=fake_prepare)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("only, names", [
    (["01"], ["01_metric"]),
    (["02_fails.ipynb", "01_metric"], ["01_metric", "02_fails"]),
    (None, ["01_metric", "02_fails"]),
])
def test_discover_notebooks_accepts_names_and_prefixes(only, names):
    assert [p.stem for p in runner.discover_notebooks(FIXTURES, only)] == names


def test_ambiguous_prefix_is_an_error():
    with pytest.raises(ParamsError, match="ambiguous.*01_metric, 02_fails"):
        runner.discover_notebooks(FIXTURES, ["0"])


# --------------------------------------------------------------------------- CLI


def test_cli_bad_params_file_is_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation:\n  n_user: 200\n")
    assert cli.main(["run", "--params", str(bad), "--notebooks", str(FIXTURES), "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"funnelkit: error: {bad}: invalid parameters")
    assert "n_user" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_missing_params_file_is_one_line(tmp_path, capsys):
    assert cli.main(["validate", "--params", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == f"funnelkit: error: params file not found: {tmp_path / 'nope.yaml'}\n"


def test_cli_unknown_only_name(params_file, tmp_path, capsys):
    code = cli.main(["run", "--params", str(params_file), "--notebooks", str(FIXTURES),
                     "--reports", str(tmp_path / "r"), "--only", "03"])
    assert code == 2
    assert "unknown notebook '03' in --only; available notebooks: 01_metric, 02_fails" in capsys.readouterr().err


def test_cli_validate_prints_the_resolved_params(params_file, capsys):
    assert cli.main(["validate", "--params", str(params_file)]) == 0
    out = capsys.readouterr().out
    assert "n_users: 200" in out and "n_items: 5000" in out


def test_cli_failing_notebook_returns_1_after_writing_the_index(params_file, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(runner, "_describe_source", fake_prepare)
    monkeypatch.setattr(runner, "_preflight", no_check)
    reports = tmp_path / "reports"
    code = cli.main(["run", "--params", str(params_file), "--notebooks", str(FIXTURES), "--reports", str(reports),
                     "--only", "02", "--no-progress"])
    assert code == 1
    assert (reports / "index.html").is_file() and (reports / "failed" / "02_fails.ipynb").is_file()
    err = capfd.readouterr().err  # file descriptor 2: the kernel's own log lands there too
    assert "1 of 1 notebook(s) failed (02_fails)" in err and "Traceback" not in err
    assert "WARNING" not in err  # e.g. ipykernel's "running over TCP without encryption" on every start


def test_replacing_files_swaps_whole_folders_and_clears_stale_ones(tmp_path):
    target, new = tmp_path / "03_x_files", tmp_path / ".03_x.abc.files"
    target.mkdir()
    (target / "old.csv").write_text("old")
    new.mkdir()
    (new / "new.csv").write_text("new")
    runner._replace_folder(new, target)
    assert [p.name for p in target.iterdir()] == ["new.csv"] and not new.exists()
    runner._replace_folder(tmp_path / "absent", target)  # the notebook wrote nothing this time
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_index_escapes_every_string_of_a_row_and_the_run(tmp_path):
    """Error text, failed cell, titles, metric labels and values, data label, fingerprints and params YAML."""
    from funnelkit.index_page import render_index

    evil = "<script>alert(1)</script>"
    (tmp_path / "02_b.html").write_text("previous")
    failed = runner.NotebookRun(
        name="02_b", title=f"B {evil}", status="failed", seconds=1.0, finished_utc="2026-01-01T00:00:00+00:00",
        error=f"ValueError: {evil}", failed_cell=f"cell 3 (In [2]): x = '{evil}'",
        metrics={"m": {"name": "m", "label": f"L {evil}", "value": evil}}, report_utc="2026-01-01T00:00:00+00:00",
        params_sha=evil, fingerprint=evil, source_label=evil, report_params_sha=evil, report_params_yaml=evil,
        report_source_label=evil, report_fingerprint=evil)
    ok = runner.NotebookRun(name="01_a", title=evil, status="ok", seconds=1.0, finished_utc=evil,
                            metrics={"m": {"name": evil, "value": 1, "unit": evil}}, report_fingerprint=evil)
    last_run = {"started_utc": evil, "source_label": evil, "fingerprint": "fp", "params_file": evil,
                "params_yaml": evil, "params_sha": "sha", "notebooks": ["01_a", "02_b"]}
    page = render_index(last_run, [("01_a", ok), ("02_b", failed)], tmp_path)
    assert "<script>" not in page
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x = &#x27;&lt;script&gt;" in page or "x = '&lt;script&gt;" in page


# --------------------------------------------------------------------------- a signal as a notebook finishes


def test_a_notebook_put_in_place_as_a_signal_arrives_is_in_the_interrupted_runs(tmp_path, params_file, monkeypatch):
    """The row of a report that went in place must reach the index even when the signal is handled before the
    worker thread gets to run again: here the worker stalls in its cleanup until the main thread has given up."""
    import _thread
    import threading

    import papermill

    from funnelkit.params import load_params

    reports = tmp_path / "reports"
    reports.mkdir()
    main_gave_up = threading.Event()
    row = runner.NotebookRun(name="01_metric", title="t", status="ok", seconds=1.0,
                             finished_utc="2026-01-01T00:00:00+00:00")

    def placed(*args, **kwargs):  # the outputs are in place; the signal arrives right now
        _thread.interrupt_main()
        return row

    real_rmtree = shutil.rmtree

    def stalling_rmtree(path, *args, **kwargs):  # the worker's cleanup, after the outputs went in place
        if threading.current_thread() is not threading.main_thread():
            main_gave_up.wait(10)
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(papermill, "inspect_notebook", lambda path: {})
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "_put_in_place", placed)
    monkeypatch.setattr(shutil, "rmtree", stalling_rmtree)
    ctx = runner._Context(load_params(params_file), params_file, reports, "label", "fp", False, 1, io.StringIO())
    try:
        with pytest.raises(runner._Interrupted) as caught:
            runner._execute_all([FIXTURES / "01_metric.ipynb"], ctx)
    finally:
        main_gave_up.set()
    assert caught.value.runs == [row]


@pytest.mark.parametrize("bad", [{"metrics": {"a": "b"}}, {"seconds": "x"}, {"finished_utc": 5}],
                         ids=["metric-not-a-mapping", "seconds-text", "finished-a-number"])
def test_manifest_rows_the_index_cannot_show_are_left_out_with_a_warning(tmp_path, bad):
    from funnelkit.index_page import render_index

    good = dict(PREVIOUS_ROW, name="01_metric")
    (tmp_path / "runs.json").write_text(json.dumps({"notebooks": {"01_metric": good,
                                                                  "02_fails": {**PREVIOUS_ROW, **bad}}}))
    stream = io.StringIO()
    manifest = runner._read_manifest(tmp_path, stream)
    assert list(manifest["notebooks"]) == ["01_metric"]
    assert "the row of '02_fails' is not valid; leaving it out" in stream.getvalue()
    rows = [(name, runner.NotebookRun.from_json(row)) for name, row in manifest["notebooks"].items()]
    assert "Kept share" in render_index({"notebooks": ["02_fails"]}, rows, tmp_path)
