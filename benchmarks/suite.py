"""The benchmark suite: every workload, every implementation, logs of 1M, 20M and 100M events.

Run from the repository root::

    make bench          # full: 1M, 20M and 100M events, `funnelkit run` on the CI shop, runner overhead
    make bench-quick    # about a minute: 1M events once, runner overhead on two notebooks

or ``.venv/bin/python -m benchmarks.suite --help``. Every case runs in a child
process of its own, so a case that runs out of memory or hangs is recorded and
the suite goes on, and the peak resident memory belongs to that case alone. The
child times ``benchmarks.workloads.compute`` from before it reads the Parquet to
the result, measures the peak memory of its process tree meanwhile, and prints
one JSON line; the parent collects the rows, compares the checksums
of the implementations, prints a Markdown table, the growth of time with the
number of events and the runner's overhead, and writes
``benchmarks/results/bench-<UTC time>.json`` and ``.png`` (and ``latest.*``).
It exits with status 1 when two implementations give different answers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/suite.py` as well as `python -m benchmarks.suite`
    sys.path.insert(0, str(ROOT))

SIZES = {"1M": (66_000, 1), "20M": (1_325_000, 1), "100M": (1_325_000, 5)}
"""Size label -> (simulated users, copies). The simulator (version 5, with the pages between the funnel
events) makes about 15.1 events per user at these sizes (43,157,009 for 2,860,000 users). 100M is five
copies of the 20M shop with the user and session ids of copy k suffixed ``~k``: the same per-user
workload, written by DuckDB in about a minute instead of simulating 6.6M users."""
BENCH_CACHE = ROOT / "data" / "bench"
CI_PARAMS = ROOT / "params" / "ci.yaml"
RUN_CI = "run_ci"
RUN_CI_IMPLEMENTATION = "funnelkit run"
PANDAS = "pandas"
SPARK = "spark"
SPARK_SIZE = "20M"
"""The size Spark runs at: its overhead against DuckDB on one machine, on the issue's reference size."""
VARIES = "varies between repeats"
PANDAS_SKIP = "pandas would need more memory than the machine has"
QUICK_SIZE = "1M"

# Recorded metrics left out of the run_ci checksum because they change from run to run:
# - floating-point rounding error (digits agreeing with statsmodels, differences to LIBLINEAR,
#   implicit or a NumPy reference, 1e-9 and below), which depends on BLAS kernels and threads;
# - the best baseline of notebook 03 and its NDCG: that is BPR, whose multi-threaded SGD in
#   implicit updates shared factors without locks, so its result depends on thread timing
#   (two CI runs of the same code gave NDCG@10 0.035144 and 0.035085).
# Every other metric is a count, a label or a statistic of the simulated data.
NONDETERMINISTIC_METRICS = frozenset({
    "logit_min_digits", "svm_objective_rel_diff", "lre_qr_min", "lre_normal_min",
    "reference_max_factor_difference", "metrics_vs_implicit_max_difference",
    "best_baseline", "ndcg_best_baseline", "ndcg_gain_over_best_baseline",
})
METRIC_DIGITS = 6
"""Significant digits of float metrics in the run_ci checksum: DuckDB sums doubles in parallel,
so the last digits of a sum vary with the order the threads finish in."""


# --------------------------------------------------------------------------- data


