"""Run the notebooks headless with papermill and build the reports folder.

``run(params_path)`` does, in this order:

1. validate the params file (a :class:`~funnelkit.errors.ParamsError` stops the
   run before anything is executed or written);
2. pick the notebooks (``notebooks/*.ipynb`` by name, or the ``only`` ones) and
   refuse a reports folder that is the notebooks folder or holds source
   notebooks (the executed copies would overwrite them);
3. prepare the data once (:func:`funnelkit.data.describe_source`: the simulated
   shop is generated here, so notebooks running in parallel never race to
   write it) and get its label and fingerprint;
4. check the params against the data once (:func:`funnelkit.preflight.preflight`:
   data that cannot be loaded, steps that match no event, filters and
   breakdowns that do not fit the columns stop the run here, with nothing
   written);
5. make sure the ``funnelkit`` Jupyter kernel runs this interpreter, and lock
   the reports folder (``reports/.funnelkit.lock``): a second run into the same
   folder stops with a message instead of mixing its reports with this one's;
6. execute every notebook with papermill (in parallel with ``jobs > 1``),
   injecting ``params_file`` as an absolute path, and ``output_dir`` (a
   staging folder) into notebooks whose parameters cell declares it;
7. for a notebook that succeeded, write ``reports/<name>.html`` and the
   executed ``reports/<name>.ipynb`` (atomically), move its staged files to
   ``reports/<name>_files/`` (replacing the previous ones), and drop a stale
   ``reports/failed/<name>.ipynb``;
8. for a notebook that failed, keep the executed notebook with its traceback
   as ``reports/failed/<name>.ipynb``, leave the previous
   ``reports/<name>.html`` and ``reports/<name>_files/`` untouched, print one line naming the notebook, the
   cell and the error, and go on with the others;
9. write ``reports/index.html`` and the manifest ``reports/runs.json``, which
   keeps the rows of notebooks not run this time (``only``); each row records
   the data fingerprint and parameters of its own report, so the index marks a
   report made from other data or with other parameters than the latest run.

SIGINT (Ctrl-C) or SIGTERM during the notebooks stops the run
(:class:`RunInterrupted`): the unfinished notebooks' temporary files and
staging folders are removed and their previous reports, rows and index are
left as they were; notebooks that had finished are recorded.

Layout of ``reports/``::

    index.html            one card per report (question, headline figures, status), checks and parameters folded
    runs.json             manifest: one entry per notebook, latest attempt
    <name>.html           report (code hidden, images embedded)
    <name>.ipynb          executed notebook of that report
    <name>_files/         files the notebook wrote for follow-up (CSVs), from the same run
    failed/<name>.ipynb   executed notebook of a failed attempt, with its traceback
"""
from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

import nbformat

from . import __version__
from .errors import FunnelkitError, ParamsError
from .params import Params, load_params
from .index_page import FAILED_DIR, render_index
from .kernel import KERNEL_NAME, ensure_kernel, kernel_config
from .pseudonym import ensure_key
from .report import atomic_write, export_html, notebook_question, notebook_title, read_metrics

__all__ = [
    "KERNEL_NAME",
    "NotebookRun",
    "RunInterrupted",
    "RunSummary",
    "discover_notebooks",
    "ensure_kernel",
    "project_root",
    "run",
]

MANIFEST = "runs.json"
INDEX = "index.html"
OUTPUT_DIR_PARAMETER = "output_dir"
"""A notebook that declares this parameter gets a folder for its files (CSVs for follow-up)."""
FILES_SUFFIX = "_files"
LOCK_FILE = ".funnelkit.lock"
"""Held (``flock``) by the run writing into a reports folder."""

Prepare = Callable[[Params], "tuple[str, str]"]
Check = Callable[[Params, TextIO], object]


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run; what was unfinished was cleaned up."""

    def __init__(self, signum: int, finished: list[str]):
        self.signum = signum
        self.finished = finished
        kept = f"; finished and recorded: {', '.join(finished)}" if finished else ""
        super().__init__(f"interrupted by {signal.Signals(signum).name}: the unfinished notebooks' temporary files "
                         f"were removed and their previous reports left in place{kept}")


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler (a BaseException, like KeyboardInterrupt)."""


