"""How the funnel engine scales with the size of the event log.

For simulated shops of growing size, times (median of ``--repeat`` runs):

* ``scan``: one pass over the loaded events (count by event type): the
  baseline, measured in the same run, that every ratio is against;
* the funnel in each mode (``ordered``, ``strict``, ``any_order``), per user;
* ``breakdown+trend``: one segment breakdown and the weekly trend from a
  computed result.

Absolute times vary with the machine; the ``× scan`` ratios and the growth
with size are what to compare between runs. Also prints load time and the
simulator's throughput. Run::

    .venv/bin/python benchmarks/funnel_engine.py --users 10000 50000 200000
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.suite import median_seconds  # noqa: E402
from funnelkit.data import load_events
from funnelkit.engines import quote
from funnelkit.funnel import run_funnel
from funnelkit.params import DataParams, EngineParams, FunnelParams, SimulationParams
from funnelkit.schema import COLUMNS, SEGMENTS
from funnelkit.simulate import ensure_dataset, fingerprint




def bench(n_users: int, cache_dir: Path, repeat: int, engine: EngineParams) -> list[dict]:
    params = SimulationParams(n_users=n_users, cache_dir=cache_dir)
    cached = (cache_dir / f"shop-{fingerprint(params)}").is_dir()
    started = time.perf_counter()
    dataset = ensure_dataset(params)
    simulate_s = time.perf_counter() - started
    started = time.perf_counter()
    events = load_events(dataset.events_path, DataParams(), engine=engine)
    load_s = time.perf_counter() - started
    n_events = events.report.rows_kept
    table = quote(events.table)

    scan = median_seconds(
        lambda: events.rows(f"SELECT {quote(COLUMNS.event_type)}, count(*) FROM {table} GROUP BY 1"),
        repeat,
    )
    rows = [{"users": n_users, "events": n_events, "task": "scan (baseline)", "seconds": scan}]
    for mode in ("ordered", "strict", "any_order"):
        spec = FunnelParams(mode=mode)
        seconds = median_seconds(lambda: run_funnel(events, spec).steps, repeat)
        rows.append({"users": n_users, "events": n_events, "task": f"funnel {mode}", "seconds": seconds})
    result = run_funnel(events, FunnelParams())
    seconds = median_seconds(lambda: (result.breakdown(SEGMENTS.device), result.trend()), repeat)
    rows.append({"users": n_users, "events": n_events, "task": "breakdown+trend", "seconds": seconds})
    rows.append({"users": n_users, "events": n_events, "task": "load (validate)", "seconds": load_s})
    if not cached:  # a cache hit is not a measurement of the simulator
        rows.append({"users": n_users, "events": n_events, "task": "simulate", "seconds": simulate_s})
    for row in rows:
        row["x scan"] = row["seconds"] / scan
        row["events/s"] = n_events / row["seconds"]
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="simulated shops (default: a temporary folder)")
    args = parser.parse_args(argv)
    engine = EngineParams(threads=args.threads, memory_limit="4GB")
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache_dir or Path(scratch)
        rows = [row for n in args.users for row in bench(n, cache, args.repeat, engine)]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(table.to_string(index=False, formatters={
            "events": "{:,}".format, "seconds": "{:.3f}".format, "x scan": "{:.1f}".format,
            "events/s": "{:,.0f}".format,
        }))


if __name__ == "__main__":
    main()
