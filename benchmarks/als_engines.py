"""implicit's ALS against Spark MLlib's ALS: fit time and NDCG@10 on the same split, settings and metric code.

The split is notebook 03's: the built-in shop of ``--params`` (default ``params/default.yaml``,
50,000 users) without the accounts the simulator planted as bots, click farm or fake-order
ring, cut at the default temporal cut-off (``recommend.make_split``, DuckDB). Each ALS
setting is fitted by both libraries with the same four numbers (factors, regularization,
alpha, iterations; they do not make the same objective, see
``funnelkit.recommend.spark_als.SparkALSRecommender``), ranks the same test users with
the same batched top-k code, and is scored by ``funnelkit.recommend.metrics``:

* ``fit s``: wall time of ``fit``; for MLlib the matrix into Spark, MLlib's fit and the
  factors back (``to Spark``, ``MLlib fit``, ``collect``). implicit uses every core
  (``recommend.threads: 0``), Spark its ``--master`` (``local[2]``). A tiny MLlib fit runs
  first, untimed, so the JVM's start and warm-up are not charged to the first setting;
* ``rank s``: top-10 lists for the evaluated users, batched in NumPy for both;
* ``NDCG@10 (95% CI)``: mean over the evaluated users with the percentile bootstrap over
  users of ``metrics.bootstrap_interval``; ``MLlib − implicit`` is the paired difference
  on the same users (``metrics.paired_difference``).

Settings: ``default`` is ``RecommendParams().als`` (64 factors, regularization 0.05, alpha 10),
``sweep-choice`` the sweep's best on the default shop (16, 1, 1); both 15 iterations.
Popularity is listed as the floor. ``--users N`` simulates a shop of N users instead (cached
in ``data/bench``; a million users take about a minute) and ``--max-eval-users`` evaluates a
seeded random sample of test users. Run::

    .venv/bin/python benchmarks/als_engines.py
    .venv/bin/python benchmarks/als_engines.py --users 1000000 --max-eval-users 20000 --settings sweep-choice
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit runs its own threads; see funnelkit.recommend.models

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from funnelkit.engines import open_events  # noqa: E402
from funnelkit.groundtruth import planted  # noqa: E402
from funnelkit.params import ALSSettings, load_params  # noqa: E402
from funnelkit.recommend import (PopularityRecommender, SparkALSRecommender, als_model, evaluate,  # noqa: E402
                                 make_split)
from funnelkit.recommend import metrics  # noqa: E402
from funnelkit.engines.spark import spark_session  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "default": ALSSettings(factors=64, regularization=0.05, alpha=10.0, iterations=15),  # the defaults before issue 17
    "sweep-choice": ALSSettings(factors=16, regularization=1.0, alpha=1.0, iterations=15),  # the sweep's best on 50k
}


def _split(args):
    params = load_params(args.params)
    if args.users is not None:
        simulation = params.simulation.model_copy(update={"n_users": args.users, "cache_dir": ROOT / "data" / "bench"})
        params = params.model_copy(update={"simulation": simulation})
    spec = params.recommend
    if args.max_eval_users is not None:
        spec = spec.model_copy(update={"max_eval_users": args.max_eval_users})
    started = time.perf_counter()
    events = open_events(params)
    truth = planted(params)
    excluded = truth.anomalous_accounts if truth is not None else set()
    shoppers = events.without_users(excluded) if excluded else events
    split = make_split(shoppers, spec)
    return params, spec, split, time.perf_counter() - started


def _warm_up(spark) -> None:
    rng = np.random.default_rng(0)
    SparkALSRecommender(factors=4, iterations=2, spark=spark).fit(sp.csr_matrix(rng.random((50, 20)) < 0.3,
                                                                                dtype=np.float32))


def run(args) -> tuple[pd.DataFrame, dict]:
    params, spec, split, split_seconds = _split(args)
    spark = spark_session(args.master, {"spark.driver.memory": args.driver_memory})
    _warm_up(spark)
    k = spec.headline_k
    column = f"ndcg@{k}"
    rows, per_user = [], {}

    def score(setting: str, library: str, model) -> None:
        if isinstance(model, SparkALSRecommender) and args.blocks is not None:
            model.blocks = args.blocks
        result = evaluate({"model": model}, split, [k], exclude_seen=spec.exclude_seen,
                          max_users=spec.max_eval_users, seed=spec.seed)
        values = result.per_user["model"][column].to_numpy()
        per_user[setting, library] = values
        low, high = metrics.bootstrap_interval(values, n_boot=spec.bootstrap, seed=spec.seed)
        timing = result.timings.iloc[0]
        breakdown = getattr(model, "timings_", {})
        rows.append({"setting": setting, "library": library, "fit s": timing["fit_seconds"],
                     "to Spark": breakdown.get("to_spark"), "MLlib fit": breakdown.get("fit"),
                     "collect": breakdown.get("collect"), "rank s": timing["recommend_seconds"],
                     f"NDCG@{k}": values.mean(), "low": low, "high": high, "users": len(values)})
        print(f"  {setting:>12} {library:<12} fit {timing['fit_seconds']:7.1f} s  NDCG@{k} {values.mean():.4f}",
              flush=True)

    score("-", "popularity", PopularityRecommender())
    for name in args.settings:
        settings = SETTINGS[name]
        if args.iterations is not None:
            settings = settings.model_copy(update={"iterations": args.iterations})
        score(name, "implicit", als_model(settings, spec))
        score(name, "Spark MLlib", als_model(settings, spec, spark))
    differences = {name: metrics.paired_difference(per_user[name, "Spark MLlib"], per_user[name, "implicit"],
                                                   n_boot=spec.bootstrap, seed=spec.seed) for name in args.settings}
    train = split.train.matrix
    info = {"users simulated": params.simulation.n_users, "split s": split_seconds,
            "matrix": f"{train.shape[0]:,} users × {train.shape[1]:,} items, {train.nnz:,} pairs",
            "test users": len(split.test_users), "evaluated": rows[0]["users"], "master": args.master,
            "blocks": args.blocks or spark.sparkContext.defaultParallelism, "spark": spark.version,
            "differences": differences}
    return pd.DataFrame(rows), info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "default.yaml")
    parser.add_argument("--users", type=int, default=None, help="simulate a shop of this many users (data/bench)")
    parser.add_argument("--max-eval-users", type=int, default=None, help="evaluate a random sample of test users")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--blocks", type=int, default=None, help="MLlib's blocks (default: the session's cores)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="ALS settings to fit (default: all)")
    parser.add_argument("--iterations", type=int, default=None, help="override the settings' 15 iterations")
    args = parser.parse_args(argv)
    table, info = run(args)
    print()
    for key, value in info.items():
        if key != "differences":
            print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    k_column = next(c for c in table.columns if c.startswith("NDCG@"))
    table[f"{k_column} (95% CI)"] = [f"{v:.4f} ({lo:.4f}–{hi:.4f})" for v, lo, hi in
                                     zip(table[k_column], table["low"], table["high"])]
    shown = table.drop(columns=[k_column, "low", "high"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep=""))
    for name, (diff, low, high) in info["differences"].items():
        print(f"{name}: MLlib − implicit {k_column} = {diff:+.4f} (95% CI {low:+.4f} to {high:+.4f}), paired")


if __name__ == "__main__":
    main()
