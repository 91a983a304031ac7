"""Run the notebooks headless with papermill and build the reports folder.

``run(params_path)`` does, in this order:

1. validate the params file (a :class:`~funnelkit.errors.ParamsError` stops the
   run before anything is executed or written);
2. pick the notebooks (``notebooks/*.ipynb`` by name, or the ``only`` ones);
3. prepare the data once (:func:`funnelkit.data.describe_source`: the simulated
   shop is generated here, so notebooks running in parallel never race to
   write it) and get its label and fingerprint;
4. make sure the ``funnelkit`` Jupyter kernel runs this interpreter;
5. execute every notebook with papermill (in parallel with ``jobs > 1``),
   injecting ``params_file`` as an absolute path, and ``output_dir`` (a
   staging folder) into notebooks whose parameters cell declares it;
6. for a notebook that succeeded, write ``reports/<name>.html`` and the
   executed ``reports/<name>.ipynb`` (atomically), move its staged files to
   ``reports/<name>_files/`` (replacing the previous ones), and drop a stale
   ``reports/failed/<name>.ipynb``;
7. for a notebook that failed, keep the executed notebook with its traceback
   as ``reports/failed/<name>.ipynb``, leave the previous
   ``reports/<name>.html`` and ``reports/<name>_files/`` untouched, print one line naming the notebook, the
   cell and the error, and go on with the others;
8. write ``reports/index.html`` and the manifest ``reports/runs.json``, which
   keeps the rows of notebooks not run this time (``only``).

Layout of ``reports/``::

    index.html            links, parameters, data fingerprint, headline metrics
    runs.json             manifest: one entry per notebook, latest attempt
    <name>.html           report (code hidden, images embedded)
    <name>.ipynb          executed notebook of that report
    <name>_files/         files the notebook wrote for follow-up (CSVs), from the same run
    failed/<name>.ipynb   executed notebook of a failed attempt, with its traceback
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TextIO

import nbformat

from . import __version__
from .errors import FunnelkitError, ParamsError
from .params import Params, load_params
from .index_page import FAILED_DIR, render_index
from .kernel import KERNEL_NAME, ensure_kernel
from .report import atomic_write, export_html, notebook_title, read_metrics

__all__ = [
    "KERNEL_NAME",
    "NotebookRun",
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

Prepare = Callable[[Params], "tuple[str, str]"]


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
    source_label: str | None = None
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "NotebookRun":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


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
        self.reports_dir = reports_dir
        self.label = label
        self.fingerprint = fingerprint
        self.progress = progress
        self.jobs = jobs
        self.stream = stream
        self.lock = threading.Lock()

    def say(self, message: str) -> None:
        """One line on the stream, without breaking tqdm bars."""
        with self.lock:
            if self.progress:
                from tqdm import tqdm

                tqdm.write(message, file=self.stream)
            else:
                print(message, file=self.stream, flush=True)


def _execute(notebook: Path, ctx: _Context) -> NotebookRun:
    """Execute one notebook and put its outputs in place; never raises for a notebook error."""
    import papermill as pm

    name = _notebook_name(notebook)
    reports = ctx.reports_dir
    token = uuid.uuid4().hex[:8]
    executed = reports / f".{name}.{token}.running.ipynb"
    # files a notebook writes for follow-up (CSVs) go to a staging folder, moved into place with the HTML
    staging = reports / f".{name}.{token}.files"
    parameters = {"params_file": str(ctx.params_path)}
    title = notebook_title(notebook, default=name)
    progress = {"desc": name, "leave": ctx.jobs == 1, "file": ctx.stream} if ctx.progress else False
    start = time.perf_counter()
    error = failed_cell = None
    files_dir = reports / f"{name}{FILES_SUFFIX}"
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
            )
        except Exception as exc:  # PapermillExecutionError, DeadKernelError, timeouts, ...
            error = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}".rstrip(": ")
            failed_cell = _failed_cell(executed, exc)
        seconds = round(time.perf_counter() - start, 1)
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
                               metrics=metrics, report_utc=finished, params_sha=_params_sha(ctx.params),
                               source_label=ctx.label, fingerprint=ctx.fingerprint)
        kept = ""
        if executed.is_file() and executed.stat().st_size:
            failed_path.parent.mkdir(exist_ok=True)
            os.replace(executed, failed_path)
            kept = f"; executed notebook with the traceback: {failed_path}"
        where = f" in {failed_cell}" if failed_cell else ""
        ctx.say(f"funnelkit: notebook {notebook.name} FAILED{where}\n    {error}{kept}")
        return NotebookRun(name=name, title=title, status="failed", seconds=seconds, finished_utc=finished,
                           error=error, failed_cell=failed_cell, params_sha=_params_sha(ctx.params),
                           source_label=ctx.label, fingerprint=ctx.fingerprint)
    finally:
        executed.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


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


def run(
    params_path: str | os.PathLike,
    *,
    only: Iterable[str] | None = None,
    jobs: int = 1,
    notebooks_dir: str | os.PathLike | None = None,
    reports_dir: str | os.PathLike | None = None,
    prepare: Prepare | None = None,
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
        Invalid params file, unknown ``only`` name or bad ``jobs``: nothing
        has run and nothing is written.
    FunnelkitError
        Missing notebooks folder, unusable data (from ``prepare``), or a
        kernel that cannot be set up.
    """
    stream = stream if stream is not None else sys.stderr
    params_path = Path(params_path)
    params = load_params(params_path)
    if not isinstance(jobs, int) or jobs < 1:
        raise ParamsError(f"jobs must be a positive integer, got {jobs!r}")
    root = project_root()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else root / "notebooks"
    reports_dir = (Path(reports_dir) if reports_dir is not None else root / "reports").resolve()
    notebooks = discover_notebooks(notebooks_dir, only)
    all_notebooks = discover_notebooks(notebooks_dir)

    label, fingerprint = (prepare or _describe_source)(params)
    ensure_kernel()
    reports_dir.mkdir(parents=True, exist_ok=True)
    started = _utc_now()
    ctx = _Context(params, params_path.resolve(), reports_dir, str(label), str(fingerprint), progress,
                   min(jobs, len(notebooks)), stream)
    if ctx.jobs == 1:
        runs = [_execute(nb, ctx) for nb in notebooks]
    else:
        _share_threads(ctx.jobs)
        with ThreadPoolExecutor(max_workers=ctx.jobs, thread_name_prefix="funnelkit-nb") as pool:
            runs = list(pool.map(lambda nb: _execute(nb, ctx), notebooks))

    manifest = _read_manifest(reports_dir)
    entries = manifest.get("notebooks", {})
    for r in runs:
        if not r.ok:  # the HTML in place is the previous successful one: keep its metrics
            previous = entries.get(r.name, {})
            if (reports_dir / f"{r.name}.html").is_file() and previous.get("report_utc"):
                r.metrics, r.report_utc = previous.get("metrics", {}), previous["report_utc"]
        entries[r.name] = r.to_json()
    manifest = {
        "funnelkit_version": __version__,
        "last_run": {
            "started_utc": started,
            "params_file": str(params_path.resolve()),
            "params_sha": _params_sha(params),
            "params_yaml": params.to_yaml(),
            "source_label": ctx.label,
            "fingerprint": ctx.fingerprint,
            "notebooks": [r.name for r in runs],
        },
        "notebooks": dict(sorted(entries.items())),
    }
    atomic_write(reports_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    rows = [NotebookRun.from_json(entries[_notebook_name(p)]) if _notebook_name(p) in entries
            else None for p in all_notebooks]
    page = render_index(manifest["last_run"], [(_notebook_name(p), row) for p, row in zip(all_notebooks, rows)],
                        reports_dir)
    index_path = reports_dir / INDEX
    atomic_write(index_path, page)
    return RunSummary(params=params, reports_dir=reports_dir, index_path=index_path, source_label=ctx.label,
                      fingerprint=ctx.fingerprint, started_utc=started, runs=runs)


def _read_manifest(reports_dir: Path) -> dict:
    path = reports_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):  # unreadable: start afresh rather than fail the run
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("notebooks", {}), dict) else {}