# --------------------------------------------------------------------------- results


@dataclass
class NotebookRun:
    """The latest attempt at one notebook (one row of the index page).

    ``metrics`` and ``report_utc`` describe ``<name>.html``, the latest
    *successful* run, which a failed attempt leaves in place.
    """

    name: str
    """Notebook file name without ``.ipynb``, e.g. ``01_funnel_eda``."""
    title: str
    status: str
    """``"ok"`` or ``"failed"``."""
    seconds: float
    finished_utc: str
    error: str | None = None
    """``"ename: evalue"`` of a failure."""
    failed_cell: str | None = None
    """``"cell 4 (In [3]): first source line"`` of a failure."""
    metrics: dict[str, dict] = field(default_factory=dict)
    report_utc: str | None = None
    params_sha: str | None = None
    """Parameters, data label and fingerprint of this attempt."""
    source_label: str | None = None
    fingerprint: str | None = None
    report_params_sha: str | None = None
    """Parameters (short hash and YAML), data label and fingerprint of ``<name>.html``: this attempt's
    when it succeeded, the previous report's when it failed."""
    report_params_yaml: str | None = None
    report_source_label: str | None = None
    report_fingerprint: str | None = None
    question: str | None = None
    """The question the notebook answers (its ``**Question.**`` paragraph, plain text), shown on its index card."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "NotebookRun":
        """A row of ``runs.json``; a row of an older version (without ``report_*``) describes its own report
        when it succeeded.

        Raises
        ------
        TypeError
            If ``data`` is not a mapping with at least the fields without a default.
        """
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        row = cls(**known)
        if row.ok and row.report_fingerprint is None:
            row.report_params_sha, row.report_source_label = row.params_sha, row.source_label
            row.report_fingerprint = row.fingerprint
        return row


@dataclass(repr=False)
class RunSummary:
    """What :func:`run` did."""

    params: Params
    reports_dir: Path
    index_path: Path
    source_label: str
    fingerprint: str
    started_utc: str
    runs: list[NotebookRun]
    """The notebooks executed by this run, in name order."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]

    def __repr__(self) -> str:
        lines = [f"RunSummary({'ok' if self.ok else 'FAILED'}, reports in {self.reports_dir})"]
        for r in self.runs:
            detail = f"ok in {r.seconds:.1f} s" if r.ok else f"failed in {r.failed_cell or 'execution'}: {r.error}"
            lines.append(f"  {r.name}: {detail}")
        return "\n".join(lines)

    def report_path(self, name: str) -> Path:
        return self.reports_dir / f"{name}.html"

    def failed_path(self, name: str) -> Path:
        return self.reports_dir / FAILED_DIR / f"{name}.ipynb"


# --------------------------------------------------------------------------- locations


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The project folder: the nearest folder holding ``pyproject.toml`` and ``notebooks/``.

    Searched from ``start`` (default: the current directory) upwards; falls back to
    the folder above the installed ``funnelkit`` package (the checkout, for an
    editable install).
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


def _notebook_name(path: Path) -> str:
    return path.name[: -len(".ipynb")]


def discover_notebooks(notebooks_dir: str | os.PathLike, only: Iterable[str] | None = None) -> list[Path]:
    """The notebooks to run, sorted by file name.

    Parameters
    ----------
    notebooks_dir : path
        Folder holding ``*.ipynb`` (not searched recursively).
    only : list of str, optional
        Names with or without ``.ipynb``, or an unambiguous prefix such as ``01``.

    Raises
    ------
    FunnelkitError
        If the folder is missing or holds no notebooks.
    ParamsError
        If a name in ``only`` matches no notebook or several (listing them).
    """
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise FunnelkitError(f"notebooks folder not found: {folder}")
    available = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not available:
        raise FunnelkitError(f"no notebooks (*.ipynb) in {folder}")
    if not only:
        return available
    by_name = {_notebook_name(p): p for p in available}
    listing = ", ".join(by_name)
    chosen: set[Path] = set()
    for raw in only:
        name = raw[: -len(".ipynb")] if raw.endswith(".ipynb") else raw
        name = Path(name).name  # accept notebooks/01_x.ipynb
        if name in by_name:
            chosen.add(by_name[name])
            continue
        matches = [n for n in by_name if n.startswith(name)] if name else []
        if len(matches) == 1:
            chosen.add(by_name[matches[0]])
        elif not matches:
            raise ParamsError(f"unknown notebook {raw!r} in --only; available notebooks: {listing}")
        else:
            raise ParamsError(f"notebook name {raw!r} in --only is ambiguous: it matches {', '.join(matches)}")
    return sorted(chosen)


