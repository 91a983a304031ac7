"""Every figure the notebooks draw.

Each function takes already computed data and an optional ``ax``, draws on
it and returns the Figure (matplotlib's recommended signature). No function
here computes a statistic: intervals and rates arrive in the data. Titles
and axis labels with units are always set; the style is set once, here.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, PercentFormatter

STYLE = {
    "figure.figsize": (8.0, 4.2),
    "figure.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titleweight": "bold",
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "font.size": 10,
    # labels carry segment values and event names from the data: a "$" must stay a "$", not start math
    "text.parse_math": False,
}
PRIMARY = "#2b6cb0"
MUTED = "#a0aec0"
ALERT = "#c53030"
plt.rcParams.update(STYLE)


def _log_scale(ax, which: str) -> None:
    """Log scale on axis ``which`` ("x" or "y") with plain tick labels (0.1, 1, 10): math text is off, see STYLE."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _error_bars(value, low, high) -> np.ndarray:
    """Matplotlib's (2, n) error bar lengths for intervals ``low``–``high`` around ``value``.

    Rounding noise is clipped to 0: an estimate a rounding error outside its own interval (0 of 7
    converting, whose Wilson bound once came out 2.8e-17 above 0) must draw a bar of length 0, not
    stop the report ("'xerr' must not contain negative values").

    Raises
    ------
    ValueError
        If an estimate lies outside its interval by more than 1e-9 of the largest of the three
        magnitudes: that is a wrong interval, and a zero-length bar would hide it.
    """
    value, low, high = (np.asarray(v, dtype=float) for v in (value, low, high))
    bars = np.vstack([value - low, high - value])
    noise = 1e-9 * np.maximum.reduce([np.abs(value), np.abs(low), np.abs(high)])
    wrong = np.flatnonzero((bars < -noise).any(axis=0))
    if len(wrong):
        i = wrong[0]
        raise ValueError(f"{len(wrong)} interval(s) do not contain their estimate, the first at position {i}: "
                         f"{float(value.flat[i])!r} outside [{float(low.flat[i])!r}, {float(high.flat[i])!r}]")
    return np.clip(bars, 0.0, None)


def _axes(ax, figsize=None):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize or STYLE["figure.figsize"])
    return ax.figure, ax


def funnel_chart(steps: pd.DataFrame, ax=None, unit: str = "units"):
    """Horizontal bars of entrants per step, labelled with overall conversion and its 95% CI.

    ``steps`` is ``FunnelResult.steps``.
    """
    fig, ax = _axes(ax)
    y = np.arange(len(steps))[::-1]
    ax.barh(y, steps["entrants"], color=PRIMARY, alpha=0.85)
    for yi, (_, row) in zip(y, steps.iterrows()):
        label = (
            f"{row['entrants']:,}  ({row['overall_conversion']:.1%}, "
            f"95% CI {row['overall_ci_low']:.1%}–{row['overall_ci_high']:.1%})"
        )
        ax.text(row["entrants"], yi, "  " + label, va="center", fontsize=9)
    ax.set_yticks(y, steps["step"])
    ax.set_xlim(0, steps["entrants"].max() * 1.9 if len(steps) else 1)
    ax.set_xlabel(f"{unit} reaching the step (count)")
    ax.set_title("Funnel: how many reach each step")
    ax.grid(axis="y", visible=False)
    return fig


def breakdown_chart(breakdown, ax=None):
    """Conversion by segment value with 95% Wilson intervals (``Breakdown`` object)."""
    table = breakdown.table
    fig, ax = _axes(ax, (8.0, 0.5 * len(table) + 1.5))
    y = np.arange(len(table))[::-1]
    err = _error_bars(table["conversion"], table["ci_low"], table["ci_high"])
    ax.errorbar(table["conversion"], y, xerr=err, fmt="o", color=PRIMARY, capsize=4)
    ax.set_yticks(y, [f"{v} (n={n:,})" for v, n in zip(table["value"], table["entrants"])])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel("conversion, first step → last step (%, 95% CI)")
    ax.set_title(f"Conversion by {breakdown.column} (attributed at the {breakdown.attribution.replace('_', ' ')})")
    return fig


