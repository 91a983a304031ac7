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

from . import figure_lint
from .schema import EVENTS
from .event_types import named_event_types, other_label

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
# in a notebook, every figure shown also stores its lint findings (titles, labels, overlaps) for the tests
figure_lint.install()


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


def trend_chart(trend: pd.DataFrame, ax=None, freq: str = "week", unit: str | None = None):
    """Conversion by period of entry with 95% band; incomplete periods drawn hollow.

    ``unit`` (plural, e.g. ``"sessions"``) names what is counted in the title and axis labels
    ("Conversion of sessions by week"): a reader must know whether a point is a share of visits
    or of people first seen that week.
    """
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
    if unit is None:
        ax.set_xlabel(f"{freq} of funnel entry (UTC)")
        ax.set_ylabel("conversion (%)")
        ax.set_title(f"Conversion by {freq} of entry")
    else:
        ax.set_xlabel(f"{freq} the {unit} started (UTC)")
        ax.set_ylabel(f"conversion (% of {unit})")
        ax.set_title(f"Conversion of {unit} by {freq}")
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


def _fold_transitions(matrix: pd.DataFrame, top: int, keep) -> tuple[pd.DataFrame, int]:
    """Shares of ``matrix`` (counts or row shares) with rare event types folded; (shares, rows left out).

    See :func:`transition_heatmap` for the rules. The types of ``keep`` come first, in their order
    (the funnel's steps in step order), then the others in the matrix's order, "other", ``(exit)``.
    """
    from .funnel.paths import EXIT

    counts = all(pd.api.types.is_integer_dtype(dtype) for dtype in matrix.dtypes)
    types = list(dict.fromkeys([*matrix.index, *(c for c in matrix.columns if c != EXIT)]))
    types = [t for t in dict.fromkeys(keep) if t in types] + [t for t in types if t not in set(keep)]
    if counts:  # rank by how often each type occurs (its row total)
        totals = matrix.sum(axis=1).reindex(types, fill_value=0)
    else:  # only shares: rank by how often each type comes next, summed over the rows
        totals = matrix.drop(columns=[EXIT], errors="ignore").sum(axis=0).reindex(types, fill_value=0)
    named = set(named_event_types(totals, top, keep))
    other = other_label(len(types) - len(named))

    def fold(name):
        return name if name in named or name == EXIT else other

    order = list(dict.fromkeys(map(fold, types)))  # "other" last: every folded type maps to it
    order = [t for t in order if t != other] + ([other] if other in order else [])
    matrix = matrix.T.groupby(fold).sum().T  # shares of one row add, so columns fold exactly either way
    matrix = matrix[[c for c in order if c in matrix.columns] + [c for c in matrix.columns if c == EXIT]]
    left_out = 0
    if counts:
        matrix = matrix.groupby(fold).sum()
        matrix = matrix.div(matrix.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    else:  # averaging rows of shares needs their counts: leave the folded rows out and say so
        left_out = sum(r not in named for r in matrix.index)
        matrix = matrix.loc[[r for r in matrix.index if r in named]]
    return matrix.reindex([r for r in order if r in matrix.index]), left_out


def transition_heatmap(matrix: pd.DataFrame, ax=None, top: int = 10, keep=EVENTS.funnel):
    """Share of next event type (columns) after each event type (rows).

    Parameters
    ----------
    matrix : pandas.DataFrame
        :func:`funnelkit.funnel.transition_matrix`: counts (``normalize=False``: integer columns) or
        row shares (its default).
    ax : matplotlib.axes.Axes, optional
    top : int
        Event types named on each axis, at least (default 10): those of ``keep`` that occur, then the
        most frequent others (:func:`funnelkit.event_types.named_event_types`); the rest are one row and
        one column "other (k event types)". The ``(exit)`` column always stays. With counts, the
        folded rows and columns are summed, then each row divided by its total; with row shares, the
        folded columns are summed (exact) but the folded rows are left out (averaging shares would
        need the counts), and the y label says how many.
    keep : iterable of str
        Event types always named: the funnel's step events (the canonical names by default).
    """
    shares, left_out = _fold_transitions(matrix, top, keep)
    fig, ax = _axes(ax, (7.5, 0.55 * len(shares) + 2))
    image = ax.imshow(shares.to_numpy(dtype=float), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(shares.shape[1]), shares.columns, rotation=30, ha="right")
    ax.set_yticks(range(shares.shape[0]), shares.index)
    for i in range(shares.shape[0]):
        for j in range(shares.shape[1]):
            value = shares.iat[i, j]
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 else "black")
    ax.set_xlabel("next event type")
    ax.set_ylabel("current event type" + (f" ({left_out} rarer types not shown)" if left_out else ""))
    ax.set_title("What happens next: share of next events")
    ax.grid(False)
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0), label="share of next events (%)")
    return fig