def parquet_events(path: Path) -> int:
    """Rows of a Parquet file, read from its footer (no data is read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def bench_dataset(label: str) -> tuple[Path, int]:
    """The simulated log of a size label: its ``events.parquet`` and its number of events.

    The cache folder's name is a fingerprint of the simulator version and the
    parameters, so a new simulator version or seed regenerates the data and an
    unchanged one reuses it.
    """
    from funnelkit.params import SimulationParams
    from funnelkit.simulate import ensure_dataset, fingerprint

    users, copies = SIZES[label]
    params = SimulationParams(n_users=users, cache_dir=BENCH_CACHE)
    if not (BENCH_CACHE / f"shop-{fingerprint(params)}").is_dir():
        say(f"data {label}: generating {users:,} users into {BENCH_CACHE} (minutes for the big sizes)")
    path = ensure_dataset(params).events_path
    if copies > 1:
        path = replicated(path, copies)
    return path, parquet_events(path)


def replicated(source: Path, copies: int) -> Path:
    """``copies`` copies of an events file side by side, ids of copy k suffixed ``~k`` (cached beside it)."""
    import duckdb

    target = source.with_name(f"events-x{copies}.parquet")
    if target.is_file():
        return target
    say(f"data: writing {copies} copies of {source} to {target}")
    scratch = target.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    con.execute(
        f"COPY (SELECT * REPLACE (user_id || '~' || k AS user_id, session_id || '~' || k AS session_id) "
        f"FROM read_parquet('{source}'), range({copies}) AS copies(k)) "
        f"TO '{scratch}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
    scratch.rename(target)  # only a complete file gets the name the cache looks for
    return target


def ci_events() -> int:
    """Events of the CI shop (``params/ci.yaml``), generated here if missing so run_ci times no generation."""
    from funnelkit.params import load_params
    from funnelkit.simulate import ensure_dataset

    return parquet_events(ensure_dataset(load_params(CI_PARAMS).simulation).events_path)


# --------------------------------------------------------------------------- child side


def metrics_checksum(manifest: dict) -> str:
    """16 hex digits over the headline metrics of a ``runs.json`` manifest.

    Floats are rounded to :data:`METRIC_DIGITS` significant digits and the
    metrics of :data:`NONDETERMINISTIC_METRICS` are left out (see there).
    """
    def rounded(value):
        if isinstance(value, float):
            return float(f"{value:.{METRIC_DIGITS}g}")
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    content = {
        name: {key: {"value": rounded(m.get("value")), "ci": rounded(m.get("ci"))}
               for key, m in sorted(entry.get("metrics", {}).items()) if key not in NONDETERMINISTIC_METRICS}
        for name, entry in sorted(manifest.get("notebooks", {}).items())
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def child_answer(spec: dict) -> dict:
    """Time one workload's answer; imports are not timed (a notebook pays them once, not per query)."""
    from benchmarks import workloads

    # everything either implementation imports lazily: funnelkit's modules pull in statsmodels and
    # scikit-learn, a second or more that is no part of the work being measured
    import funnelkit.features  # noqa: F401
    import funnelkit.funnel  # noqa: F401
    import funnelkit.recommend.matrix  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401
    if spec["implementation"] == "spark":
        import funnelkit.engines.spark  # noqa: F401
        import pyspark.sql  # noqa: F401

    sampler = TreeSampler(os.getpid())
    started = time.perf_counter()
    result = workloads.compute(spec["workload"], spec["implementation"], spec["parquet"],
                               memory_limit=spec["memory_limit"], threads=spec["threads"])
    seconds = time.perf_counter() - started
    # the peak up to here: the canonical form below (sorting, dtypes, a copy of a table of
    # millions of rows) is the harness's work, not the implementation's, in time and in memory
    peak = max(sampler.stop(), own_peak_bytes())
    frame = workloads.canonical(spec["workload"], result)
    return {"status": "ok", "seconds": seconds, "checksum": workloads.checksum(frame), "rows": len(frame),
            "peak_mib": peak / 2**20}


