"""How the ALS recommendation study scales with the number of users.

For simulated shops of growing size, the wall time of each stage of the study
with the report's default settings (``RecommendParams``):

* ``split``: the confidence matrix of the training period and the test truth
  (DuckDB aggregation, then SciPy);
* ``fit ALS`` and ``fit popularity``: the model fits;
* ``rank ALS`` and ``rank popularity``: top-k lists for the evaluated users
  (batched: no Python loop per user), then every ranking metric;
* ``bootstrap``: the NDCG interval over users.

With ``--max-eval-users`` the evaluation runs on a seeded random sample of
test users; the table then shows the sample size and the resulting interval.
Ratios are against ``fit popularity + rank popularity`` measured in the same
run (the cheapest complete recommender), since absolute times vary with the
machine. Run::

    .venv/bin/python benchmarks/recommend.py --users 50000 1000000 --max-eval-users 20000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit runs its own threads; see funnelkit.recommend.models

import pandas as pd  # noqa: E402

from funnelkit.data import load_events  # noqa: E402
from funnelkit.params import DataParams, EngineParams, RecommendParams, SimulationParams  # noqa: E402
from funnelkit.recommend import ALSRecommender, PopularityRecommender, evaluate, make_split  # noqa: E402
from funnelkit.recommend import metrics  # noqa: E402
from funnelkit.simulate import ensure_dataset  # noqa: E402


def _timed(action):
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def bench(n_users: int, cache_dir: Path, spec: RecommendParams, engine: EngineParams) -> list[dict]:
    dataset = ensure_dataset(SimulationParams(n_users=n_users, cache_dir=cache_dir))
    events = load_events(dataset.events_path, DataParams(), engine=engine)
    split, split_s = _timed(lambda: make_split(events, spec))
    timings = {}
    results = {}
    for name, model in (("popularity", PopularityRecommender()),
                        ("ALS", ALSRecommender(spec.als.factors, spec.als.regularization, spec.als.alpha,
                                               spec.als.iterations, spec.threads, spec.seed))):
        result, seconds = _timed(lambda: evaluate({name: model}, split, spec.k, exclude_seen=spec.exclude_seen,
                                                  max_users=spec.max_eval_users, seed=spec.seed))
        fit = result.timings.iloc[0]["fit_seconds"]
        timings[f"fit {name}"], timings[f"rank {name}"] = fit, seconds - fit
        results[name] = result
    column = f"ndcg@{spec.headline_k}"
    values = results["ALS"].per_user["ALS"][column].to_numpy()
    (low, high), timings["bootstrap"] = _timed(lambda: metrics.bootstrap_interval(values, n_boot=spec.bootstrap))
    baseline = timings["fit popularity"] + timings["rank popularity"]
    common = {"users": n_users, "events": events.report.rows_kept, "matrix nnz": split.train.matrix.nnz,
              "test users": len(split.test_users), "evaluated": len(results["ALS"].users),
              f"ALS {column}": f"{values.mean():.4f} ({low:.4f}–{high:.4f})"}
    rows = [{**common, "stage": "split", "seconds": split_s}]
    rows += [{**common, "stage": stage, "seconds": seconds} for stage, seconds in timings.items()]
    for row in rows:
        row["× popularity"] = row["seconds"] / baseline
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--max-eval-users", type=int, default=None)
    parser.add_argument("--factors", type=int, default=None, help="ALS factors (default: RecommendParams')")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--cache-dir", type=Path, default=None, help="simulated shops (default: a temporary folder)")
    args = parser.parse_args(argv)
    spec = RecommendParams(max_eval_users=args.max_eval_users)
    if args.factors:
        spec = spec.model_copy(update={"als": spec.als.model_copy(update={"factors": args.factors})})
    engine = EngineParams(memory_limit=args.memory_limit)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp)
        rows = [row for n in args.users for row in bench(n, cache, spec, engine)]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