def events_per_day_chart(daily: pd.DataFrame, ax=None, top: int = 6, keep=EVENTS.funnel):
    """Events per day by event type (``daily``: columns day, event_type, events), log scale.

    The ``top`` most frequent event types (default 6; those of ``keep``, the funnel's step events,
    always among them, see :func:`funnelkit.event_types.named_event_types`) get a line each; the others
    are summed per day into one grey dashed line "other (k event types)".
    """
    fig, ax = _axes(ax)
    totals = daily.groupby("event_type")["events"].sum()
    named = named_event_types(totals, top, keep)
    other = other_label(len(totals) - len(named))
    kinds = daily["event_type"].where(daily["event_type"].isin(named), other)
    lines = daily.assign(event_type=kinds).groupby(["event_type", "day"], as_index=False)["events"].sum()
    for kind in named + ([other] if len(named) < len(totals) else []):
        part = lines[lines["event_type"] == kind]
        style = {"color": MUTED, "ls": "--"} if kind == other else {}
        ax.plot(part["day"], part["events"], lw=1.2, label=str(kind), **style)
    _log_scale(ax, "y")
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel("events per day (count, log scale)")
    ax.set_title("Traffic by event type")
    # beside the axes, most frequent first: inside, it covered the lines of the busiest days
    ax.legend(fontsize=8, title="event type", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    return fig


def model_curves_chart(comparison, models: list[str] | None = None):
    """ROC and precision-recall curves (out of fold) of several models, side by side.

    A model named twice in ``models`` (the best model is often one already listed) is drawn once."""
    models = list(dict.fromkeys(models or comparison.probabilities))
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
    """Observed conversion against predicted probability (quantile bins, out of fold); each model once."""
    fig, ax = _axes(ax, (5.5, 4.6))
    models = list(dict.fromkeys(models or comparison.probabilities))
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


def _odds_ticks(low: float, high: float) -> list[float]:
    """Powers of 2 spanning ``low``–``high`` (1 always among them), at most about nine of them."""
    lowest, highest = int(np.floor(np.log2(low))), int(np.ceil(np.log2(high)))
    every = max(1, int(np.ceil((highest - lowest + 1) / 9)))
    return [2.0 ** k for k in range(lowest, highest + 1) if k % every == 0]


def _odds_label(value: float, _=None) -> str:
    """0.5, 1, 2, 4 as plain text; below 0.1 a fraction (1/16) rather than 0.0625."""
    return f"1/{1 / value:g}" if value < 0.1 else f"{value:g}"


def _strongest_rows(part: pd.DataFrame, top: int | None) -> pd.DataFrame:
    """The ``top`` rows of one step farthest from "no effect" (largest |ln odds ratio|), significant or not,
    ordered for reading: the largest odds ratio at the top of the panel."""
    if top is not None:
        part = part.loc[np.abs(np.log(part["odds_ratio"])).sort_values(ascending=False, kind="stable").index[:top]]
    return part.sort_values("odds_ratio", kind="stable")  # drawn bottom-up


def odds_ratio_chart(drivers: pd.DataFrame, top: int | None = 8, alpha: float = 0.05):
    """Forest plot, one panel per step: the ``top`` terms farthest from no effect, odds ratio and 95% CI (log scale).

    Parameters
    ----------
    drivers : DataFrame
        :func:`funnelkit.drivers.drivers_table` rows: ``step``, ``term``, ``odds_ratio``, ``odds_low``,
        ``odds_high``; optional ``given`` (the step a panel's sessions reached), ``driver`` (a readable
        name for ``term``), ``p_adjusted`` (filled dots significant at ``alpha``, hollow ones not) and
        ``planted`` (a planted coefficient, drawn as its odds ratio, a cross).
    top : int or None
        Terms per step, chosen by the largest |ln odds ratio| whether significant or not (None: all).
    alpha : float
        Significance level for the adjusted p-values.

    Notes
    -----
    Every panel shares one log axis whose ticks are powers of 2 (0.5, 1, 2, 4) written as plain
    numbers, and which always reaches 0.5 and 2 so that no panel is left with the single tick "1".
    The legend sits below the panels, outside the data.
    """
    steps = list(dict.fromkeys(drivers["step"]))
    parts = [_strongest_rows(drivers[drivers["step"] == step], top) for step in steps]
    heights = [0.32 * max(len(part), 1) + 0.9 for part in parts]
    fig, axes = plt.subplots(len(parts) or 1, 1, figsize=(8.0, sum(heights) + 1.2), squeeze=False,
                             gridspec_kw={"height_ratios": heights or [1]}, layout="constrained")
    # the axis spans the rows drawn: a rare term left out with an interval of 1e-6 to 1e6 must not squash the others
    shown = pd.concat(parts) if parts else drivers.iloc[:0]
    low = min(0.5, shown["odds_low"].min() / 1.15) if len(shown) else 0.5
    high = max(2.0, shown["odds_high"].max() * 1.15) if len(shown) else 2.0
    significance = "p_adjusted" in drivers
    for part, ax in zip(parts, axes[:, 0]):
        y = np.arange(len(part))
        significant = (part["p_adjusted"] < alpha).to_numpy() if significance else np.ones(len(part), bool)
        for mask, face, label in ((significant, PRIMARY, f"significant (adjusted p < {alpha:g})"),
                                  (~significant, "white", "not significant")):
            if mask.any():
                rows = part[mask]
                ax.errorbar(rows["odds_ratio"], y[mask],
                            xerr=_error_bars(rows["odds_ratio"], rows["odds_low"], rows["odds_high"]),
                            fmt="o", ms=5, capsize=3, color=PRIMARY, mfc=face, label=label)
        if "planted" in part:
            ax.scatter(np.exp(part["planted"]), y, marker="x", color="black", s=22, zorder=3,
                       label="planted (simulated shop)")
        ax.axvline(1.0, color=MUTED, lw=1)
        _log_scale(ax, "x")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(FixedLocator(_odds_ticks(low, high)))
        ax.xaxis.set_major_formatter(FuncFormatter(_odds_label))
        ax.set_yticks(y, part["driver"] if "driver" in part else part["term"], fontsize=8)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.grid(axis="y", visible=False)
        given = part["given"].iloc[0] if "given" in part and len(part) else None
        step = part["step"].iloc[0] if len(part) else ""
        terms = int((drivers["step"] == step).sum())
        shown = f"the {len(part)} strongest of {terms} terms" if len(part) < terms else f"all {terms} terms"
        among = f"among sessions that reached {given}" if isinstance(given, str) and given else "among all sessions"
        ax.set_title(f"{step}, {among}: {shown}", fontsize=10)
        ax.set_xlabel("odds ratio (×, log scale; 1 = no effect)", fontsize=8)
    fig.suptitle("What moves each step: odds ratios with 95% CI", fontweight="bold")
    handles = {}
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=8)
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
    """Correct digits (LRE) of each least-squares method, one row per design, beside its rule of thumb.

    ``accuracy``: :func:`funnelkit.regression.accuracy_table` (indexed by design, ``log10_cond``,
    ``lre_qr`` and ``lre_normal`` columns). Designs are rows ordered by condition number (the best
    conditioned at the top) and named on the axis with their log10 κ, so no label sits on a point;
    the faint bars are the normwise rules 16 − log10 κ (QR) and 16 − 2·log10 κ (normal equations)."""
    rows = accuracy.sort_values("log10_cond", ascending=False)  # drawn bottom-up: best conditioned on top
    if ax is None:  # constrained: the legend below the axes stays inside the figure
        _, ax = plt.subplots(figsize=(8.5, 0.55 * len(rows) + 2.2), layout="constrained")
    fig = ax.figure
    y = np.arange(len(rows))
    ax.hlines(y, rows[["lre_normal", "lre_qr"]].min(axis=1), rows[["lre_normal", "lre_qr"]].max(axis=1),
              color=MUTED, lw=2, zorder=1)
    ax.scatter(16 - rows["log10_cond"], y, marker="|", s=260, color=PRIMARY, alpha=0.45, zorder=2,
               label="rule of thumb for QR: 16 − log10 κ")
    ax.scatter(16 - 2 * rows["log10_cond"], y, marker="|", s=260, color=ALERT, alpha=0.45, zorder=2,
               label="rule of thumb for normal equations: 16 − 2·log10 κ")
    ax.scatter(rows["lre_qr"], y, s=45, color=PRIMARY, zorder=3, label="QR (column-scaled)")
    ax.scatter(rows["lre_normal"], y, s=45, marker="s", color=ALERT, zorder=3, label="normal equations (Cholesky)")
    ax.set_yticks(y, [f"{name} (log10 κ = {cond:.1f})" for name, cond in zip(rows.index, rows["log10_cond"])])
    ax.set_xlim(0, 16.5)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set(title="Accuracy of least squares by method", xlabel="correct significant digits (LRE, of 16)",
           ylabel="design (κ: condition number, column-scaled)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
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
    if metric == "hit":  # a share of shoppers, read as a percentage
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("shoppers with a hit in their k items (%, 95% CI)")
        ax.set_title("Hit rate@k by model on the held-out period")
    else:
        ax.set_ylabel(f"mean {metric.upper()}@k over test users (95% CI)")
        ax.set_title(f"{metric.upper()}@k by model on the held-out period")
    # beside the axes: inside, it sat on the bars of whichever k was tallest
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _share_label(share: float) -> str:
    """A share for a grid cell: whole percents, but never a rounded 0% or 100% that is not exactly that."""
    if 0 < share < 0.01:
        return "<1%"
    if 0.99 < share < 1:
        return f"{min(share, 0.999):.1%}"  # 99.6% of ALS's slots must not read as popularity's 100%
    return f"{share:.0%}"


def popularity_bias_chart(bias: pd.DataFrame, ax=None):
    """Share of recommendation slots per catalogue popularity decile, per model (``explain.popularity_bias``).

    A grid, one row per model and one cell per decile with its share written in it: models that
    put nearly all their slots in the top decile (ALS and popularity, often) would hide each
    other as lines; as rows each stays visible and the numbers can be read.
    """
    grid = bias.pivot(index="model", columns="decile", values="share").reindex(bias["model"].unique())
    deciles = grid.columns.to_numpy()
    fig, ax = _axes(ax, (8.5, 0.5 * len(grid) + 1.8))
    image = ax.imshow(grid.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (row, column), share in np.ndenumerate(grid.to_numpy()):
        ax.text(column, row, _share_label(share), ha="center", va="center", fontsize=8,
                color="white" if share > 0.6 else "black")
    ax.set_xticks(range(len(deciles)), [str(d) for d in deciles])
    ax.set_yticks(range(len(grid)), grid.index)
    ax.grid(False)
    ax.set_xlabel(f"catalogue popularity decile (1 = most popular tenth of the items; no popularity bias = "
                  f"{1 / len(deciles):.0%} in every decile)")
    ax.set_title("Popularity bias: share of each model's recommended slots by item popularity")
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0), fraction=0.04, pad=0.02,
                 label="share of the model's slots")
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
        bars = axis.barh(part["model"], part["value"], color=PRIMARY, alpha=0.85)
        # the value beside each bar: popularity's coverage (0.3%) is a bar too thin to see
        axis.bar_label(bars, labels=[f"{v:.1%}" if metric == "coverage" else f"{v:.1f}" for v in part["value"]],
                       padding=3, fontsize=8)
        axis.margins(x=0.15)
        axis.set_xlabel(label)
        if metric == "coverage":
            axis.xaxis.set_major_formatter(PercentFormatter(1.0))
        axis.set_title(f"{metric.capitalize()}@{k}")
        axis.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def loss_curves_chart(losses: pd.DataFrame, ax=None):
    """Training loss per iteration of each solver (columns after ``iteration``).

    The curves agree when the solvers do, so each gets its own line style and marker (large open
    circles under small crosses): both stay visible when one lies on the other.
    """
    fig, ax = _axes(ax, (6.5, 3.8))
    looks = [dict(ls="-", lw=2.5, marker="o", ms=8, mfc="none", alpha=0.6), dict(ls="--", marker="x", ms=6),
             dict(ls=":", marker="s", ms=4, mfc="none")]
    for look, column in zip(looks, [c for c in losses.columns if c != "iteration"]):
        ax.plot(losses["iteration"], losses[column], label=column, **look)
    ax.set_xlabel("ALS iteration")
    ax.set_ylabel("training loss (implicit's normalised objective)")
    ax.set_title("Same start, same loss: implicit against the NumPy reference")
    ax.legend(fontsize=8)
    return fig