# --------------------------------------------------------------------------- execution


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _first_line(source: str) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= 80 else line[:77] + "..."


def _failed_cell(executed: Path | None, exc: BaseException) -> str | None:
    """``cell N (In [k]): first line`` of the failing cell, N counted in the source notebook (from 1)."""
    source = getattr(exc, "source", None)
    exec_count = getattr(exc, "exec_count", None)
    index = None
    if executed is not None and executed.is_file():
        try:
            nb = nbformat.read(executed, as_version=4)
        except Exception:  # a half-written notebook: fall back to the exception
            nb = None
        if nb is not None:
            cells = [c for c in nb.cells
                     if not {"injected-parameters", "papermill-error-cell-tag"} & set(c.metadata.get("tags", []))]
            for i, cell in enumerate(cells):
                if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    index, source, exec_count = i, cell.source, cell.execution_count
                    break
    if source is None:
        return None
    where = f"cell {index + 1}" if index is not None else "cell"
    if exec_count is not None:
        where += f" (In [{exec_count}])"
    return f"{where}: {_first_line(source)}"


def _params_sha(params: Params) -> str:
    return hashlib.sha256(params.to_yaml().encode()).hexdigest()[:12]


class _Context:
    """What every notebook execution of one run shares."""

    def __init__(self, params: Params, params_path: Path, reports_dir: Path, label: str, fingerprint: str,
                 progress: bool, jobs: int, stream: TextIO):
        self.params = params
        self.params_path = params_path
        self.params_sha = _params_sha(params)
        self.params_yaml = params.to_yaml()
        self.reports_dir = reports_dir
        self.label = label
        self.fingerprint = fingerprint
        self.progress = progress
        self.jobs = jobs
        self.stream = stream
        self.lock = threading.Lock()
        self.commit = threading.Lock()
        """Held while a notebook's outputs are put in place, and by the main thread to cancel."""
        self.cancelled = False
        self.scratch: set[Path] = set()
        """Temporary files and staging folders of notebooks still running (removed on cancel)."""

    def say(self, message: str) -> None:
        """One line on the stream, without breaking tqdm bars."""
        with self.lock:
            if self.progress:
                from tqdm import tqdm

                tqdm.write(message, file=self.stream)
            else:
                print(message, file=self.stream, flush=True)


def _execute(notebook: Path, ctx: _Context, store: Callable[[NotebookRun], None] | None = None) -> NotebookRun | None:
    """Execute one notebook and put its outputs in place; never raises for a notebook error.

    ``store`` is called with the notebook's row under the same hold of ``ctx.commit`` as the outputs go
    in place, so a signal handled in between cannot leave a report in place that the index leaves out.
    Returns None when the run was cancelled (SIGINT/SIGTERM) before the outputs went in place.
    """
    import papermill as pm

    name = _notebook_name(notebook)
    reports = ctx.reports_dir
    token = uuid.uuid4().hex[:8]
    executed = reports / f".{name}.{token}.running.ipynb"
    # files a notebook writes for follow-up (CSVs) go to a staging folder, moved into place with the HTML
    staging = reports / f".{name}.{token}.files"
    with ctx.commit:
        ctx.scratch.update((executed, staging))
    parameters = {"params_file": str(ctx.params_path)}
    title = notebook_title(notebook, default=name)
    question = notebook_question(notebook)
    progress = {"desc": name, "leave": ctx.jobs == 1, "file": ctx.stream} if ctx.progress else False
    start = time.perf_counter()
    error = failed_cell = None
    writes_files = False
    try:
        try:
            writes_files = OUTPUT_DIR_PARAMETER in pm.inspect_notebook(str(notebook))
            if writes_files:
                parameters[OUTPUT_DIR_PARAMETER] = str(staging)
            pm.execute_notebook(
                str(notebook),
                str(executed),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                progress_bar=progress,
                # The kernel's working folder is the notebook's, as papermill's cwd= would
                # set it; cwd= itself os.chdir()s the whole process, which races between
                # threads when jobs > 1.
                resources={"metadata": {"path": str(notebook.parent)}},
                # ipykernel 7 warns into the terminal on every start unless the manager hands the
                # kernel CurveZMQ keys; jupyter_client does when the kernelspec declares support.
                config=kernel_config(),
            )
        except Exception as exc:  # PapermillExecutionError, DeadKernelError, timeouts, ...
            error = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}".rstrip(": ")
            failed_cell = _failed_cell(executed, exc)
        seconds = round(time.perf_counter() - start, 1)
        with ctx.commit:  # all of a notebook's outputs go in place, or none once the run is cancelled
            if ctx.cancelled:
                return None
            run = _put_in_place(notebook, ctx, name, title, executed, staging, seconds, error, failed_cell,
                                writes_files, question=question)
            if store is not None:
                store(run)
            return run
    finally:
        executed.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        with ctx.commit:
            ctx.scratch.difference_update((executed, staging))


