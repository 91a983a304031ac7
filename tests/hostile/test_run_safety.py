"""Run safety end to end: ``funnelkit validate`` and ``funnelkit run`` on hostile params, data and folders.

Each case runs the CLI in a child process as a user would. Most stop before any notebook (exit 2) and so
run no kernel; the runs that must execute notebooks use the small fixture notebooks of
``tests/fixtures/notebooks`` or notebooks written here (one that sleeps, to be interrupted), never the
studies. A run that a check should stop before the notebooks points at the fixture notebooks, which
succeed: without the check the run would exit 0 or 1 and the test fail.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from . import logs
from .conftest import ROOT, run_cli, write_params

FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
LOCK = ".funnelkit.lock"


@pytest.fixture(scope="module")
def canonical(tmp_path_factory) -> Path:
    return logs.canonical_csv(tmp_path_factory.mktemp("logs") / "events.csv", n_users=120)


def run_fixtures(params: Path, reports: Path, *extra: str, notebooks: Path = FIXTURES):
    return run_cli("run", "--params", str(params), "--notebooks", str(notebooks), "--reports", str(reports),
                   "--no-progress", *extra)


def assert_stopped_before_notebooks(result, reports: Path, *phrases: str) -> None:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    message = result.stderr
    assert message.startswith("funnelkit: error: ") or "\nfunnelkit: error: " in message, message
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    assert not reports.exists(), sorted(reports.rglob("*"))


# --------------------------------------------------------------------------- bad data, caught once


def test_step_that_matches_no_event_stops_the_run_listing_the_log_events(tmp_path, canonical):
    params = write_params(tmp_path, data={"source": str(canonical)}, funnel={"steps": [
        {"name": "view", "events": ["view"]}, {"name": "basket", "events": ["add_to_basket"]}]})
    result = run_fixtures(params, tmp_path / "reports")
    assert_stopped_before_notebooks(result, tmp_path / "reports", "step 'basket'", "add_to_basket",
                                    "matches no event")
    # the most frequent names with their counts, most frequent first
    names = result.stderr.split("most frequent event names of the log: ")[1]
    assert names.startswith("view (") and "cart (" in names and "purchase (" in names


def test_exclusion_that_matches_nothing_is_a_warning(tmp_path, canonical):
    """It excludes no one, so the numbers are right; but it is likely a typo, and the run says so."""
    steps = [{"name": "view", "events": ["view"]}, {"name": "cart", "events": ["cart"]}]
    params = write_params(tmp_path, "excl.yaml", data={"source": str(canonical)},
                          funnel={"steps": steps, "exclusions": [{"name": "refund", "events": ["refund"]}]})
    result = run_cli("validate", "--params", str(params))
    assert result.code == 0, result.output
    assert "warning: funnel exclusion 'refund'" in result.stderr and "excludes no one" in result.stderr
    # a filtered step that matches nothing: tests/test_preflight.py


@pytest.mark.parametrize("builder, fmt", [(logs.rees46_csv, "rees46"), (logs.retailrocket_csv, "retailrocket")])
def test_formats_without_checkout_get_three_default_steps(tmp_path, builder, fmt):
    source = builder(tmp_path / "events.csv", n_users=120)
    result = run_cli("validate", "--params", str(write_params(tmp_path, data={"source": str(source), "format": fmt})))
    assert result.code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert [s["name"] for s in resolved["funnel"]["steps"]] == ["view", "cart", "purchase"]
    assert "# data: " in result.stdout and " events from 2026-03-0" in result.stdout  # the loaded range


def test_breakdown_column_not_in_the_log_stops_the_run(tmp_path, canonical):
    params = write_params(tmp_path, data={"source": str(canonical)}, funnel={"breakdowns": ["devise"]})
    assert_stopped_before_notebooks(run_fixtures(params, tmp_path / "reports"), tmp_path / "reports",
                                    "breakdown column 'devise'", "device")


def test_missing_column_stops_the_run_once(tmp_path, canonical):
    source = logs.without_columns(canonical, tmp_path / "no_type.csv", ["event_type"])
    params = write_params(tmp_path, data={"source": str(source)})
    result = run_fixtures(params, tmp_path / "reports")
    assert_stopped_before_notebooks(result, tmp_path / "reports", "event_type")
    assert result.stderr.count("funnelkit: error:") == 1


def test_unparsable_times_stop_the_run_once(tmp_path, canonical):
    text = canonical.read_text().splitlines()
    text[5] = text[5].replace("2026-03", "2026-13", 1)
    bad = tmp_path / "bad_time.csv"
    bad.write_text("\n".join(text) + "\n")
    result = run_fixtures(write_params(tmp_path, data={"source": str(bad)}), tmp_path / "reports")
    assert_stopped_before_notebooks(result, tmp_path / "reports", "event_time")


def test_filter_value_of_the_wrong_type_is_caught_in_validate(tmp_path, canonical):
    def with_filter(column, op, value):
        return write_params(tmp_path, data={"source": str(canonical)}, funnel={"steps": [
            {"name": "view", "events": ["view"], "filters": [{"column": column, "op": op, "value": value}]},
            {"name": "cart", "events": ["cart"]}]})

    result = run_cli("validate", "--params", str(with_filter("price", "<", "cheap")))
    assert result.code == 2 and "Traceback" not in result.output
    assert "column 'price' holds number values" in result.stderr and "'cheap'" in result.stderr
    # the other types and a missing column: tests/test_preflight.py


@pytest.mark.parametrize("sections, key", [
    ({"data": {"session_gap_minutes": float("inf")}}, "data.session_gap_minutes"),
    ({"funnel": {"steps": [{"name": "view", "events": ["view"],
                            "filters": [{"column": "price", "op": "<", "value": float("nan")}]},
                           {"name": "cart", "events": ["cart"]}]}}, "funnel.steps.0.filters.0.value"),
    ({"funnel": {"steps": [{"name": "view", "events": ["view"],
                            "filters": [{"column": "price", "op": ">", "value": float("-inf")}]},
                           {"name": "cart", "events": ["cart"]}]}}, "funnel.steps.0.filters.0.value"),
])
def test_nan_and_inf_in_params_fail_in_validate(tmp_path, sections, key):
    result = run_cli("validate", "--params", str(write_params(tmp_path, **sections)))
    assert result.code == 2 and f"'{key}'" in result.stderr and "finite" in result.stderr, result.output


def test_window_in_minutes_is_said_in_words_with_a_warning(tmp_path, canonical):
    result = run_cli("validate", "--params", str(write_params(tmp_path, data={"source": str(canonical)},
                                                              funnel={"window": "7m"})))
    assert result.code == 0, result.output
    assert "# funnel window: 7 minutes" in result.stdout and "window: 7min" in result.stdout
    assert "warning: funnel.window is 7 minutes" in result.stderr


# --------------------------------------------------------------------------- hostile params files


def test_billion_laughs_gives_a_short_message_quickly(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    result = run_cli("validate", "--params", str(path), timeout=60)
    assert result.code == 2 and "aliases" in result.stderr and "Traceback" not in result.output
    assert len(result.output) < 1000 and time.perf_counter() - start < 30


@pytest.mark.parametrize("content, phrase", [
    (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested more than"),
    ("data:\n  currency: \u20ac\n".encode("cp1252"), "not UTF-8"),
    (b'data:\n  source: "events\\0.csv"\n', "NUL byte"),
    (b'funnel:\n  window: "' + b"x" * 500_000 + b'"\n', "'funnel.window'"),
])
def test_hostile_params_files_give_exit_2_and_a_message(tmp_path, content, phrase):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    result = run_cli("run", "--params", str(path), "--reports", str(tmp_path / "r"))
    assert result.code == 2 and phrase in result.stderr and "Traceback" not in result.output, result.output
    assert len(result.output) < 2000
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- the reports folder


def test_reports_folder_that_is_the_notebooks_folder_is_refused(tmp_path, canonical):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, notebooks)
    before = {p.name: p.read_bytes() for p in notebooks.iterdir()}
    params = write_params(tmp_path, data={"source": str(canonical)})
    result = run_fixtures(params, notebooks, notebooks=notebooks)
    assert result.code == 2 and "is the notebooks folder" in result.stderr, result.output
    other = tmp_path / "elsewhere"  # a folder holding source notebooks, not the --notebooks one
    shutil.copytree(FIXTURES, other)
    result = run_fixtures(params, other, "--only", "01", notebooks=notebooks)
    assert result.code == 2 and "holds notebooks that are not reports" in result.stderr, result.output
    assert "01_metric.ipynb" in result.stderr
    assert {p.name: p.read_bytes() for p in notebooks.iterdir()} == before
    assert sorted(p.name for p in other.iterdir()) == sorted(before)


def test_second_run_into_a_locked_reports_folder_stops_naming_it(tmp_path, canonical):
    reports = tmp_path / "reports"
    reports.mkdir()
    with open(reports / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_fixtures(write_params(tmp_path, data={"source": str(canonical)}), reports, "--only", "01")
    assert result.code == 2 and "another funnelkit run is writing to the reports folder" in result.stderr
    assert str(reports) in result.stderr
    assert sorted(p.name for p in reports.iterdir()) == [LOCK]


def test_unwritable_reports_folder_is_a_message(tmp_path, canonical):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    params = write_params(tmp_path, data={"source": str(canonical)})
    result = run_fixtures(params, blocker / "reports", "--only", "01")
    assert result.code == 2 and "cannot write to the reports folder" in result.stderr, result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_reports_folder_is_a_message(tmp_path, canonical):
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o555)
    try:
        result = run_fixtures(write_params(tmp_path, data={"source": str(canonical)}), reports, "--only", "01")
    finally:
        reports.chmod(0o755)
    assert result.code == 2 and "cannot write to the reports folder" in result.stderr, result.output


def test_corrupt_manifest_is_a_warning_and_a_fresh_start(tmp_path, canonical):
    """One real run (the quick fixture notebook): a corrupt runs.json is reported, replaced, and the run works."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "runs.json").write_text('{"notebooks": {"01_metric": ')
    result = run_fixtures(write_params(tmp_path, data={"source": str(canonical)}), reports, "--only", "01")
    assert result.code == 0, result.output
    assert "warning:" in result.stderr and "runs.json is not a readable manifest" in result.stderr
    manifest = json.loads((reports / "runs.json").read_text())
    assert list(manifest["notebooks"]) == ["01_metric"]
    assert manifest["notebooks"]["01_metric"]["report_fingerprint"] == manifest["last_run"]["fingerprint"]
    assert "# data: " not in result.stderr and "funnelkit: data: " in result.stderr  # the preflight's range