def kpi_timeline_chart(series: pd.DataFrame, column: str, alarms: pd.DataFrame | None = None,
                       shaded: dict[str, list] | None = None, ax=None, ylabel: str | None = None, *,
                       detector: str | None = None, alarm_label: str | None = None,
                       period: pd.Timedelta = pd.Timedelta(days=1), other_detectors: bool = False):
    """A KPI series over time with one detector's alarms shaded, and labelled context days marked.

    Parameters
    ----------
    series : DataFrame
        ``period`` (start, UTC) and ``column`` (``anomaly.kpi.kpi_series``), one row per period of length
        ``period``; each value is drawn at the middle of its period, so it sits inside its shaded span.
    column : str
        The KPI drawn: ``entrants`` or a step's ``{s}_rate`` (shown in %).
    alarms : DataFrame, optional
        The long ``period, detector, alarm`` table of ``anomaly.kpi.detect`` for this series.
    shaded : dict, optional
        Legend label → dates (whole UTC days) marked as context: the first label hatched (planted
        incident days, drawn over an alarm's shading so both show), the others filled in grey tones.
    ax : Axes, optional
    ylabel : str, optional
        Axis label with its unit.
    detector : str, optional
        The detector the report's headline names: each of its alarmed periods is shaded (one span per
        alarm, with ``gid="alarm"``) and circled on the line; ``alarm_label`` is its legend entry (default
        ``"alarm: <detector>"``). Without it, every detector in ``alarms`` is marked and none shaded (the
        caller passed the alarms it wants shown).
    period : Timedelta, default one day
        Length of one period of ``series`` and ``alarms``.
    other_detectors : bool, default False
        With ``detector``: also mark the other detectors' alarms. Off by default, so what a reader sees
        marked is what the headline counts.

    Returns
    -------
    Figure
    """
    fig, ax = _axes(ax, (10, 3.8))
    half = period / 2
    ax.plot(series["period"] + half, series[column], color=PRIMARY, lw=0.9, label=column.replace("_", " "))
    values = series.set_index("period")[column]
    raised = alarms[alarms["alarm"].astype(bool)] if alarms is not None else None

    def mark(part, color, marker, label):
        starts = pd.to_datetime(part["period"])
        ax.plot(starts + half, values.reindex(starts).to_numpy(dtype=float), marker, color=color, ms=5, mfc="none",
                label=label, zorder=3)

    if raised is not None and detector is not None:
        lead = raised[raised["detector"] == detector]
        label = alarm_label or f"alarm: {detector}"
        for i, start in enumerate(pd.to_datetime(lead["period"])):
            ax.axvspan(start, start + period, color=ALERT, alpha=0.25, lw=0, gid="alarm",
                       label=label if i == 0 else None)
        if len(lead):
            mark(lead, ALERT, "o", "_nolegend_")
        raised = raised[raised["detector"] != detector] if other_detectors else raised.iloc[:0]
    if raised is not None:
        for (name, part), color, marker in zip(raised.groupby("detector", sort=False),
                                               ["#dd6b20", "#805ad5", "#2f855a", ALERT], "v^so"):
            mark(part, color, marker, f"alarm: {name}")
    styles = [{"fill": False, "hatch": "////", "edgecolor": "#553c9a", "alpha": 0.7, "zorder": 2},
              {"color": MUTED, "alpha": 0.25}, {"color": "#4a5568", "alpha": 0.15}]
    for (label, dates), style in zip((shaded or {}).items(), styles):
        for i, date in enumerate(dates):
            start = pd.Timestamp(date, tz="UTC")
            ax.axvspan(start, start + pd.Timedelta(days=1), lw=0, gid="context", label=label if i == 0 else None,
                       **style)
    if column.endswith("_rate"):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time (UTC); each point at the middle of its period")
    label = ylabel or column.replace("_", " ")
    ax.set_ylabel(label)
    what = label.split(" (")[0]  # the unit stays on the axis
    ax.set_title(f"{what[:1].upper()}{what[1:]} over time")
    # below the axes: inside, "best" still covers a stretch of the series
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return fig