def breakdown_grid(breakdowns: list):
    """One :func:`breakdown_chart` panel per breakdown, stacked in one figure."""
    if not breakdowns:
        fig, ax = plt.subplots(figsize=(8.0, 1.2))
        ax.set_axis_off()
        ax.set_title("Conversion by segment")
        ax.text(0.5, 0.4, "No breakdowns: list segment columns in funnel.breakdowns of the params file",
                ha="center", va="center", transform=ax.transAxes)
        return fig
    heights = [0.5 * len(b.table) + 1.4 for b in breakdowns]
    fig, axes = plt.subplots(len(breakdowns), 1, figsize=(8.0, sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for breakdown, ax in zip(breakdowns, axes[:, 0]):
        breakdown_chart(breakdown, ax=ax)
    fig.tight_layout()
    return fig


def trend_chart(trend: pd.DataFrame, ax=None, freq: str = "week"):
    """Conversion by period of entry with 95% band; incomplete periods drawn hollow."""
    fig, ax = _axes(ax)
    done = trend[trend["complete"]]
    open_ = trend[~trend["complete"]]
    ax.fill_between(trend["period"], trend["ci_low"], trend["ci_high"], color=PRIMARY, alpha=0.15, label="95% CI")
    ax.plot(trend["period"], trend["conversion"], color=PRIMARY, lw=1)
    ax.plot(done["period"], done["conversion"], "o", color=PRIMARY, label="complete")
    if len(open_):
        ax.plot(open_["period"], open_["conversion"], "o", mfc="white", color=ALERT,
                label="incomplete (window still open)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel(f"{freq} of funnel entry (UTC)")
    ax.set_ylabel("conversion (%)")
    ax.set_title(f"Conversion by {freq} of entry")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


def time_to_convert_chart(durations: dict[str, pd.Series], ax=None):
    """Distributions of time between steps (histograms on a log time axis, minutes)."""
    fig, ax = _axes(ax)
    values = [np.asarray(s, dtype=float) / 60 for s in durations.values()]
    positive = np.concatenate([v[v > 0] for v in values]) if values else np.array([])
    if positive.size:
        bins = np.logspace(np.log10(max(positive.min(), 1 / 60)), np.log10(positive.max() * 1.01), 40)
        for (name, _), v in zip(durations.items(), values):
            ax.hist(np.clip(v, bins[0], None), bins=bins, histtype="step", lw=1.6, label=f"{name} (n={len(v):,})")
        _log_scale(ax, "x")
        ax.legend(fontsize=8)
    ax.set_xlabel("time from previous step (minutes, log scale)")
    ax.set_ylabel("units (count)")
    ax.set_title("Time to convert between steps")
    return fig


def transition_heatmap(matrix: pd.DataFrame, ax=None):
    """Share of next event type (columns) after each event type (rows)."""
    fig, ax = _axes(ax, (7.5, 0.55 * len(matrix) + 2))
    image = ax.imshow(matrix.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix.iat[i, j]
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 else "black")
    ax.set_xlabel("next event type")
    ax.set_ylabel("current event type")
    ax.set_title("What happens next: share of next events")
    ax.grid(False)
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0), label="share of next events (%)")
    return fig


def events_per_day_chart(daily: pd.DataFrame, ax=None):
    """Events per day by event type (``daily``: columns day, event_type, events), log scale."""
    fig, ax = _axes(ax)
    for kind, part in daily.groupby("event_type"):
        ax.plot(part["day"], part["events"], lw=1.2, label=str(kind))
    _log_scale(ax, "y")
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel("events per day (count, log scale)")
    ax.set_title("Traffic by event type")
    ax.legend(fontsize=8, ncol=3)
    fig.autofmt_xdate()
    return fig


def model_curves_chart(comparison, models: list[str] | None = None):
    """ROC and precision-recall curves (out of fold) of several models, side by side."""
    models = models or list(comparison.probabilities)
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10.0, 4.2))
    scores = comparison.table().set_index("model")
    for model in models:
        roc = comparison.roc(model)
        roc_ax.plot(roc["false_positive_rate"], roc["true_positive_rate"], lw=1.3,
                    label=f"{model} (mean AUC over folds {scores.loc[model, 'roc_auc']:.3f})")
        pr = comparison.precision_recall(model)
        pr_ax.plot(pr["recall"], pr["precision"], lw=1.3,
                   label=f"{model} (mean AP over folds {scores.loc[model, 'pr_auc']:.3f})")
    roc_ax.plot([0, 1], [0, 1], color=MUTED, lw=1, ls="--")
    roc_ax.set(title="ROC curve (out of fold)", xlabel="false positive rate (share of non-converters)",
               ylabel="true positive rate (share of converters)")
    pr_ax.axhline(comparison.y.mean(), color=MUTED, lw=1, ls="--")
    pr_ax.set(title="Precision-recall curve (out of fold)", xlabel="recall (share of converters found)",
              ylabel="precision (share of flagged who convert)")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "upper right")
    fig.tight_layout()
    return fig