def own_peak_bytes() -> int:
    """This process's peak resident memory since it started its program (Linux ``VmHWM``).

    Not ``ru_maxrss``: Linux carries that over exec from the forked parent's memory, so a
    child of a suite that had just simulated a log would report the suite's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # elsewhere: the best there is


class TreeSampler:
    """Samples the resident memory of a process and its descendants every 0.2 s until :meth:`stop`."""

    def __init__(self, root: int, interval: float = 0.2):
        self.peak = tree_rss_bytes(root)
        self._done = threading.Event()

        def sample():
            while not self._done.wait(interval):
                self.peak = max(self.peak, tree_rss_bytes(root))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """The peak in bytes."""
        self._done.set()
        self._thread.join()
        return self.peak


def child_run_ci(spec: dict) -> dict:
    """Time the whole ``funnelkit run`` on the CI params, as a user runs it (its own interpreter)."""
    with tempfile.TemporaryDirectory(prefix="funnelkit-bench-") as reports:
        command = [sys.executable, "-m", "funnelkit", "run", "--params", str(CI_PARAMS),
                   "--reports", reports, "--no-progress"]
        started = time.perf_counter()
        done = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = [line for line in done.stderr.splitlines() if line.strip()][-1:] or [""]
            return {"status": "failed", "reason": f"exit {done.returncode}: {tail[0][:160]}"}
        manifest = json.loads((Path(reports) / "runs.json").read_text(encoding="utf-8"))
    metrics = {name: {key: m.get("value") for key, m in entry.get("metrics", {}).items()}
               for name, entry in manifest.get("notebooks", {}).items()}
    # the metrics themselves go into the results JSON, so a checksum that changes can be explained
    return {"status": "ok", "seconds": seconds, "checksum": metrics_checksum(manifest), "rows": len(metrics),
            "metrics": metrics}


def minimal_notebook():
    """The cheapest notebook the runner accepts: the project's kernel and one ``parameters`` cell."""
    import nbformat
    from funnelkit.runner import KERNEL_NAME

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (funnelkit)", "language": "python"}
    cell = nbformat.v4.new_code_cell('params_file = "../params/default.yaml"')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    return nb


