"""Tables and sentences for people: percentages with intervals, readable durations.

These functions only format numbers computed elsewhere. Every string that
comes from the data is HTML-escaped, since reports are HTML.
"""
from __future__ import annotations

import pandas as pd

from .event_types import named_event_types, other_label
from .schema import EVENTS
from .stats import TEST_NAMES, adjust_pvalues
from .text import duration, escape, escape_md, pct, pct_ci


def step_table(steps: pd.DataFrame, unit: str = "users") -> pd.DataFrame:
    """``FunnelResult.steps`` as a table to read."""
    return pd.DataFrame(
        {
            "step": [escape(s) for s in steps["step"]],
            f"{unit} reaching": steps["entrants"].map("{:,}".format),
            "from previous step": [pct_ci(r, lo, hi) for r, lo, hi in
                                   zip(steps["step_conversion"], steps["step_ci_low"], steps["step_ci_high"])],
            "from first step": [pct_ci(r, lo, hi) for r, lo, hi in
                                zip(steps["overall_conversion"], steps["overall_ci_low"], steps["overall_ci_high"])],
            f"lost ({unit})": ["–" if pd.isna(d) else f"{int(d):,}" for d in steps["drop_off"]],
            "median time from previous": [duration(v) for v in steps["median_time_from_previous"]],
            "90th pct time from previous": [duration(v) for v in steps["p90_time_from_previous"]],
            "still in window (censored)": steps["censored"].map("{:,}".format),
        }
    )


def breakdown_tests(breakdowns: list, method: str = "holm") -> pd.DataFrame:
    """One row per breakdown: the test of independence of segment and conversion, with p-values
    adjusted for testing several breakdowns at once (Holm by default).

    The ``test`` column says where each p-value comes from: the chi-square distribution, or an exact
    test when the smallest expected count is under 5 (:func:`funnelkit.stats.chi2_independence`).
    """
    raw = [b.test["pvalue"] for b in breakdowns]
    adjusted = adjust_pvalues(raw, method)
    return pd.DataFrame(
        {
            "segment": [escape(b.column) for b in breakdowns],
            "values": [len(b.table) for b in breakdowns],
            "test": [TEST_NAMES[b.test.get("method", "chi-square")] for b in breakdowns],
            "chi-square": [_number(b.test["chi2"]) for b in breakdowns],
            "df": [b.test["dof"] for b in breakdowns],
            "p-value": [_p(p) for p in raw],
            f"p-value ({method}-adjusted)": [_p(p) for p in adjusted],
            "smallest expected count": [_number(b.test["min_expected"]) for b in breakdowns],
        }
    )


def _number(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:,.1f}"


def breakdown_overview(breakdowns: list) -> pd.DataFrame:
    """All breakdowns in one table: segment, value, entrants, conversion with 95% CI."""
    columns = ["segment", "value", "entrants", "share of entrants", "converted", "conversion"]
    if not breakdowns:
        return pd.DataFrame(columns=columns)
    return pd.concat(
        [breakdown_table(b).rename(columns={escape(b.column): "value"}).assign(segment=escape(b.column))
         for b in breakdowns],
        ignore_index=True,
    )[columns]


def breakdown_table(breakdown) -> pd.DataFrame:
    table = breakdown.table
    return pd.DataFrame(
        {
            escape(breakdown.column): [escape(v) for v in table["value"]],
            "entrants": table["entrants"].map("{:,}".format),
            "share of entrants": table["share"].map(pct),
            "converted": table["converted"].map("{:,}".format),
            "conversion": [pct_ci(r, lo, hi, 2) for r, lo, hi in zip(table["conversion"], table["ci_low"], table["ci_high"])],
        }
    )