def kpi_step_charts(series: pd.DataFrame, alarms: dict[str, pd.DataFrame], shaded: dict[str, list] | None = None,
                    *, detector: str | None = None, alarm_label: str | None = None,
                    period: pd.Timedelta = pd.Timedelta(days=1)) -> list:
    """One :func:`kpi_timeline_chart` per step: its conversion from the previous step over time.

    Parameters
    ----------
    series : DataFrame
        ``anomaly.kpi.kpi_series`` with a ``{step}_rate`` column for every step in ``alarms``.
    alarms : dict
        Step name → its rows of ``anomaly.incidents.step_alarms`` (e.g. ``AnomalyResults.lead_step_alarms()``),
        in the order the figures are drawn.
    shaded, detector, alarm_label, period
        As in :func:`kpi_timeline_chart`, the same for every figure.

    Returns
    -------
    list of Figure
        One per step, in the order of ``alarms``.
    """
    return [kpi_timeline_chart(series, f"{step}_rate", step_alarms, shaded,
                               ylabel=f"{step} conversion from the previous step (%)", detector=detector,
                               alarm_label=alarm_label, period=period)
            for step, step_alarms in alarms.items()]


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
    drawn = [ax for ax in axes if ax.get_visible() and ax.patches]
    fig.tight_layout()
    if drawn:  # one legend for all panels, under them: inside a panel it covered the flagged users' bars
        fig.legend(*drawn[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
                   fontsize=8, frameon=False)
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


# --------------------------------------------------------------------------- retention (notebook 06)

def cohort_heatmap(cohorts: pd.DataFrame, ax=None, period: str = "week", min_users: int = 30):
    """Share of each cohort active k periods later; in-progress cells hatched and never coloured as a rate.

    ``cohorts`` is :func:`funnelkit.retention.cohorts.cohort_matrix` (in-progress cells have no share).
    Cohorts smaller than ``min_users`` are written but not coloured; a cohort whose period began before
    the log is marked with ``*`` (it holds earlier customers first seen then).
    """
    labels = sorted(cohorts["cohort"].unique())
    ks = sorted(cohorts["k"].unique()) if len(cohorts) else []
    fig, ax = _axes(ax, (max(6.0, 0.9 * len(ks) + 3), 0.42 * len(labels) + 1.8))
    grid = np.full((len(labels), len(ks)), np.nan)
    row_of = {c: i for i, c in enumerate(labels)}
    for cell in cohorts.itertuples():
        if not cell.in_progress and cell.users >= min_users:
            grid[row_of[cell.cohort], cell.k] = cell.share
    shown = grid[:, 1:] if grid.shape[1] > 1 else grid  # k = 0 is 100% for "any event": not the scale
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=max(top, 1e-9))
    for cell in cohorts.itertuples():
        y, x = row_of[cell.cohort], cell.k
        if cell.in_progress:
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///", edgecolor=MUTED, lw=0))
            ax.text(x, y, "in progress", ha="center", va="center", fontsize=7, color="#4a5568")
        else:
            dark = np.isfinite(grid[y, x]) and grid[y, x] > 0.6 * top
            ax.text(x, y, f"{cell.share:.0%}" if cell.share < 0.995 or cell.share == 1 else f"{cell.share:.1%}",
                    ha="center", va="center", fontsize=8, color="white" if dark else "#1a202c")
    sizes = cohorts.drop_duplicates("cohort").set_index("cohort")
    ax.set_yticks(range(len(labels)), [f"{c:%Y-%m-%d}{'*' if sizes.loc[c, 'partial_cohort'] else ''} "
                                       f"(n={sizes.loc[c, 'users']:,})" for c in labels])
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel(f"{period}s since the cohort's first {period} (0 = the cohort's own {period})")
    ax.set_ylabel(f"cohort ({period} of first visit, users)")
    ax.set_title(f"Share of each cohort active again, {period} by {period}")
    ax.grid(False)
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0, decimals=0), label="share of the cohort (%)")
    return fig