def _put_in_place(notebook: Path, ctx: _Context, name: str, title: str, executed: Path, staging: Path,
                  seconds: float, error: str | None, failed_cell: str | None, writes_files: bool,
                  question: str | None = None) -> NotebookRun:
    """The HTML, executed notebook and files of a notebook that succeeded, or its failed notebook."""
    reports = ctx.reports_dir
    files_dir = reports / f"{name}{FILES_SUFFIX}"
    if error is None:
        try:
            export_html(executed, reports / f"{name}.html")
        except Exception as exc:  # a bug of ours or nbconvert's: report it, keep the other notebooks going
            ctx.say(f"funnelkit: HTML export of {notebook.name} failed:\n{traceback.format_exc()}")
            error = f"HTML export failed: {type(exc).__name__}: {exc}"
    finished = _utc_now()
    failed_path = reports / FAILED_DIR / f"{name}.ipynb"
    if error is None:
        metrics = read_metrics(executed)
        os.replace(executed, reports / f"{name}.ipynb")
        if writes_files:
            _replace_folder(staging, files_dir)
        failed_path.unlink(missing_ok=True)
        try:
            failed_path.parent.rmdir()
        except OSError:
            pass
        ctx.say(f"funnelkit: {notebook.name} ok in {seconds:.1f} s")
        return NotebookRun(name=name, title=title, status="ok", seconds=seconds, finished_utc=finished,
                           metrics=metrics, report_utc=finished, params_sha=ctx.params_sha,
                           source_label=ctx.label, fingerprint=ctx.fingerprint,
                           report_params_sha=ctx.params_sha, report_params_yaml=ctx.params_yaml,
                           report_source_label=ctx.label, report_fingerprint=ctx.fingerprint, question=question)
    kept = ""
    if executed.is_file() and executed.stat().st_size:
        failed_path.parent.mkdir(exist_ok=True)
        os.replace(executed, failed_path)
        kept = f"; executed notebook with the traceback: {failed_path}"
    where = f" in {failed_cell}" if failed_cell else ""
    ctx.say(f"funnelkit: notebook {notebook.name} FAILED{where}\n    {error}{kept}")
    return NotebookRun(name=name, title=title, status="failed", seconds=seconds, finished_utc=finished,
                       error=error, failed_cell=failed_cell, params_sha=ctx.params_sha,
                       source_label=ctx.label, fingerprint=ctx.fingerprint, question=question)