# --------------------------------------------------------------------------- signals


def _notebook(folder: Path, name: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('params_file = "x"\noutput_dir = "out"')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), parameters, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "funnelkit", "display_name": "Python (funnelkit)", "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")


QUICK = ("from funnelkit import report\nreport.record('quick', 1, unit='runs')")
SLEEPY = ("import pathlib, time\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
          "(pathlib.Path(output_dir) / 'partial.csv').write_text('a\\n1\\n')\ntime.sleep(300)")


def _interrupt_when_sleeping(params: Path, notebooks: Path, reports: Path, jobs: int, signum: int,
                             sleepers: int) -> subprocess.CompletedProcess:
    """Start a run, wait until ``sleepers`` notebooks are in their sleeping cell (their staged file is written),
    send ``signum`` to the runner alone, and return how it ended."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "funnelkit", "run", "--params", str(params), "--notebooks",
                             str(notebooks), "--reports", str(reports), "--no-progress", "--jobs", str(jobs)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while len(list(reports.glob(".*.files/partial.csv"))) < sleepers:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the notebooks never reached their sleeping cell"
            time.sleep(0.2)
        assert len(list(reports.glob(".*.running.ipynb"))) == sleepers
        proc.send_signal(signum)
        # generous: stopping the kernels and writing the index took over 60 s on a two-core machine at load 19
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _previous_reports(reports: Path, names: list[str]) -> dict[str, bytes]:
    """A reports folder from an earlier run: index, manifest, and an HTML report per name."""
    reports.mkdir()
    rows = {n: {"name": n, "title": n, "status": "ok", "seconds": 1.0, "finished_utc": "2026-01-01T00:00:00+00:00",
                "report_utc": "2026-01-01T00:00:00+00:00", "metrics": {}, "params_sha": "p", "fingerprint": "f"}
            for n in names}
    (reports / "runs.json").write_text(json.dumps({"last_run": {}, "notebooks": rows}))
    (reports / "index.html").write_text("<html>previous index</html>")
    for n in names:
        (reports / f"{n}.html").write_text(f"<html>previous {n}</html>")
    return {p.name: p.read_bytes() for p in reports.iterdir()}


def test_sigterm_mid_run_cleans_up_and_leaves_the_previous_index(tmp_path, canonical):
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    for name in ("01_sleepy", "02_sleepy"):
        _notebook(notebooks, name, SLEEPY)
    before = _previous_reports(reports, ["01_sleepy", "02_sleepy"])
    params = write_params(tmp_path, data={"source": str(canonical)})
    done = _interrupt_when_sleeping(params, notebooks, reports, jobs=2, signum=signal.SIGTERM, sleepers=2)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "interrupted by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    after = {p.name: p.read_bytes() for p in reports.iterdir() if p.name != LOCK}
    assert after == before  # no .running.ipynb, no staging folder, index and reports untouched


def test_sigint_mid_run_keeps_the_finished_notebook_and_the_others_rows(tmp_path, canonical):
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    _notebook(notebooks, "01_quick", QUICK)
    _notebook(notebooks, "02_sleepy", SLEEPY)
    before = _previous_reports(reports, ["02_sleepy"])
    params = write_params(tmp_path, data={"source": str(canonical)})
    done = _interrupt_when_sleeping(params, notebooks, reports, jobs=1, signum=signal.SIGINT, sleepers=1)
    assert done.returncode == 128 + signal.SIGINT, done.stderr
    assert "interrupted by SIGINT" in done.stderr and "finished and recorded: 01_quick" in done.stderr
    assert not [p for p in reports.iterdir() if p.name.startswith(".") and p.name != LOCK]
    assert (reports / "02_sleepy.html").read_bytes() == before["02_sleepy.html"]
    manifest = json.loads((reports / "runs.json").read_text())
    assert manifest["notebooks"]["02_sleepy"] == json.loads(before["runs.json"])["notebooks"]["02_sleepy"]
    assert manifest["notebooks"]["01_quick"]["metrics"]["quick"]["value"] == 1
    assert manifest["last_run"]["notebooks"] == ["01_quick"]
    page = (reports / "index.html").read_text()
    assert "01_quick" in page and "from an earlier run" in page  # 02's row is the old one, marked as such