def calibration_chart(comparison, models: list[str] | None = None, bins: int = 10, ax=None):
    """Observed conversion against predicted probability (quantile bins, out of fold)."""
    fig, ax = _axes(ax, (5.5, 4.6))
    models = models or list(comparison.probabilities)
    top = 0.0
    for model in models:
        curve = comparison.calibration(model, bins)
        ax.plot(curve["predicted"], curve["observed"], marker="o", ms=3, lw=1.2, label=model)
        top = max(top, curve["predicted"].max(), curve["observed"].max())
    ax.plot([0, top], [0, top], color=MUTED, lw=1, ls="--", label="perfect calibration")
    ax.set(title="Calibration: predicted vs observed", xlabel="mean predicted probability (share)",
           ylabel="observed conversion (share)")
    ax.legend(fontsize=7)
    return fig


def odds_ratio_chart(drivers: pd.DataFrame, ax=None):
    """Forest plot: each term's odds ratio with its 95% interval, one colour per step (log scale).

    With a ``planted`` column (simulated data) the planted odds ratio is drawn as a cross."""
    labels = [f"{step}: {term}" for step, term in zip(drivers["step"], drivers["term"])]
    fig, ax = _axes(ax, (8.0, 0.28 * len(drivers) + 1.5))
    y = np.arange(len(drivers))[::-1]
    steps = list(dict.fromkeys(drivers["step"]))
    colours = dict(zip(steps, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for step in steps:
        rows = (drivers["step"] == step).to_numpy()
        ax.errorbar(drivers.loc[rows, "odds_ratio"], y[rows],
                    xerr=_error_bars(drivers.loc[rows, "odds_ratio"], drivers.loc[rows, "odds_low"],
                                     drivers.loc[rows, "odds_high"]),
                    fmt="o", ms=4, capsize=2, color=colours[step], label=step)
    if "planted" in drivers:
        ax.scatter(np.exp(drivers["planted"]), y, marker="x", color="black", s=18, zorder=3, label="planted")
    ax.axvline(1.0, color=MUTED, lw=1)
    _log_scale(ax, "x")
    ax.xaxis.set_major_locator(FixedLocator([0.125, 0.25, 0.5, 1, 2, 4, 8]))
    ax.set_yticks(y, labels, fontsize=7)
    ax.set(title="Odds ratios by step (95% CI)", xlabel="odds ratio (×, log scale; 1 = no effect)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def residual_chart(points: pd.DataFrame):
    """Residuals against fitted values, and a normal Q-Q plot of the residuals."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    left.scatter(points["fitted"], points["residual"], s=4, alpha=0.4, color=PRIMARY)
    left.axhline(0, color=MUTED, lw=1)
    left.set(title="Residuals vs fitted", xlabel="fitted ln(order value)", ylabel="residual (ln units)")
    right.scatter(points["normal_quantile"], points["residual"], s=4, alpha=0.4, color=PRIMARY)
    lims = [points["normal_quantile"].min(), points["normal_quantile"].max()]
    scale = points["residual"].std()
    right.plot(lims, [lims[0] * scale, lims[1] * scale], color=ALERT, lw=1)
    right.set(title="Normal Q-Q plot of residuals", xlabel="normal quantile (standard deviations)",
              ylabel="residual (ln units)")
    fig.tight_layout()
    return fig


def accuracy_chart(accuracy: pd.DataFrame, ax=None):
    """Correct digits (LRE) against log10 of the condition number, per method.

    ``accuracy``: :func:`funnelkit.regression.accuracy_table` (indexed by design,
    ``log10_cond`` and ``lre_<method>`` columns)."""
    fig, ax = _axes(ax, (6.5, 4.2))
    methods = {"lre_qr": "QR (column-scaled)", "lre_normal": "normal equations (Cholesky)"}
    for column, label in methods.items():
        ax.scatter(accuracy["log10_cond"], accuracy[column], label=label, s=30)
        for name, row in accuracy.iterrows():
            ax.annotate(str(name), (row["log10_cond"], row[column]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    top = accuracy["log10_cond"].max() * 1.05
    ax.plot([0, top], [16, 16 - top], color=MUTED, ls="--", lw=1, label="16 − log10 κ")
    ax.plot([0, top], [16, 16 - 2 * top], color=MUTED, ls=":", lw=1, label="16 − 2·log10 κ")
    ax.set(title="Accuracy of least squares by method", xlabel="log10 condition number κ (column-scaled design)",
           ylabel="correct significant digits (LRE)")
    ax.set_ylim(0, 17)
    ax.legend(fontsize=7)
    return fig


def ranking_chart(summary: pd.DataFrame, metric: str = "ndcg", ax=None):
    """``metric`` at every k per model with its bootstrap interval (``Evaluation.summary()`` rows)."""
    fig, ax = _axes(ax, (7.5, 4.2))
    rows = summary[summary["metric"] == metric]
    models = list(dict.fromkeys(rows["model"]))
    ks = sorted(rows["k"].unique())
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        part = rows[rows["model"] == model].set_index("k").loc[ks]
        x = np.arange(len(ks)) + (i - (len(models) - 1) / 2) * width
        err = _error_bars(part["value"], part["low"], part["high"])
        ax.bar(x, part["value"], width, yerr=err, capsize=3, label=model, alpha=0.9)
    ax.set_xticks(np.arange(len(ks)), [f"k = {k}" for k in ks])
    ax.set_xlabel("length of the recommendation list (items)")
    ax.set_ylabel(f"mean {metric.upper()}@k over test users (95% CI)")
    ax.set_title(f"{metric.upper()}@k by model on the held-out period")
    ax.legend(fontsize=8)
    return fig


def popularity_bias_chart(bias: pd.DataFrame, ax=None):
    """Share of recommendation slots per catalogue popularity decile, per model (``explain.popularity_bias``)."""
    fig, ax = _axes(ax, (7.5, 4.2))
    for model, part in bias.groupby("model", sort=False):
        ax.plot(part["decile"], part["share"], marker="o", ms=3, label=model)
    deciles = bias["decile"].max()
    ax.axhline(1 / deciles, color=MUTED, ls="--", lw=1, label="no popularity bias")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(range(1, deciles + 1))
    ax.set_xlabel("catalogue popularity decile (1 = most popular tenth of the items)")
    ax.set_ylabel("share of recommended slots (%)")
    ax.set_title("Popularity bias: where the recommendations come from")
    ax.legend(fontsize=8)
    return fig


def coverage_chart(summary: pd.DataFrame, k: int, axes=None):
    """Catalogue coverage@k and novelty@k per model, on two panels side by side (``axes``: a pair of axes)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    else:
        fig = axes[0].figure
    rows = summary[summary["k"] == k]
    for axis, metric, label in ((axes[0], "coverage", "catalogue coverage (% of items recommended to anyone)"),
                                (axes[1], "novelty", "novelty (mean self-information, bits)")):
        part = rows[rows["metric"] == metric]
        axis.barh(part["model"], part["value"], color=PRIMARY, alpha=0.85)
        axis.set_xlabel(label)
        if metric == "coverage":
            axis.xaxis.set_major_formatter(PercentFormatter(1.0))
        axis.set_title(f"{metric.capitalize()}@{k}")
        axis.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def loss_curves_chart(losses: pd.DataFrame, ax=None):
    """Training loss per iteration of each solver (columns after ``iteration``)."""
    fig, ax = _axes(ax, (6.5, 3.8))
    for style, column in zip(("-", "--", ":"), [c for c in losses.columns if c != "iteration"]):
        ax.plot(losses["iteration"], losses[column], ls=style, marker="o", ms=3, label=column)
    ax.set_xlabel("ALS iteration")
    ax.set_ylabel("training loss (implicit's normalised objective)")
    ax.set_title("Same start, same loss: implicit against the NumPy reference")
    ax.legend(fontsize=8)
    return fig


def kpi_timeline_chart(series: pd.DataFrame, column: str, alarms: pd.DataFrame | None = None,
                       shaded: dict[str, list] | None = None, ax=None, ylabel: str | None = None):
    """A KPI series over time with each detector's alarms marked and labelled periods shaded.

    ``series`` has ``period`` and ``column`` (``anomaly.kpi.kpi_series``);
    ``alarms`` the long ``period, detector, alarm`` table of ``anomaly.kpi.detect``;
    ``shaded`` maps a legend label to a list of dates to shade (whole UTC days).
    """
    fig, ax = _axes(ax, (10, 3.8))
    ax.plot(series["period"], series[column], color=PRIMARY, lw=0.9, label=column.replace("_", " "))
    palette = [ALERT, "#dd6b20", "#805ad5", "#2f855a"]
    if alarms is not None:
        values = series.set_index("period")[column]
        for (detector, part), color, marker in zip(alarms[alarms["alarm"]].groupby("detector", sort=False), palette,
                                                   "ov^s"):
            ax.plot(part["period"], values.reindex(part["period"]).to_numpy(), marker, color=color, ms=5,
                    mfc="none", label=f"alarm: {detector}")
    for (label, dates), color in zip((shaded or {}).items(), (ALERT, MUTED, "#dd6b20")):
        for i, date in enumerate(dates):
            start = pd.Timestamp(date, tz="UTC")
            ax.axvspan(start, start + pd.Timedelta(days=1), color=color, alpha=0.15, label=label if i == 0 else None)
    if column.endswith("_rate"):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("period start (UTC)")
    label = ylabel or column.replace("_", " ")
    ax.set_ylabel(label)
    what = label.split(" (")[0]  # the unit stays on the axis
    ax.set_title(f"{what[:1].upper()}{what[1:]} over time, with alarms")
    ax.legend(fontsize=7, ncol=3, loc="best")
    return fig


def feature_distributions_chart(features: pd.DataFrame, flagged: pd.Series, columns: list[str], axes=None):
    """Histograms (log-spaced bins) of behaviour features for users flagged and not flagged, one panel each."""
    n = len(columns)
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    flagged = flagged.reindex(features.index).fillna(False).astype(bool)
    for ax, column in zip(axes, columns):
        values = features[column].astype(float)
        positive = values[values > 0].dropna()
        if positive.empty:
            ax.set_visible(False)
            continue
        bins = np.geomspace(positive.min(), positive.max() * 1.001, 30) if positive.max() > positive.min() else 10
        for mask, label, color in ((~flagged, "not flagged", PRIMARY), (flagged, "flagged", ALERT)):
            part = values[mask & (values > 0)].dropna()
            weights = np.full(len(part), 1 / max(len(part), 1))
            ax.hist(part, bins=bins, weights=weights, alpha=0.55, color=color, label=f"{label} (n={mask.sum():,})")
        _log_scale(ax, "x")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel(f"{column.replace('_', ' ')} (log scale)")
        ax.set_ylabel("share of users (%)")
        ax.set_title(column.replace("_", " "))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def detector_scores_chart(table: pd.DataFrame, metric: str = "pr_auc", ax=None):
    """One bar per detector and anomaly type (``behaviour.score_detectors`` rows)."""
    fig, ax = _axes(ax, (8.5, 4.0))
    pivot = table.pivot(index="detector", columns="type", values=metric)
    pivot = pivot.loc[list(dict.fromkeys(table["detector"]))]
    width = 0.8 / max(pivot.shape[1], 1)
    x = np.arange(len(pivot))
    for i, column in enumerate(pivot.columns):
        ax.bar(x + (i - (pivot.shape[1] - 1) / 2) * width, pivot[column], width, label=column)
    ax.set_xticks(x, pivot.index, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("detector")
    ax.set_ylabel(f"{metric.replace('_', '-').upper()} against the planted labels (0–1)")
    ax.set_title(f"How well each detector finds each planted anomaly ({metric.replace('_', '-').upper()})")
    ax.legend(fontsize=8, title="planted type")
    return fig