def _replace_folder(new: Path, target: Path) -> None:
    """Put ``new`` (possibly absent: the notebook wrote nothing) where ``target`` is, old files out of the way
    first by a rename, so ``target`` is never a half-deleted mix of two runs."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    if target.exists():
        os.replace(target, old)
    if new.is_dir():
        os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _share_threads(jobs: int) -> None:
    """Kernels running side by side split the cores: OpenMP/BLAS pools sized for the whole machine
    in every kernel spin against each other. Set only what the user has not set."""
    per_kernel = str(max(1, (os.cpu_count() or 1) // jobs))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, per_kernel)


def _describe_source(params: Params) -> tuple[str, str]:
    from .data import describe_source

    return describe_source(params)


def _preflight(params: Params, stream: TextIO, *, sections: frozenset[str] | None = None) -> object:
    from .preflight import SECTIONS, preflight

    return preflight(params, stream, sections=SECTIONS if sections is None else sections)


def sections_used(notebook: Path) -> frozenset[str] | None:
    """The params sections a notebook's metadata says it uses (``"funnelkit": {"uses": ["recommend"]}``), which
    are the ones checked against the data before it runs; None (check every section) when it does not say."""
    uses = nbformat.read(notebook, as_version=4).metadata.get("funnelkit", {}).get("uses")
    return None if uses is None else frozenset(uses)


def _sections_of(notebooks: list[Path]) -> frozenset[str] | None:
    used = [sections_used(nb) for nb in notebooks]
    return None if any(u is None for u in used) else frozenset().union(*used)


def run(
    params_path: str | os.PathLike,
    *,
    only: Iterable[str] | None = None,
    jobs: int = 1,
    notebooks_dir: str | os.PathLike | None = None,
    reports_dir: str | os.PathLike | None = None,
    prepare: Prepare | None = None,
    check: Check | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> RunSummary:
    """Execute the notebooks with a params file and write the reports.

    Parameters
    ----------
    params_path : path
        YAML params file; validated before anything runs.
    only : list of str, optional
        Notebook names (with or without ``.ipynb``) or unambiguous prefixes;
        default: every notebook.
    jobs : int
        Notebooks executed at once (threads, one kernel each).
    notebooks_dir, reports_dir : path, optional
        Default: ``notebooks/`` and ``reports/`` of :func:`project_root`.
    prepare : callable, optional
        ``prepare(params) -> (label, fingerprint)``: makes the data ready and
        describes it; default :func:`funnelkit.data.describe_source`.
    check : callable, optional
        ``check(params, stream)``: checks the params against the data before any
        notebook starts, raising a FunnelkitError; default
        :func:`funnelkit.preflight.preflight`.
    progress : bool
        Show a per-cell tqdm bar per notebook on ``stream``.
    stream : file, optional
        Where progress and failure messages go (default ``sys.stderr``).

    Returns
    -------
    RunSummary
        ``summary.ok`` is False when a notebook failed; the index is written
        either way.

    Raises
    ------
    ParamsError
        Invalid params file, unknown ``only`` name, bad ``jobs``, or a reports
        folder that holds source notebooks: nothing has run and nothing is written.
    FunnelkitError
        Missing notebooks folder, unusable data (from ``prepare`` or ``check``),
        a reports folder that cannot be written or is in use by another run, or
        a kernel that cannot be set up.
    RunInterrupted
        SIGINT or SIGTERM arrived while notebooks ran (see the module docstring).
    """
    stream = stream if stream is not None else sys.stderr
    params_path = Path(params_path)
    params = load_params(params_path)
    # one pseudonym key for every kernel of this run (they inherit the environment), never written anywhere
    ensure_key(params.report.id_key_env)
    if not isinstance(jobs, int) or jobs < 1:
        raise ParamsError(f"jobs must be a positive integer, got {jobs!r}")
    root = project_root()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else root / "notebooks"
    reports_dir = (Path(reports_dir) if reports_dir is not None else root / "reports").resolve()
    notebooks = discover_notebooks(notebooks_dir, only)
    all_notebooks = discover_notebooks(notebooks_dir)
    _check_reports_folder(reports_dir, notebooks_dir)

    label, fingerprint = (prepare or _describe_source)(params)
    if check is None:  # a params section is checked against the data only when a notebook of this run uses it
        check = functools.partial(_preflight, sections=_sections_of(notebooks))
    check(params, stream)
    ensure_kernel()
    with _locked(reports_dir):
        manifest = _read_manifest(reports_dir, stream)
        started = _utc_now()
        ctx = _Context(params, params_path.resolve(), reports_dir, str(label), str(fingerprint), progress,
                       min(jobs, len(notebooks)), stream)
        if ctx.jobs > 1:
            _share_threads(ctx.jobs)
        try:
            runs = _execute_all(notebooks, ctx)
        except _Interrupted as stop:
            if stop.runs:  # reports that went in place before the signal: the index must describe them
                _write_index(reports_dir, manifest, stop.runs, all_notebooks, ctx, params_path, started)
            raise RunInterrupted(stop.signum, [r.name for r in stop.runs]) from None
        index_path = _write_index(reports_dir, manifest, runs, all_notebooks, ctx, params_path, started)
    return RunSummary(params=params, reports_dir=reports_dir, index_path=index_path, source_label=ctx.label,
                      fingerprint=ctx.fingerprint, started_utc=started, runs=runs)


# --------------------------------------------------------------------------- the reports folder


def _check_reports_folder(reports_dir: Path, notebooks_dir: Path) -> None:
    """Refuse a reports folder where the executed copies (``<name>.ipynb``) would overwrite source notebooks."""
    if reports_dir == notebooks_dir.resolve():
        raise ParamsError(f"the reports folder {reports_dir} is the notebooks folder: the executed copies would "
                          "overwrite the source notebooks; choose another folder with --reports")
    if not reports_dir.is_dir():
        return
    sources = sorted(p.name for p in reports_dir.glob("*.ipynb") if not p.name.startswith(".")
                     and not _is_executed_copy(p))
    if sources:
        raise ParamsError(f"the reports folder {reports_dir} holds notebooks that are not reports of a run "
                          f"({', '.join(sources)}): the executed copies would overwrite them; choose another "
                          "folder with --reports")


def _is_executed_copy(path: Path) -> bool:
    """A notebook papermill executed (the runner's ``<name>.ipynb``), not a source notebook."""
    try:
        with path.open(encoding="utf-8") as handle:
            return "papermill" in json.load(handle).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _locked(reports_dir: Path) -> Iterator[None]:
    """Create the reports folder and hold its lock file for the run; stop if another run holds it."""
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
        handle = open(reports_dir / LOCK_FILE, "a")  # noqa: SIM115 - closed below, which releases the lock
    except OSError as exc:
        raise FunnelkitError(f"cannot write to the reports folder {reports_dir}: {exc.strerror or exc}; "
                             "choose another folder with --reports") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FunnelkitError(f"another funnelkit run is writing to the reports folder {reports_dir}; wait for "
                                 "it to finish, or choose another folder with --reports") from None
        if not os.access(reports_dir, os.W_OK):  # an existing lock file opens even in a read-only folder
            raise FunnelkitError(f"cannot write to the reports folder {reports_dir}: permission denied; "
                                 "choose another folder with --reports")
        yield
    finally:
        handle.close()


def _write_index(reports_dir: Path, manifest: dict, runs: list[NotebookRun], all_notebooks: list[Path],
                 ctx: _Context, params_path: Path, started: str) -> Path:
    """Record ``runs`` in ``runs.json`` and rewrite ``index.html`` (rows of other notebooks kept)."""
    entries = manifest.get("notebooks", {})
    for r in runs:
        if not r.ok:  # the HTML in place is the previous successful one: keep its metrics and what made it
            previous = entries.get(r.name, {})
            if (reports_dir / f"{r.name}.html").is_file() and previous.get("report_utc"):
                before = NotebookRun.from_json(previous)
                r.metrics, r.report_utc = before.metrics, before.report_utc
                r.report_params_sha, r.report_params_yaml = before.report_params_sha, before.report_params_yaml
                r.report_source_label, r.report_fingerprint = before.report_source_label, before.report_fingerprint
        entries[r.name] = r.to_json()
    manifest = {
        "funnelkit_version": __version__,
        "last_run": {
            "started_utc": started,
            "params_file": str(params_path.resolve()),
            "params_sha": ctx.params_sha,
            "params_yaml": ctx.params_yaml,
            "source_label": ctx.label,
            "fingerprint": ctx.fingerprint,
            "notebooks": [r.name for r in runs],
        },
        "notebooks": dict(sorted(entries.items())),
    }
    rows = [NotebookRun.from_json(entries[_notebook_name(p)]) if _notebook_name(p) in entries
            else None for p in all_notebooks]
    for row in rows:  # a row written before rows kept the question: shown from its report, the row kept as written
        if row is not None and row.question is None:
            row.question = _kept_question(reports_dir / f"{row.name}.ipynb")
    page = render_index(manifest["last_run"], [(_notebook_name(p), row) for p, row in zip(all_notebooks, rows)],
                        reports_dir)
    index_path = reports_dir / INDEX
    try:
        atomic_write(reports_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        atomic_write(index_path, page)
    except OSError as exc:
        raise FunnelkitError(f"cannot write the index of {reports_dir}: {exc.strerror or exc}") from None
    return index_path


def _kept_question(executed: Path) -> str | None:
    """The question of the executed notebook the runner keeps beside a report; None when it is absent or
    unreadable (the card then goes without)."""
    try:
        return notebook_question(executed) if executed.is_file() else None
    except Exception:  # a damaged copy must not stop the index
        return None


def _read_manifest(reports_dir: Path, stream: TextIO) -> dict:
    """``runs.json`` with its valid rows; a corrupt file or row is reported on ``stream`` and left out."""
    path = reports_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # unreadable: start afresh rather than fail the run
        print(f"funnelkit: warning: {path} is not a readable manifest ({type(exc).__name__}: {exc}); starting a "
              "new one, so the index lists only the notebooks of this run", file=stream)
        return {}
    entries = data.get("notebooks") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        print(f"funnelkit: warning: {path} has no 'notebooks' mapping; starting a new one", file=stream)
        return {}
    valid = {}
    for name, entry in entries.items():
        if not _renders(name, entry, reports_dir):
            print(f"funnelkit: warning: {path}: the row of {name!r} is not valid; leaving it out", file=stream)
            continue
        valid[name] = entry
    return {**data, "notebooks": valid}


def _renders(name: str, entry: object, reports_dir: Path) -> bool:
    """Whether a ``runs.json`` row builds a :class:`NotebookRun` that the index can show, as a row of an earlier
    run and as the previous report of a notebook of this one: a field of the wrong type (``"seconds": "x"``)
    would otherwise crash the index only after the notebooks ran."""
    try:
        row = NotebookRun.from_json(entry)
        for last_run in ({}, {"notebooks": [name]}):
            render_index(last_run, [(str(name), row)], reports_dir)
    except Exception:  # whatever stops the row from showing makes it invalid
        return False
    return True


# --------------------------------------------------------------------------- running and stopping


class _Interrupted(Exception):
    """The run was cancelled by a signal; ``runs`` are the notebooks whose outputs had gone in place."""

    def __init__(self, signum: int, runs: list[NotebookRun]):
        super().__init__(signum)
        self.signum, self.runs = signum, runs


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread (Python's default just ends the process, leaving
    temporary files behind); SIGINT already raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute_all(notebooks: list[Path], ctx: _Context) -> list[NotebookRun]:
    """Execute ``notebooks`` on ``ctx.jobs`` worker threads, in name order of the result.

    The workers are daemon threads and the main thread only waits, so a signal reaches the main
    thread at once; it then cancels (no further outputs go in place, pending notebooks do not
    start), removes the scratch files of the running ones and raises :class:`_Interrupted`. A
    kernel left running exits by itself when this process ends (ipykernel watches its parent).
    """
    pending = list(enumerate(notebooks))
    results: dict[int, NotebookRun] = {}
    crashes: list[BaseException] = []

    def work() -> None:
        while True:
            with ctx.commit:
                if ctx.cancelled or not pending:
                    return
                index, notebook = pending.pop(0)
            try:
                _execute(notebook, ctx, store=lambda run, index=index: results.__setitem__(index, run))
            except BaseException as exc:  # a bug of ours: re-raised in the main thread
                crashes.append(exc)
                return

    workers = [threading.Thread(target=work, name=f"funnelkit-nb-{k}", daemon=True) for k in range(ctx.jobs)]
    with _sigterm_raises():
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        except (KeyboardInterrupt, _Terminated) as exc:
            signum = exc.args[0] if isinstance(exc, _Terminated) else signal.SIGINT
            with ctx.commit:
                ctx.cancelled = True
                for path in ctx.scratch:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                runs = [results[i] for i in sorted(results)]  # under the lock: no output goes in place unlisted
            raise _Interrupted(int(signum), runs) from None
    if crashes:
        raise crashes[0]
    return [results[i] for i in sorted(results)]