def return_curves_chart(curves: list, planted: pd.DataFrame | None = None, ax=None,
                        what: str = "came back (a later visit)", max_days: float | None = None):
    """Share who have had the event by each day (1 − Kaplan–Meier) with 95% bands, one curve per group.

    ``curves`` are :class:`funnelkit.retention.survival.SurvivalCurve`; ``planted`` (optional) has
    ``customer_type`` (the curve label), ``days``, ``planted`` (the share *not* yet back), drawn as markers.
    """
    fig, ax = _axes(ax)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, curve in enumerate(curves):
        table = curve.table
        if max_days is not None:
            table = table[table["days"] <= max_days]
        colour = colours[i % len(colours)]
        days = np.concatenate([[0.0], table["days"].to_numpy(float)])
        came = 1 - np.concatenate([[1.0], table["survival"].to_numpy(float)])
        low = 1 - np.concatenate([[1.0], table["ci_high"].to_numpy(float)])
        high = 1 - np.concatenate([[1.0], table["ci_low"].to_numpy(float)])
        ax.step(days, came, where="post", color=colour, label=f"{curve.label} (n={curve.n:,})")
        ax.fill_between(days, low, high, step="post", color=colour, alpha=0.2, lw=0)
        if planted is not None:
            mine = planted[planted["customer_type"] == curve.label]
            ax.plot(mine["days"], 1 - mine["planted"], "x", color=colour, ms=8, mew=2,
                    label=f"{curve.label}: planted" if len(mine) else None)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("days since the first visit" if "visit" in what else "days since the first order")
    ax.set_ylabel(f"share who {what} (%)")
    ax.set_title(f"Who {what}, by day (Kaplan–Meier, 95% bands)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    return fig


LIFECYCLE_COLOURS = {"new": "#3182ce", "returning": "#38a169", "resurrecting": "#d69e2e", "dormant": "#a0aec0"}


def lifecycle_chart(lifecycle: pd.DataFrame, ax=None, period: str = "week"):
    """Users per period: new, returning and resurrecting stacked up, dormant down; the unfinished period hatched
    (its users so far, and no dormant count: who has not come yet has not left)."""
    fig, ax = _axes(ax, (8.0, 4.8))
    x = np.arange(len(lifecycle))
    bottom = np.zeros(len(lifecycle))
    for state in ("new", "returning", "resurrecting"):
        values = lifecycle[state].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, color=LIFECYCLE_COLOURS[state], label=state)
        bottom += values
    dormant = lifecycle["dormant"].astype("Float64").fillna(0).to_numpy(dtype=float)
    ax.bar(x, -dormant, color=LIFECYCLE_COLOURS["dormant"], label="went dormant")
    unfinished = np.flatnonzero(lifecycle["in_progress"].to_numpy(dtype=bool))
    if len(unfinished):
        ax.bar(x[unfinished], bottom[unfinished], fill=False, hatch="///", edgecolor="#4a5568", lw=0,
               label="in progress (counted so far)")
    ax.axhline(0, color="#4a5568", lw=0.8)
    ax.set_xticks(x, [f"{p:%m-%d}" if period == "week" else f"{p:%Y-%m}" for p in lifecycle["period"]])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):,.0f}"))
    ax.set_xlabel(f"{period} starting (UTC)")
    ax.set_ylabel("users (went dormant: below the line)")
    ax.set_title(f"Lifecycle: who is active each {period}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=5, frameon=False)
    fig.tight_layout()
    return fig


def holdout_chart(holdout: pd.DataFrame, ax=None, days: float | None = None):
    """Actual mean repeat orders in the holdout period (95% CI) against the model's prediction, by how many
    repeat orders customers made before it (``funnelkit.retention.clv.holdout_calibration``)."""
    fig, ax = _axes(ax)
    x = np.arange(len(holdout))
    known = holdout["actual_ci_lower"].notna().to_numpy()
    ax.bar(x - 0.2, holdout["predicted_mean"], width=0.4, color=MUTED, label="predicted (BG/NBD)")
    ax.bar(x + 0.2, holdout["actual_mean"], width=0.4, color=PRIMARY, label="actual")
    if known.any():
        err = _error_bars(holdout["actual_mean"][known], holdout["actual_ci_lower"][known].clip(lower=0),
                          holdout["actual_ci_upper"][known])
        ax.errorbar(x[known] + 0.2, holdout["actual_mean"][known], yerr=err, fmt="none", color="#1a202c", capsize=3)
    ax.set_xticks(x, [f"{g}\n(n={n:,})" for g, n in zip(holdout["group"], holdout["customers"])])
    ax.set_xlabel("repeat orders before the holdout period (customers)")
    span = f" in the {days:.0f}-day holdout" if days else " in the holdout"
    ax.set_ylabel(f"repeat orders per customer{span}")
    ax.set_title("Customer-value model: predicted against actual repeat orders")
    ax.legend(loc="upper left", fontsize=8)
    return fig


# --------------------------------------------------------------------------- journeys (notebook 05)

def _state_order(by_state: pd.DataFrame) -> list:
    """States left to right: ``start`` first, then by rising chance to buy (ties: more pages still to come first)."""
    rest = by_state[by_state["state"] != "start"].sort_values(["purchase_probability", "expected_pages"],
                                                             ascending=[True, False], kind="stable")
    return ["start", *rest["state"]]


def journey_diagram(transitions: pd.DataFrame, by_state: pd.DataFrame, top: int = 18, ax=None):
    """An arc diagram of the journeys: states on a line, ``start`` first, then by rising chance to end in a
    purchase, ``purchase`` last; flows to the right arc above, flows back arc below, width ∝ transitions.

    Drawn: every state's largest flow to another state, then the largest others up to ``top``; each label is
    the share of the state's visits that took the flow. A state's box says how often it is followed by
    itself (↺) and how often the session ends there (leave).
    """
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as CurvePath

    fig, ax = _axes(ax, (11.0, 5.4))
    order = [*_state_order(by_state), "purchase"]
    spacing = 1.5  # room for a box of three lines between two states
    x_of = {s: spacing * i for i, s in enumerate(order)}
    moves = transitions[(transitions["from"] != transitions["to"]) & transitions["from"].isin(x_of)
                        & transitions["to"].isin(x_of)]
    main = moves.loc[moves.groupby("from")["count"].idxmax()] if len(moves) else moves
    flows = pd.concat([main, moves.drop(main.index).nlargest(max(top - len(main), 0), "count")])
    widest = flows["count"].max() if len(flows) else 1
    reach = 0.0
    for _, row in flows.iterrows():
        x0, x1 = x_of[row["from"]], x_of[row["to"]]
        up = 1 if x1 > x0 else -1
        height = up * (0.9 + 0.2 * abs(x1 - x0))
        reach = max(reach, abs(height) / 2)
        start, end = (x0 + 0.2 * np.sign(x1 - x0), 0.32 * up), (x1 - 0.2 * np.sign(x1 - x0), 0.32 * up)
        curve = CurvePath([start, ((x0 + x1) / 2, height), end], [CurvePath.MOVETO, CurvePath.CURVE3, CurvePath.CURVE3])
        colour = PRIMARY if row["to"] == "purchase" else "#718096" if up > 0 else "#b7791f"
        width = 0.5 + 6 * np.sqrt(row["count"] / widest)
        ax.add_patch(FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=8 + 1.5 * width, lw=width,
                                     color=colour, alpha=0.5))
        ax.text((x0 + x1) / 2, height / 2 + 0.012 * up, f"{row['probability']:.0%}", fontsize=7.5, ha="center",
                va="bottom" if up > 0 else "top", color="#1a202c",
                bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
    states = by_state.set_index("state")
    loops = transitions[transitions["from"] == transitions["to"]].set_index("from")["probability"]
    for state, x in x_of.items():
        details = []
        if state in loops.index:
            details.append(f"↺ {loops[state]:.0%}")
        if state in states.index and states.at[state, "exit_share"] > 0:
            details.append(f"leave {states.at[state, 'exit_share']:.0%}")
        purchase = state == "purchase"
        ax.text(x, 0, "\n".join([str(state), *details]), ha="center", va="center",
                fontsize=8.5, color="white" if purchase else "#1a202c", linespacing=1.4,
                bbox=dict(boxstyle="round,pad=0.4", ec="none", fc=PRIMARY if purchase else "#e2e8f0"))
    ax.set_xlim(-0.9, spacing * (len(order) - 1) + 0.9)
    ax.set_ylim(-max(reach, 0.6) - 0.3, max(reach, 0.6) + 0.3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("states by rising chance to end in a purchase; above: flows forward, below: flows back; "
                  "width: transitions; label: share of the state's visits")
    ax.set_title(f"Journeys: the {len(flows)} largest flows between states")
    return fig


def _interval_bars(ax, labels, value, low, high, colour=PRIMARY):
    y = np.arange(len(labels))
    ax.barh(y, value, xerr=_error_bars(value, low, high), color=colour, alpha=0.85, capsize=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))


def purchase_probability_chart(by_state: pd.DataFrame, ax=None):
    """Each state's chance that a session there goes on to buy, with its bootstrap interval."""
    rows = by_state[by_state["state"] != "start"].sort_values("purchase_probability", ascending=False)
    fig, ax = _axes(ax, (8.0, 0.9 + 0.36 * len(rows)))
    _interval_bars(ax, [str(s) for s in rows["state"]], rows["purchase_probability"],
                   rows["purchase_probability_low"], rows["purchase_probability_high"])
    ax.set_xlabel("chance that a session at this state ends in a purchase, first-order chain (%, 95% CI)")
    ax.set_title("Where purchases come from: chance to buy from each state")
    return fig


def removal_effects_chart(by_state: pd.DataFrame, ax=None):
    """Each state's removal effect (share of purchases lost without it) with its bootstrap interval."""
    rows = by_state[by_state["removal_effect"].notna()].sort_values("removal_effect", ascending=False)
    fig, ax = _axes(ax, (8.0, 0.9 + 0.36 * len(rows)))
    _interval_bars(ax, [str(s) for s in rows["state"]], rows["removal_effect"], rows["removal_effect_low"],
                   rows["removal_effect_high"], colour=MUTED)
    ax.set_xlabel("share of purchases lost if the state were removed, first-order chain (%, 95% CI)")
    ax.set_title("Removal effects: what each state is worth to purchases")
    return fig


def next_event_chart(next_event: pd.DataFrame, baseline: str, ax=None):
    """Each model's next-page log-loss minus the best Markov chain's, with the paired bootstrap interval."""
    rows = next_event[next_event["model"] != baseline]
    fig, ax = _axes(ax, (8.0, 1.2 + 0.45 * len(rows)))
    y = np.arange(len(rows))
    ax.errorbar(rows["log_loss_diff"], y, xerr=_error_bars(rows["log_loss_diff"], rows["log_loss_diff_low"],
                                                           rows["log_loss_diff_high"]),
                fmt="o", color=PRIMARY, capsize=4)
    ax.axvline(0, color=ALERT, lw=1)
    ax.set_yticks(y, [str(m) for m in rows["model"]])
    ax.invert_yaxis()
    order = baseline.split(", ")[-1].replace(" ", "-")
    ax.set_xlabel(f"next-page log-loss minus the {order} Markov chain's (nats; below 0: better; 95% CI)")
    ax.set_title("Predicting the next page: each model against the best Markov chain")
    return fig


def purchase_prediction_chart(purchase: pd.DataFrame, ax=None):
    """ROC-AUC of "the session will end in a purchase" after k pages, per model, with bootstrap intervals."""
    fig, ax = _axes(ax, (8.0, 4.2))
    models = list(dict.fromkeys(purchase["model"]))
    ks = sorted(purchase["k"].unique())
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        part = purchase[purchase["model"] == model].set_index("k").reindex(ks)
        x = np.arange(len(ks)) + (i - (len(models) - 1) / 2) * width
        ax.errorbar(x, part["roc_auc"], yerr=_error_bars(part["roc_auc"], part["roc_auc_low"], part["roc_auc_high"]),
                    fmt="o", capsize=3, label=model)
    ax.axhline(0.5, color=MUTED, lw=1, ls="--")
    ax.set_xticks(np.arange(len(ks)), [f"after {k} page{'s' if k > 1 else ''}" for k in ks])
    ax.set_xlabel("pages seen so far in the session")
    ax.set_ylabel("ROC-AUC of \"will buy\" (95% CI; 0.5 = chance)")
    ax.set_title("Will this session end in a purchase? Ranking by each model")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