def median_seconds(action, repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``action``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def child_runner(spec: dict) -> dict:
    """Seconds per notebook of ``funnelkit.runner.run`` on ``copies`` empty notebooks with ``jobs``.

    ``prepare`` returns a fixed label, so no data is generated or fingerprinted;
    a warm-up run of one notebook (imports of papermill and nbconvert, the kernel
    spec check) is timed apart as ``cold_seconds``. With ``parts``, also the
    in-process HTML export of one executed notebook and a kernel's start and shutdown.
    """
    import nbformat
    from funnelkit.runner import run

    def prepare(params):
        return "benchmark", "none"

    with tempfile.TemporaryDirectory(prefix="funnelkit-bench-") as tmp:
        tmp = Path(tmp)
        for folder, copies in (("warm", 1), ("notebooks", spec["copies"])):
            (tmp / folder).mkdir()
            for i in range(copies):
                nbformat.write(minimal_notebook(), tmp / folder / f"empty_{i + 1:02d}.ipynb")

        def run_folder(folder: str, jobs: int):
            return run(CI_PARAMS, notebooks_dir=tmp / folder, reports_dir=tmp / f"{folder}-reports",
                       jobs=jobs, progress=False, prepare=prepare)

        started = time.perf_counter()
        run_folder("warm", 1)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        summary = run_folder("notebooks", spec["jobs"])
        seconds = time.perf_counter() - started
        if not summary.ok:
            return {"status": "failed", "reason": "; ".join(f"{r.name}: {r.error}" for r in summary.failed)[:200]}
        result = {"status": "ok", "seconds": seconds, "per_notebook": seconds / spec["copies"], "cold_seconds": cold}
        if spec["parts"]:
            result.update(runner_parts(tmp / "notebooks-reports" / "empty_01.ipynb", tmp / "export.html"))
    return result


def runner_parts(executed: Path, html: Path) -> dict:
    """HTML export of one executed notebook (in this process) and a kernel's start and shutdown, in seconds."""
    from jupyter_client.manager import start_new_kernel
    from funnelkit.report import export_html
    from funnelkit.runner import KERNEL_NAME

    export = median_seconds(lambda: export_html(executed, html), 3)
    starts, stops = [], []
    for _ in range(2):
        started = time.perf_counter()
        manager, client = start_new_kernel(kernel_name=KERNEL_NAME)  # returns once the kernel answers
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.stop_channels()
        manager.shutdown_kernel()
        stops.append(time.perf_counter() - started)
    return {"export_html_seconds": export, "kernel_start_seconds": statistics.median(starts),
            "kernel_shutdown_seconds": statistics.median(stops)}


CHILD_KINDS = {"answer": child_answer, "run_ci": child_run_ci, "runner": child_runner}


def child_main(spec_json: str) -> int:
    """Entry point of a child: run one case and print its result as one JSON line on stdout.

    Whatever the case itself prints goes to stderr, so stdout carries only the result.
    """
    result_fd = os.dup(1)
    os.dup2(2, 1)
    spec = json.loads(spec_json)
    try:
        result = CHILD_KINDS[spec["kind"]](spec)
    except MemoryError:
        result = {"status": "oom", "reason": "MemoryError"}
    except Exception as exc:  # recorded by the parent; the suite goes on
        status = "oom" if "OutOfMemory" in type(exc).__name__ else "failed"
        first = (str(exc).strip().splitlines() or [""])[0]
        result = {"status": status, "reason": f"{type(exc).__name__}: {first}"[:200]}
    sys.stdout.flush()
    os.write(result_fd, (json.dumps(result) + "\n").encode())
    return 0


# --------------------------------------------------------------------------- parent side


def say(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


def run_child(spec: dict, timeout: float) -> dict:
    """Run one case in a child process; its result with ``rss_mib``, its peak resident memory.

    A workload's child reports the peak of its computation (without the harness's canonical
    form of the answer): its own ``VmHWM`` and its process tree sampled every 0.2 s. For
    other children (run_ci), the resident memory of the child's whole process tree (the
    Jupyter kernels) is sampled every 0.2 s here. ``ru_maxrss`` from ``os.wait4`` serves
    neither: it counts a descendant as the largest single process, not a sum, and it
    includes the suite's own peak from before the exec. The child gets a session of its
    own so that a timeout kills it with every process it started.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.suite", "--child", json.dumps(spec)],
                                cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        timed_out = False
        tree_peak, next_sample = 0, 0.0
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() >= next_sample:
                    tree_peak = max(tree_peak, tree_rss_bytes(proc.pid))
                    next_sample = time.monotonic() + 0.2
                if time.monotonic() > deadline:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
        except BaseException:  # Ctrl-C: the child is in a session of its own, so no terminal signal reaches it
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            raise
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        # ru_maxrss includes the suite's own peak from before the exec (see own_peak_bytes)
        rss_mib = tree_peak / 2**20 if tree_peak else usage.ru_maxrss / 1024
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        err.seek(0)
        err_tail = [line for line in err.read().decode(errors="replace").splitlines() if line.strip()][-1:]
    if timed_out:
        return {"status": "timeout", "reason": f"killed after {timeout:g} s", "rss_mib": rss_mib}
    if code == -signal.SIGKILL:  # not ours: the kernel's OOM killer
        return {"status": "oom", "reason": "killed by SIGKILL (out of memory)", "rss_mib": rss_mib}
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        reason = f"exit {code}" + (f": {err_tail[0][:160]}" if err_tail else "")
        return {"status": "failed", "reason": reason, "rss_mib": rss_mib}
    # an answer's child reports the peak of the computation itself (see child_answer)
    return {**result, "rss_mib": result.pop("peak_mib", rss_mib)}


def tree_rss_bytes(root: int) -> int:
    """Resident memory of process ``root`` and all its descendants now (Linux /proc; 0 elsewhere)."""
    parents = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:  # "pid (comm) state ppid ...": comm may hold spaces
                    parents[int(entry.name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def plan_cases(args, workloads) -> list[dict]:
    """The cases to run, in order: per size, per workload, per implementation (then run_ci)."""
    chosen = [*workloads.WORKLOADS, RUN_CI] if args.workloads is None else args.workloads
    cases = []
    for label in args.sizes:
        names = [w for w in chosen if w != RUN_CI]
        if not names:
            break
        parquet, events = bench_dataset(label)
        repeat = args.repeat or (3 if label == "1M" else 1)
        for workload in names:
            for implementation in workloads.IMPLEMENTATIONS[workload]:
                if args.implementations and implementation not in args.implementations:
                    continue
                case = {"size": label, "events": events, "workload": workload, "implementation": implementation,
                        "repeat": repeat, "spec": {"kind": "answer", "workload": workload,
                                                   "implementation": implementation, "parquet": str(parquet),
                                                   "memory_limit": args.memory_limit, "threads": args.threads}}
                if implementation == PANDAS and 0 < args.pandas_max_events < events:
                    case["skip"] = PANDAS_SKIP
                if f"{label}:{workload}" in (args.skip or []):
                    case["skip"] = "left out with --skip"
                elif implementation == SPARK and label != SPARK_SIZE:
                    case["skip"] = f"Spark local[N] is measured at {SPARK_SIZE} only"
                elif implementation == SPARK:
                    case["repeat"] = 1  # a minute or more per run
                cases.append(case)
    if RUN_CI in chosen:
        cases.append({"size": "CI", "events": ci_events(), "workload": RUN_CI,
                      "implementation": RUN_CI_IMPLEMENTATION, "repeat": args.repeat or 1,
                      "spec": {"kind": "run_ci"}})
    return cases


def measure(case: dict, timeout: float, position: str) -> dict:
    """Run a case ``repeat`` times (stopping at the first failure): median time, max RSS, checksum."""
    row = {key: case[key] for key in ("size", "events", "workload", "implementation")}
    row.update(seconds=None, events_per_s=None, rss_mib=None, checksum=None, status="ok", reason=None,
               repeats=[])
    name = f"{position} {case['size']} {case['workload']} {case['implementation']}"
    if "skip" in case:
        row.update(status="skipped", reason=case["skip"])
        say(f"{name}: skipped: {case['skip']}")
        return row
    for i in range(case["repeat"]):
        say(f"{name} (run {i + 1}/{case['repeat']}) ...")
        result = run_child(case["spec"], timeout)
        row["repeats"].append(result)
        if result["status"] != "ok":
            row.update(status=result["status"], reason=result.get("reason"))
            say(f"    {result['status']}: {result.get('reason')} (peak {result['rss_mib']:,.0f} MiB)")
            break
        say(f"    {result['seconds']:.2f} s, peak {result['rss_mib']:,.0f} MiB, checksum {result['checksum']}")
    row["rss_mib"] = max(r["rss_mib"] for r in row["repeats"])
    if row["status"] == "ok":
        row["seconds"] = statistics.median(r["seconds"] for r in row["repeats"])
        row["events_per_s"] = row["events"] / row["seconds"]
        checksums = {r["checksum"] for r in row["repeats"]}
        # an answer that changes between repeats cannot be compared: shown as a mismatch
        row["checksum"] = checksums.pop() if len(checksums) == 1 else VARIES
    return row


def compare(rows: list[dict]) -> list[str]:
    """Fill ``x_pandas`` and ``identical`` per row; one message per (size, workload) whose answers differ."""
    mismatches = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["size"], row["workload"]), []).append(row)
    for (size, workload), group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        pandas = next((r for r in ok if r["implementation"] == PANDAS), None)
        checksums = {r["checksum"] for r in ok}
        identical = "✗" if VARIES in checksums or len(checksums) > 1 else "–" if len(ok) < 2 else "✓"
        for row in group:
            row["x_pandas"] = pandas["seconds"] / row["seconds"] if pandas and row["status"] == "ok" else None
            row["identical"] = identical if row["status"] == "ok" else "–"
        if identical == "✗":
            which = ", ".join(f"{r['implementation']} {r['checksum']}" for r in ok)
            mismatches.append(f"{workload} at {size}: the answers differ ({which})")
    return mismatches


def growth(rows: list[dict]) -> list[dict]:
    """The log-log slope of time against events per workload and implementation (1.0 = linear)."""
    import numpy as np

    series: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] == "ok" and row["workload"] != RUN_CI:
            series.setdefault((row["workload"], row["implementation"]), []).append(row)
    fits = []
    for (workload, implementation), points in series.items():
        points.sort(key=lambda r: r["events"])
        slope = None
        if len(points) >= 2:
            slope = float(np.polyfit(np.log([r["events"] for r in points]),
                                     np.log([r["seconds"] for r in points]), 1)[0])
        fits.append({"workload": workload, "implementation": implementation, "slope": slope,
                     "sizes": [r["size"] for r in points]})
    return fits


def fmt(value, spec: str, missing: str = "–") -> str:
    """``value`` formatted with ``spec``, or ``missing`` when None."""
    return missing if value is None else format(value, spec)


def results_table(rows: list[dict]) -> str:
    """The cases as a Markdown table."""
    lines = ["| size | events | workload | implementation | wall s | events/s | peak RSS MiB | × pandas "
             "| checksum | identical | status |",
             "|---|--:|---|---|--:|--:|--:|--:|---|:-:|---|"]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        rate = r["events_per_s"]
        rate = None if rate is None else f"{rate / 1e6:.2f}M" if rate >= 1e5 else f"{rate:,.0f}"
        lines.append(f"| {r['size']} | {r['events']:,} | {r['workload']} | {r['implementation']} "
                     f"| {fmt(r['seconds'], '.2f')} | {rate or '–'} | {fmt(r['rss_mib'], ',.0f')} "
                     f"| {fmt(r['x_pandas'], '.1f')}{'×' if r['x_pandas'] is not None else ''} "
                     f"| {r['checksum'] or '–'} | {r['identical']} | {status} |")
    return "\n".join(lines)


def growth_lines(fits: list[dict]) -> str:
    """One line per workload and implementation: the fitted slope and whether it is linear or better."""
    if fits and all(f["slope"] is None for f in fits):
        return f"- n/a: every case was measured at {', '.join(sorted({s for f in fits for s in f['sizes']}))} only"
    lines = []
    for f in fits:
        if f["slope"] is None:
            lines.append(f"- {f['workload']} ({f['implementation']}): n/a (measured at {', '.join(f['sizes'])} only)")
            continue
        # 1.05, not 1.0: two or three points of a noisy timing do not pin a slope closer than that
        verdict = "no faster than linear" if f["slope"] <= 1.05 else "FASTER THAN LINEAR"
        lines.append(f"- {f['workload']} ({f['implementation']}): slope {f['slope']:.2f} over "
                     f"{' → '.join(f['sizes'])} ({verdict})")
    return "\n".join(lines)


def runner_overhead(copies: int, jobs_list: list[int], timeout: float) -> list[dict]:
    """``funnelkit.runner.run`` on ``copies`` empty notebooks for each ``jobs``, each in a child process."""
    results = []
    for jobs in jobs_list:
        say(f"runner overhead: {copies} empty notebooks, jobs={jobs} ...")
        spec = {"kind": "runner", "copies": copies, "jobs": jobs, "parts": jobs == jobs_list[0]}
        result = {"jobs": jobs, "notebooks": copies, **run_child(spec, timeout)}
        say(f"    {result['status']}: " + (f"{result['per_notebook']:.2f} s per notebook"
                                           if result["status"] == "ok" else str(result.get("reason"))))
        results.append(result)
    return results


def runner_table(results: list[dict]) -> str:
    """The runner's overhead as Markdown: per jobs, then the parts of one notebook."""
    lines = ["| jobs | notebooks | total s | s per notebook | warm-up run of 1 notebook s | peak RSS MiB | status |",
             "|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason')}"
        lines.append(f"| {r['jobs']} | {r['notebooks']} | {fmt(r.get('seconds'), '.2f')} "
                     f"| {fmt(r.get('per_notebook'), '.2f')} | {fmt(r.get('cold_seconds'), '.2f')} "
                     f"| {r['rss_mib']:,.0f} | {status} |")
    parts = next((r for r in results if "export_html_seconds" in r), None)
    if parts:
        lines += ["", f"Of one notebook: kernel start {parts['kernel_start_seconds']:.2f} s, kernel shutdown "
                  f"{parts['kernel_shutdown_seconds']:.2f} s, HTML export {parts['export_html_seconds']:.2f} s. "
                  "The HTML export runs in the runner's process (nbconvert's Python API): no CLI process "
                  "is started per notebook."]
    return "\n".join(lines)


def git_commit() -> str | None:
    """The checked-out commit, read from ``.git`` (no git process), or None."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: ".git" names the real folder
            git = (ROOT / git.read_text().split("gitdir:", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head[4:].strip()
        common = git / "commondir"
        folders = [git] + ([(git / common.read_text().strip()).resolve()] if common.is_file() else [])
        for folder in folders:
            if (folder / ref).is_file():
                return (folder / ref).read_text().strip()
            packed = folder / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(f" {ref}"):
                        return line.split()[0]
    except (OSError, IndexError):
        pass
    return None


def machine_info() -> dict:
    """What the timings depend on: cores, memory, versions, commit."""
    import duckdb
    import pandas

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
              if line.startswith("model name")]
    return {"cpu_count": os.cpu_count(), "cpu": models[0] if models else platform.processor(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "pandas": pandas.__version__, "git_commit": git_commit()}


def plot(rows: list[dict], path: Path) -> None:
    """Wall time against events on log-log axes, one line per workload and implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(9, 6))
    series: dict[tuple, list[dict]] = {}
    for r in ok:
        series.setdefault((r["workload"], r["implementation"]), []).append(r)
    # colour = workload, marker and line style = implementation: readable with a dozen lines
    colours = {w: f"C{i % 10}" for i, w in enumerate(dict.fromkeys(w for w, _ in series))}
    styles = {m: s for m, s in zip(dict.fromkeys(m for _, m in series),
                                   [("o", "-"), ("s", ":"), ("^", "-."), ("D", (0, (1, 3)))] * 3)}
    for (workload, implementation), points in series.items():
        points.sort(key=lambda r: r["events"])
        marker, line = styles[implementation]
        ax.plot([r["events"] for r in points], [r["seconds"] for r in points], marker=marker, linestyle=line,
                color=colours[workload], label=f"{workload} ({implementation})")
    sized = [r for r in ok if r["workload"] != RUN_CI]  # run_ci's lone point says nothing about growth
    if sized:
        # slope 1 through the median time at the smallest size: a line parallel to it grows linearly
        x0 = min(r["events"] for r in sized)
        y0 = statistics.median(r["seconds"] for r in sized if r["events"] == x0)
        x1 = max(max(r["events"] for r in sized), 10 * x0)
        ax.plot([x0, x1], [y0, y0 * x1 / x0], "k--", linewidth=1, label="slope 1 (linear growth)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in the log (count)")
    ax.set_ylabel("wall time (s)")
    ax.set_title("funnelkit benchmarks: wall time against events (log–log)")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out: Path, stamp: str, payload: dict, rows: list[dict]) -> list[Path]:
    """``bench-<stamp>.json`` / ``.png`` and ``latest.json`` / ``.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    written = []
    for name in (f"bench-{stamp}", "latest"):
        (out / f"{name}.json").write_text(text, encoding="utf-8")
        plot(rows, out / f"{name}.png")
        written += [out / f"{name}.json", out / f"{name}.png"]
    return written


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {QUICK_SIZE}, once, no run_ci, runner overhead with 2 notebooks and 1 job")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--workloads", nargs="+", metavar="NAME", help=f"default: all, and {RUN_CI}")
    parser.add_argument("--implementations", nargs="+", metavar="NAME", help="default: all each workload has")
    parser.add_argument("--skip", nargs="+", metavar="SIZE:WORKLOAD", default=["100M:features"],
                        help="cases to leave out (default 100M:features: its answer is a pandas table of "
                             "26.6M sessions; at 20M events, the 5.3M sessions took 6.5 GB with DuckDB, 13.8 GB with pandas)")
    parser.add_argument("--repeat", type=int, help="runs per case (default: 3 at 1M, 1 above); median time")
    # 2 GB is the budget of the whole process: DuckDB's limit caps its buffers, and the Python
    # process around them took about 170 MiB more at 100M events (2,076 MiB with the limit at 2GB)
    parser.add_argument("--memory-limit", default="1.5GB", help="DuckDB memory limit (default 1.5GB)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's own)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run of a case (default 1800)")
    parser.add_argument("--pandas-max-events", type=int, default=30_000_000,
                        help="skip pandas on larger logs (default 30,000,000; 0: no limit)")
    parser.add_argument("--skip-runner", action="store_true", help="no runner overhead section")
    parser.add_argument("--runner-notebooks", type=int, default=4, metavar="K",
                        help="empty notebooks in the runner overhead (default 4)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.runner_notebooks = [QUICK_SIZE], 1, 2
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit status 1 if implementations disagree on an answer."""
    args = parse_args(argv)
    from benchmarks import workloads

    if args.quick:  # run_ci takes minutes: never in a quick run
        args.workloads = [w for w in args.workloads or workloads.WORKLOADS if w != RUN_CI]
    unknown = set(args.workloads or []) - {*workloads.WORKLOADS, RUN_CI}
    if unknown:
        say(f"unknown workloads: {', '.join(sorted(unknown))}; available: {', '.join(workloads.WORKLOADS)}, {RUN_CI}")
        return 2
    started = dt.datetime.now(dt.timezone.utc)
    cases = plan_cases(args, workloads)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    partial = args.out / f"bench-{stamp}.partial.json"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, case in enumerate(cases):
        rows.append(measure(case, args.timeout, f"[{i + 1}/{len(cases)}]"))
        # a long run stopped half-way (a 100M case can take many minutes) keeps what it measured
        partial.write_text(json.dumps({"cases": rows}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    mismatches = compare(rows)
    fits = growth(rows)
    runner = [] if args.skip_runner else runner_overhead(
        args.runner_notebooks, [1] if args.quick else [1, 2], args.timeout)

    payload = {"started_utc": started.isoformat(timespec="seconds"),
               "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "argv": sys.argv[1:] if argv is None else argv,
               "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "machine": machine_info(), "workloads": {**workloads.WORKLOADS, RUN_CI: "funnelkit run on params/ci.yaml"},
               "cases": rows, "growth": fits, "runner_overhead": runner, "mismatches": mismatches}
    written = write_results(args.out, stamp, payload, rows)
    partial.unlink()

    print(results_table(rows))
    print("\nGrowth of time with events (log-log slope; 1.0 = linear):")
    print(growth_lines(fits) or "- no data")
    if runner:
        print("\nRunner overhead (`funnelkit.runner.run` on empty notebooks):\n")
        print(runner_table(runner))
    print(f"\nResults: {', '.join(str(p) for p in written)}")
    if mismatches:
        print("\nImplementations disagree:\n" + "\n".join(f"- {m}" for m in mismatches))
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2]))
    sys.exit(main())
