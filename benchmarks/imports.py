"""Import time: what ``import funnelkit.<module>`` costs against the libraries it cannot avoid.

Run from the repository root::

    .venv/bin/python -m benchmarks.imports              # 15 rounds
    .venv/bin/python -m benchmarks.imports --rounds 30

Each round starts a fresh interpreter for every statement, in turn (so a busy spell of the
machine hits all of them alike), and times it from the outside: the interpreter's own start
is in every figure. The table gives the median wall and CPU time per statement and the ratio
of its median wall time to the baseline's (``import pandas, duckdb, pydantic``, the
libraries every funnel needs), against issue 13's target of 1.3× for ``funnelkit.funnel``.
The heavy libraries a statement pulled in are listed (statsmodels, scipy, sklearn,
matplotlib, pyspark): they should be imported where they are used.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

BASELINE = "import pandas, duckdb, pydantic"
STATEMENTS = [BASELINE, "import funnelkit.funnel", "import funnelkit", "import funnelkit.data"]
TARGET = {"import funnelkit.funnel": 1.3}
HEAVY = ("statsmodels", "scipy", "sklearn", "matplotlib", "pyspark", "implicit", "nbformat")
_REPORT_HEAVY = ("import sys, json; "
                 f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")


def run_once(statement: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a fresh interpreter running ``statement``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_modules(statement: str) -> list[str]:
    """The heavy libraries (:data:`HEAVY`) that ``statement`` leaves imported."""
    out = subprocess.run([sys.executable, "-c", f"{statement}; {_REPORT_HEAVY}"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(statements: list[str], rounds: int) -> dict[str, dict]:
    """Median wall and CPU seconds of each statement over ``rounds`` interleaved rounds (after a warm-up)."""
    for statement in statements:  # warm the file cache: the first import reads every .pyc from disk
        run_once(statement)
    times = {statement: [] for statement in statements}
    for _ in range(rounds):
        for statement in statements:
            times[statement].append(run_once(statement))
    return {s: {"wall": statistics.median(w for w, _ in t), "cpu": statistics.median(c for _, c in t),
                "heavy": heavy_modules(s)} for s, t in times.items()}


def table(results: dict[str, dict], baseline: str = BASELINE) -> str:
    """A Markdown table: median wall and CPU time, ratio to the baseline, target, heavy libraries."""
    base = results[baseline]["wall"]
    lines = ["| statement | wall s | CPU s | × baseline | target | heavy libraries imported |",
             "|---|--:|--:|--:|--:|---|"]
    for statement, r in results.items():
        ratio = r["wall"] / base
        target = TARGET.get(statement)
        verdict = "–" if target is None else f"{target:.1f}× {'✓' if ratio <= target else '✗'}"
        lines.append(f"| `{statement}` | {r['wall']:.3f} | {r['cpu']:.3f} | {ratio:.2f}× | {verdict} | "
                     f"{', '.join(r['heavy']) or 'none'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args(argv)
    print(table(measure(STATEMENTS, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
