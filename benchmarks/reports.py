"""The reports workload: how long each notebook takes, and which cells the time goes to.

Run from the repository root::

    .venv/bin/python -m benchmarks.reports                       # default shop, --jobs 1 and 2
    .venv/bin/python -m benchmarks.reports --shops default 1M    # and a 1M-user shop (about 7M events)
    .venv/bin/python -m benchmarks.reports --shops ci --jobs 1 --top 5

Each shop is run with ``funnelkit run`` (its own interpreter, as a user runs it) into a
temporary reports folder, once per ``--jobs`` value. The simulated data is generated before
the clock starts. From every executed notebook the times papermill records per cell give the
notebook's execution time (the sum of its cells; kernel start and HTML export are the
difference to the wall time) and its slowest cells. The tables compare each notebook with
the issue's targets: at most 15 s per notebook and 60 s for the four (40 s with ``--jobs 2``)
on the default shop, at most 2 minutes per notebook on the 1M-user shop. The JSON of the run
goes to ``benchmarks/results/reports-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: shop label → (params file, overrides of its ``simulation`` section)
SHOPS = {
    "ci": (ROOT / "params" / "ci.yaml", {}),
    "default": (ROOT / "params" / "default.yaml", {}),
    "1M": (ROOT / "params" / "default.yaml", {"n_users": 1_000_000}),
}
#: seconds per notebook and for all of them, per shop (None: no target stated)
TARGETS = {"default": {"notebook": 15.0, "total": {1: 60.0, 2: 40.0}}, "1M": {"notebook": 120.0, "total": {}}}


def shop_params(label: str, folder: Path) -> Path:
    """A params file for the shop ``label``: the shipped file, or a copy with the simulation enlarged."""
    import yaml

    path, overrides = SHOPS[label]
    if not overrides:
        return path
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    simulation = raw.setdefault("simulation", {})
    simulation.update(overrides)
    # the cache stays where the shipped file puts it, not beside the temporary copy
    simulation["cache_dir"] = str((path.parent / simulation.get("cache_dir", "../data/simulated")).resolve())
    copy = folder / f"{label}.yaml"
    copy.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return copy


def prepare(params_path: Path) -> str:
    """Generate the shop's data now, so the timed run finds it cached; its label."""
    from funnelkit.data import describe_source
    from funnelkit.params import load_params

    label, _ = describe_source(load_params(params_path))
    return label


def cell_times(executed: Path, top: int) -> dict:
    """Execution seconds of a notebook (sum over its cells) and its ``top`` slowest cells."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        seconds = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration") or 0.0
        source = "".join(cell["source"]).strip().splitlines()
        first = next((line for line in source if line.strip() and not line.startswith(("from ", "import ", "#"))),
                     source[0] if source else "")
        cells.append({"cell": index, "seconds": float(seconds), "code": first[:70]})
    slowest = sorted(cells, key=lambda c: c["seconds"], reverse=True)[:top]
    return {"seconds": sum(c["seconds"] for c in cells), "slowest": slowest}


def run_shop(label: str, jobs: int, top: int, folder: Path) -> dict:
    """Time ``funnelkit run`` on one shop with ``jobs``; per-notebook cell times."""
    params_path = shop_params(label, folder)
    data = prepare(params_path)
    with tempfile.TemporaryDirectory(prefix="funnelkit-bench-reports-") as reports:
        command = [sys.executable, "-m", "funnelkit", "run", "--params", str(params_path), "--reports", reports,
                   "--jobs", str(jobs), "--no-progress"]
        started = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        notebooks = {path.stem: cell_times(path, top) for path in sorted(Path(reports).glob("[0-9]*.ipynb"))}
    status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode}): " + \
        ([line for line in done.stderr.splitlines() if line.strip()][-1:] or [""])[0][:160]
    return {"shop": label, "data": data, "jobs": jobs, "wall_seconds": wall, "status": status, "notebooks": notebooks}


def verdict(seconds: float, target: float | None) -> str:
    if target is None:
        return "–"
    return "✓" if seconds <= target else f"✗ +{seconds - target:.0f} s"


def tables(runs: list[dict]) -> str:
    """Markdown: one table of notebooks per run, then the slowest cells of each notebook."""
    out = []
    for run in runs:
        target = TARGETS.get(run["shop"], {})
        out.append(f"### {run['shop']} shop, --jobs {run['jobs']}: {run['wall_seconds']:.1f} s wall "
                   f"({verdict(run['wall_seconds'], target.get('total', {}).get(run['jobs']))}), {run['status']}\n")
        out.append(f"_{run['data']}_\n")
        out.append("| notebook | cells s | target | slowest cells (s) |")
        out.append("|---|---:|---|---|")
        for name, notebook in run["notebooks"].items():
            slowest = "; ".join(f"{c['seconds']:.1f} cell {c['cell']} `{c['code']}`" for c in notebook["slowest"])
            out.append(f"| {name} | {notebook['seconds']:.1f} | {verdict(notebook['seconds'], target.get('notebook'))} "
                       f"| {slowest} |")
        cells = sum(n["seconds"] for n in run["notebooks"].values())
        out.append(f"\nCells {cells:.1f} s of {run['wall_seconds']:.1f} s wall; the rest is kernel start, imports "
                   "outside cells, HTML export and the index" + (" (notebooks overlap with --jobs 2)" if run["jobs"] > 1 else "")
                   + ".\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shops", nargs="+", choices=list(SHOPS), default=["default"])
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--top", type=int, default=3, help="slowest cells listed per notebook (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="funnelkit-bench-params-") as folder:
        for shop in args.shops:
            for jobs in args.jobs:
                print(f"running the {shop} shop with --jobs {jobs} ...", file=sys.stderr, flush=True)
                runs.append(run_shop(shop, jobs, args.top, Path(folder)))
    print(tables(runs))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"reports-{stamp}.json").write_text(json.dumps(runs, indent=1), encoding="utf-8")
    return 0 if all(run["status"] == "ok" for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