def trend_table(trend: pd.DataFrame, unit: str = "users") -> pd.DataFrame:
    """``FunnelResult.trend()`` as a table to read."""
    return pd.DataFrame(
        {
            "period start (UTC)": trend["period"].dt.strftime("%Y-%m-%d"),
            f"{unit} entering": trend["entrants"].map("{:,}".format),
            "converted": trend["converted"].map("{:,}".format),
            "conversion": [pct_ci(r, lo, hi, 2) for r, lo, hi in zip(trend["conversion"], trend["ci_low"], trend["ci_high"])],
            "still in window (censored)": trend["censored"].map("{:,}".format),
            "complete": ["yes" if c else "no (provisional)" for c in trend["complete"]],
        }
    )


def _p(p: float) -> str:
    if pd.isna(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def data_note(params) -> str:
    """Where the data came from, in one Markdown paragraph (says so when simulated)."""
    if params.simulated:
        sim = params.simulation
        text = (
            f"**The data is simulated**: funnelkit's built-in shop ({sim.n_users:,} users over {sim.days} days "
            f"from {sim.start}, seed {sim.seed}) with planted effects and anomalies, so the findings below show "
            f"what the kit finds, not facts about a real shop. Point `data.source` in a params file at your own "
            f"event log to analyse it."
        )
    elif params.engine.spark.table is not None:
        text = f"Data: Spark table {escape_md(params.engine.spark.table)}."
    else:
        text = f"Data: {escape_md(params.data.source)}, read as format {escape_md(params.data.format)}."
    return text


def planted_table(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.groundtruth.planted_step_check` as a table to read."""
    return pd.DataFrame(
        {
            "step": [escape(s) for s in check["step"]],
            "sessions at the previous step": check["sessions"].map("{:,}".format),
            "planted rate (expected)": [pct(v, 2) for v in check["expected"]],
            "observed rate": [pct_ci(r, lo, hi, 2) for r, lo, hi in zip(check["observed"], check["ci_low"], check["ci_high"])],
            "planted rate inside the interval": ["yes" if v else "no" for v in check["inside"]],
            "z (standard deviations)": [f"{z:+.2f}" for z in check["z"]],
        }
    )


def quality_table(report) -> pd.DataFrame:
    """A load's ``ValidationReport`` as a two-column table (check, value)."""
    frame = report.to_frame()
    return pd.DataFrame({"check": frame["check"].map(escape), "value": frame["value"].map(escape)})


def event_mix_table(mix: pd.DataFrame, top: int = 10, keep=EVENTS.funnel) -> pd.DataFrame:
    """:func:`funnelkit.profile.event_mix` as a table to read.

    The ``top`` most frequent event types (the types of ``keep`` always among them, see
    :func:`funnelkit.event_types.named_event_types`) get a row each; the rest one row "other (k event types)" with their
    events and share summed. Its users are shown as "–": a user can have events of several of the
    types, so distinct users do not add up.
    """
    named = named_event_types(mix.set_index("event_type")["events"], top, keep)
    rows = mix.set_index("event_type").loc[named].reset_index()
    rest = mix[~mix["event_type"].isin(named)]
    table = pd.DataFrame(
        {
            "event type": rows["event_type"].map(escape),
            "events": rows["events"].map("{:,}".format),
            "users": rows["users"].map("{:,}".format),
            "share of events": rows["share_of_events"].map(lambda v: pct(v, 2)),
        }
    )
    if len(rest):
        other = {"event type": escape(other_label(len(rest))), "events": f"{rest['events'].sum():,}", "users": "–",
                 "share of events": pct(rest["share_of_events"].sum(), 2)}
        table = pd.concat([table, pd.DataFrame([other])], ignore_index=True)
    return table


def paths_table(paths: pd.DataFrame, unit: str = "users") -> pd.DataFrame:
    """:func:`funnelkit.funnel.dropoff_paths` as a table to read."""
    return pd.DataFrame(
        {
            "path after the last step reached": paths["path"].map(escape),
            unit: paths["units"].map("{:,}".format),
            "share of those lost": paths["share"].map(pct),
        }
    )


def _interval(value: float, low: float, high: float, fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(value)} ({fmt.format(low)} to {fmt.format(high)})"


def drivers_view(drivers: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.drivers.drivers_table` to read: odds ratios and effects in percentage points."""
    view = pd.DataFrame(
        {
            "step": drivers["step"].map(escape),
            "among": drivers["given"].fillna("all sessions").map(escape),
            # the readable name ("device = mobile (vs desktop)") when the table has one
            "driver": drivers["driver" if "driver" in drivers else "term"].map(escape),
            "odds ratio (95% CI)": [_interval(v, lo, hi) for v, lo, hi in
                                    zip(drivers["odds_ratio"], drivers["odds_low"], drivers["odds_high"])],
            "effect, percentage points (95% CI)": [_interval(v * 100, lo * 100, hi * 100, "{:+.1f}") for v, lo, hi in
                                                   zip(drivers["effect"], drivers["effect_low"], drivers["effect_high"])],
            "p-value (adjusted)": [_p(p) for p in drivers["p_adjusted"]],
        }
    )
    if "planted" in drivers:
        view["planted coefficient"] = drivers["planted"].map("{:+.2f}".format)
        view["estimated coefficient (95% CI)"] = [_interval(v, lo, hi, "{:+.2f}") for v, lo, hi in
                                                  zip(drivers["coef"], drivers["coef_low"], drivers["coef_high"])]
        view["planted inside"] = drivers["inside"].map({True: "yes", False: "no"})
    return view


def scores_view(scores: pd.DataFrame) -> pd.DataFrame:
    """``ModelComparison.table()`` to read: mean over folds with 95% intervals."""
    return pd.DataFrame(
        {
            "model": scores["model"].map(escape),
            "ROC-AUC (95% CI over folds)": [_interval(v, lo, hi, "{:.3f}") for v, lo, hi in
                                            zip(scores["roc_auc"], scores["roc_auc_low"], scores["roc_auc_high"])],
            "PR-AUC (95% CI)": [_interval(v, lo, hi, "{:.3f}") for v, lo, hi in
                                zip(scores["pr_auc"], scores["pr_auc_low"], scores["pr_auc_high"])],
            "Brier score (95% CI)": [_interval(v, lo, hi, "{:.4f}") for v, lo, hi in
                                     zip(scores["brier"], scores["brier_low"], scores["brier_high"])],
        }
    )


def coefficients_view(frame: pd.DataFrame) -> pd.DataFrame:
    """A regression results ``to_frame()`` to read (coefficient, standard error, interval, p-value)."""
    return pd.DataFrame(
        {
            "term": frame.index.map(escape),
            "coefficient": frame["coef"].map("{:+.4f}".format),
            "standard error": frame["std_err"].map("{:.4f}".format),
            "95% CI": [f"{lo:+.4f} to {hi:+.4f}" for lo, hi in zip(frame["ci_lower"], frame["ci_upper"])],
            "p-value": [_p(p) for p in frame["p_value"]],
        }
    )


def digits_view(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers side by side with their digits of agreement, floats in full precision."""
    out = frame.copy()
    for column in out.columns:
        if column.endswith("digits"):
            out[column] = out[column].map("{:.1f}".format)
        elif out[column].dtype.kind == "f":
            out[column] = out[column].map("{:.12g}".format)
        else:
            out[column] = out[column].map(escape)
    return out


def accuracy_view(accuracy: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.regression.accuracy_table` to read: correct digits by method and design."""
    return pd.DataFrame(
        {
            "design": accuracy.index.map(escape),
            "rows × columns": [f"{n} × {p}" for n, p in zip(accuracy["n"], accuracy["p"])],
            "log10 κ (scaled)": accuracy["log10_cond"].map("{:.1f}".format),
            "log10 κ (raw)": accuracy["log10_cond_raw"].map("{:.1f}".format),
            "normal equations: digits": accuracy["lre_normal"].map("{:.1f}".format),
            "QR: digits": accuracy["lre_qr"].map("{:.1f}".format),
            "QR without refinement: digits": accuracy["lre_qr_plain"].map("{:.1f}".format),
        }
    )


def ranking_view(summary: pd.DataFrame, k: int) -> pd.DataFrame:
    """``Evaluation.summary()`` at one k: one row per model, each metric with its 95% interval.

    The hit rate (a share of shoppers, the headline's figure) comes first, as a percentage; the
    ranking scores follow with four decimals."""
    rows = summary[summary["k"] == k]
    out = pd.DataFrame({"model": rows["model"].drop_duplicates().map(escape).to_list()})
    for metric, label, fmt in (("hit", "hit rate", "{:.1%}"), ("ndcg", "NDCG", "{:.4f}"), ("ap", "MAP", "{:.4f}"),
                               ("precision", "precision", "{:.4f}"), ("recall", "recall", "{:.4f}")):
        part = rows[rows["metric"] == metric].set_index("model")
        out[f"{label}@{k} (95% CI)"] = [_interval(part.loc[m, "value"], part.loc[m, "low"], part.loc[m, "high"],
                                                  fmt) for m in rows["model"].drop_duplicates()]
    for metric, fmt in (("coverage", "{:.1%}"), ("novelty", "{:.2f} bits")):
        part = rows[rows["metric"] == metric].set_index("model")
        out[f"{metric}@{k}"] = [fmt.format(part.loc[m, "value"]) for m in rows["model"].drop_duplicates()]
    return out


def sweep_view(sweep: pd.DataFrame) -> pd.DataFrame:
    """The ALS sweep to read: one row per setting, best first, metric with its interval."""
    metric = next(c for c in sweep.columns if "@" in c)
    return pd.DataFrame({
        "factors": sweep["factors"], "regularization": sweep["regularization"].map("{:g}".format),
        "alpha": sweep["alpha"].map("{:g}".format),
        f"{metric.upper()} on validation (95% CI)": [_interval(v, lo, hi, "{:.4f}") for v, lo, hi in
                                                     zip(sweep[metric], sweep["low"], sweep["high"])],
        "fit time (s)": sweep["fit_seconds"].map("{:.1f}".format),
    })


def escaped(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell HTML-escaped (ids, categories and names come from the data)."""
    return frame.apply(lambda column: column.map(lambda v: escape(v) if isinstance(v, str) else v))


def incident_view(scored: pd.DataFrame, lead: dict | None = None) -> pd.DataFrame:
    """``anomaly.incidents.score_table`` to read; with ``lead`` (``anomaly.incidents.headline_detector``) a
    last column marks the row the headline reports and the charts shade."""
    view = pd.DataFrame({
        "frequency": scored["frequency"].map(escape), "detector": scored["detector"].map(escape),
        "alarms": scored["alarms"], "false alarms": scored["false_alarms"],
        "precision": scored["precision"].map(pct), "recall": scored["recall"].map(pct),
        "delay (hours)": scored["delay_hours"].map(lambda v: "–" if pd.isna(v) else f"{v:.0f}"),
    })
    if lead is not None:
        named = (scored["frequency"] == lead["frequency"]) & (scored["detector"] == lead["detector"])
        view["in the headline"] = ["yes, shaded on the charts" if n else "" for n in named]
    return view


def detector_view(table: pd.DataFrame) -> pd.DataFrame:
    """``anomaly.behaviour.score_detectors`` to read: one row per detector, PR-AUC per planted type."""
    wide = table.pivot(index="detector", columns="type", values="pr_auc")
    wide = wide.loc[list(dict.fromkeys(table["detector"]))]
    out = pd.DataFrame({"detector": [escape(d) for d in wide.index]})
    for column in wide.columns:
        out[f"PR-AUC {escape(column)}"] = [f"{v:.3f}" for v in wide[column]]
    bots = table[table["type"] == "bot"].set_index("detector")
    if len(bots):
        out["bots: precision@k"] = [pct(bots.loc[d, "precision_at_k"]) for d in wide.index]
        out["bots: recall at the set FPR"] = [pct(bots.loc[d, "recall_at_fpr"]) for d in wide.index]
    return out


# --------------------------------------------------------------------------- retention (notebook 06)

def cohort_view(cohorts: pd.DataFrame, period: str = "week") -> pd.DataFrame:
    """The cohort matrix to read: one row per cohort, one column per period since; a finished cell is its share
    with the 95% Wilson interval, an unfinished one ``in progress (n so far)`` and never a rate."""
    if cohorts.empty:
        return pd.DataFrame()

    def cell(row) -> str:
        if row.in_progress:
            return f"in progress ({row.active:,} so far)"
        return pct_ci(row.share, row.ci_low, row.ci_high)

    frame = cohorts.assign(text=[cell(r) for r in cohorts.itertuples()])
    wide = frame.pivot(index="cohort", columns="k", values="text").fillna("")
    sizes = cohorts.drop_duplicates("cohort").set_index("cohort")
    wide.index = [f"{c:%Y-%m-%d}{'*' if sizes.loc[c, 'partial_cohort'] else ''} ({sizes.loc[c, 'users']:,} users)"
                  for c in wide.index]
    wide.columns = [f"{escape(period)} {k}" for k in wide.columns]
    return wide.rename_axis(f"cohort ({escape(period)} of first visit)").reset_index()


def survival_view(curves: list, days=(7, 14, 30), min_at_risk: int = 30, what: str = "back") -> pd.DataFrame:
    """Per :class:`funnelkit.retention.survival.SurvivalCurve` of ``curves``: units, the share ``what`` within
    each of ``days`` (1 − Kaplan–Meier, 95% interval; ``–`` where fewer than ``min_at_risk`` were watched that
    long) and the median time with its interval."""
    rows = []
    for curve in curves:
        row = {"group": escape(curve.label), "users": f"{curve.n:,}"}
        for t in days:
            s, low, high = curve.at(t, min_at_risk)
            row[f"{what} within {t:g} days"] = pct_ci(1 - s, 1 - high, 1 - low)
        median, m_low, m_high = curve.median()
        row["median (days)"] = ("not reached" if pd.isna(median) else
                                f"{median:.1f}" + ("" if pd.isna(m_low) or pd.isna(m_high)
                                                   else f" (95% CI {m_low:.1f}–{m_high:.1f})"))
        rows.append(row)
    return pd.DataFrame(rows)


def parameter_view(summary: pd.DataFrame, planted: dict | None = None) -> pd.DataFrame:
    """A fitted model's ``summary()`` (coef, std_err, ci_lower, ci_upper per parameter) to read, with the planted
    value beside each parameter when given."""
    frame = pd.DataFrame({
        "parameter": [escape(p) for p in summary.index],
        "estimate": summary["coef"].map("{:.4g}".format),
        "standard error": summary["std_err"].map("{:.3g}".format),
        "95% CI": [f"{lo:.4g} – {hi:.4g}" for lo, hi in zip(summary["ci_lower"], summary["ci_upper"])],
    })
    if planted is not None:
        frame["planted"] = [f"{planted[p]:g}" if p in planted else "–" for p in summary.index]
    return frame


def planted_return_view(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.groundtruth.planted_return_check` to read (as shares come back, like the charts)."""
    return pd.DataFrame({
        "customer type": check["customer_type"].map(escape),
        "within (days)": check["days"].map("{:g}".format),
        "planted share back": [pct(1 - v, 2) for v in check["planted"]],
        "estimated share back": [pct_ci(1 - s, 1 - hi, 1 - lo, 2)
                                 for s, lo, hi in zip(check["estimate"], check["ci_low"], check["ci_high"])],
        "planted inside the interval": ["yes" if v else "no" for v in check["inside"]],
        "z (standard errors)": check["z"].map("{:+.2f}".format),
    })


def planted_process_view(fit: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.groundtruth.planted_return_process_fit` to read."""
    return pd.DataFrame({
        "customer type": fit["customer_type"].map(escape),
        "parameter": fit["parameter"].map(escape),
        "planted": fit["planted"].map("{:g}".format),
        "estimate (95% CI)": [f"{v:.3g} ({lo:.3g} – {hi:.3g})"
                              for v, lo, hi in zip(fit["estimate"], fit["ci_low"], fit["ci_high"])],
        "planted inside the interval": ["yes" if v else "no" for v in fit["inside"]],
    })


def holdout_view(holdout: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.retention.clv.holdout_calibration` to read."""
    return pd.DataFrame({
        "repeat orders before": holdout["group"].map(escape),
        "customers": holdout["customers"].map("{:,}".format),
        "predicted per customer": holdout["predicted_mean"].map("{:.3f}".format),
        "actual per customer (95% CI)": [
            f"{m:.3f}" + ("" if pd.isna(lo) else f" ({max(lo, 0):.3f} – {hi:.3f})")
            for m, lo, hi in zip(holdout["actual_mean"], holdout["actual_ci_lower"], holdout["actual_ci_upper"])],
    })


def journey_states_view(by_state: pd.DataFrame) -> pd.DataFrame:
    """:attr:`funnelkit.journeys.JourneyResults.by_state` to read."""
    rows = by_state[by_state["state"] != "start"]
    return pd.DataFrame({
        "state": rows["state"].map(escape),
        "visits": rows["visits"].map("{:,.0f}".format),
        "sessions that ended here": rows["exits"].map("{:,.0f}".format),
        "share of visits that were the last": rows["exit_share"].map(pct),
        "chance to buy from here, first-order chain (95% CI)": [
            pct_ci(v, lo, hi) for v, lo, hi in zip(rows["purchase_probability"], rows["purchase_probability_low"],
                                                   rows["purchase_probability_high"])],
        "sessions visiting it that bought, data (95% CI)": [
            pct_ci(v, lo, hi) for v, lo, hi in zip(rows["visitors_bought"], rows["visitors_bought_low"],
                                                   rows["visitors_bought_high"])],
        "pages to the end (95% CI)": [_interval(v, lo, hi, "{:.1f}") for v, lo, hi in
                                      zip(rows["expected_pages"], rows["expected_pages_low"],
                                          rows["expected_pages_high"])],
        "removal effect, first-order chain (95% CI)": [
            "–" if pd.isna(v) else pct_ci(v, lo, hi) for v, lo, hi in
            zip(rows["removal_effect"], rows["removal_effect_low"], rows["removal_effect_high"])],
        "purchases that visited it, data (95% CI)": [
            "–" if pd.isna(v) else pct_ci(v, lo, hi) for v, lo, hi in
            zip(rows["purchases_through"], rows["purchases_through_low"], rows["purchases_through_high"])],
    })


def what_if_view(what_ifs: pd.DataFrame, currency: str = "") -> pd.DataFrame:
    """:attr:`funnelkit.journeys.JourneyResults.what_ifs` to read."""
    return pd.DataFrame({
        "transition": [f"{escape(a)} → {escape(b)}" for a, b in zip(what_ifs["from"], what_ifs["to"])],
        "change": what_ifs["change"].map("{:+.0%}".format),
        "probability now → after": [f"{pct(a)} → {pct(b)}" for a, b in
                                    zip(what_ifs["probability"], what_ifs["new_probability"])],
        "sessions that buy, now → after": [f"{pct(a, 2)} → {pct(b, 2)}" for a, b in
                                           zip(what_ifs["conversion"], what_ifs["new_conversion"])],
        "extra purchases per 1,000 sessions (95% CI)": [_interval(v, lo, hi, "{:+.2f}") for v, lo, hi in
                                                        zip(what_ifs["extra_per_1000"], what_ifs["extra_per_1000_low"],
                                                            what_ifs["extra_per_1000_high"])],
        f"their value per 1,000 sessions, {escape(currency) or 'no prices'} (95% CI)": [
            "–" if pd.isna(v) else f"{v:+,.0f} ({lo:+,.0f} to {hi:+,.0f})" for v, lo, hi in
            zip(what_ifs["extra_value_per_1000"], what_ifs["extra_value_per_1000_low"],
                what_ifs["extra_value_per_1000_high"])],
    })


def history_view(history: pd.DataFrame, state: str | None = None) -> pd.DataFrame:
    """The second-order table (one ``state``, or all) to read, beside the first-order share."""
    rows = history if state is None else history[history["state"] == state]
    return pd.DataFrame({
        "previous state": rows["previous"].map(escape), "state": rows["state"].map(escape),
        "next": rows["next"].map(escape), "visits of the pair": rows["visits"].map("{:,.0f}".format),
        "share going next (95% CI)": [pct_ci(v, lo, hi) for v, lo, hi in
                                      zip(rows["share"], rows["share_low"], rows["share_high"])],
        "first-order chain": rows["first_order"].map(pct),
    })


def planted_journey_view(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`funnelkit.groundtruth.planted_journey_check` to read."""
    return pd.DataFrame({
        "from": check["from"].map(escape), "to": check["to"].map(escape),
        "planted": check["planted"].map(lambda v: pct(v, 2)),
        "estimated (95% CI)": ["not seen" if pd.isna(lo) else pct_ci(v, lo, hi, 2) for v, lo, hi in
                               zip(check["probability"], check["ci_low"], check["ci_high"])],
        "planted inside the interval": check["inside"].map({True: "yes", False: "no"}),
    })


def next_event_view(next_event: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """:attr:`funnelkit.journeys.evaluate.PredictionResults.next_event` to read."""
    def diff(row, metric, fmt, scale=1.0):
        if row["model"] == baseline:
            return "baseline"
        return _interval(scale * row[f"{metric}_diff"], scale * row[f"{metric}_diff_low"],
                         scale * row[f"{metric}_diff_high"], fmt)
    rows = [row for _, row in next_event.iterrows()]
    return pd.DataFrame({
        "model": [escape(r["model"]) for r in rows],
        "log-loss, nats (95% CI)": [_interval(r["log_loss"], r["log_loss_low"], r["log_loss_high"], "{:.4f}")
                                    for r in rows],
        "against the best chain": [diff(r, "log_loss", "{:+.4f}") for r in rows],
        "top-1 (95% CI)": [pct_ci(r["top1"], r["top1_low"], r["top1_high"]) for r in rows],
        "top-1 against the best chain, points": [diff(r, "top1", "{:+.2f}", 100) for r in rows],
        "top-3 (95% CI)": [pct_ci(r["top3"], r["top3_low"], r["top3_high"]) for r in rows],
    })


def purchase_prediction_view(purchase: pd.DataFrame) -> pd.DataFrame:
    """:attr:`funnelkit.journeys.evaluate.PredictionResults.purchase` to read."""
    def diff(row, metric):
        if row["model"] == row["baseline"]:
            return "baseline"
        return _interval(row[f"{metric}_diff"], row[f"{metric}_diff_low"], row[f"{metric}_diff_high"], "{:+.3f}")
    rows = [row for _, row in purchase.iterrows()]
    return pd.DataFrame({
        "after k pages": [f"{int(r['k'])}" for r in rows],
        "sessions still going (bought)": [f"{int(r['journeys']):,} ({int(r['bought']):,})" for r in rows],
        "model": [escape(r["model"]) for r in rows],
        "ROC-AUC (95% CI)": [_interval(r["roc_auc"], r["roc_auc_low"], r["roc_auc_high"], "{:.3f}") for r in rows],
        "against the best chain": [diff(r, "roc_auc") for r in rows],
        "PR-AUC (95% CI)": [_interval(r["pr_auc"], r["pr_auc_low"], r["pr_auc_high"], "{:.3f}") for r in rows],
        "PR-AUC against the best chain": [diff(r, "pr_auc") for r in rows],
    })


def state_mapping_view(event_counts: pd.DataFrame) -> pd.DataFrame:
    """How the log's event names became journey states (:attr:`JourneyCounts.event_counts`), to read."""
    return pd.DataFrame({"event name": event_counts["event_type"].map(escape),
                         "state": event_counts["state"].map(escape),
                         "events": event_counts["events"].map("{:,}".format)})
