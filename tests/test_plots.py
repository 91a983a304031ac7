"""Every figure has a title and labelled axes with units, and draws the data it is given."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from funnelkit import plots
from funnelkit.funnel import run_funnel, transition_matrix
from funnelkit.params import FunnelParams
from funnelkit.profile import daily_event_counts
from tests.test_funnel import END, log_of, steps


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(200):
        t = int(rng.integers(0, 20_000))
        rows.append((u, t, "view", ["mobile", "desktop"][u % 2]))
        if rng.random() < 0.3:
            rows.append((u, t + int(rng.integers(1, 300)), "cart", ["mobile", "desktop"][u % 2]))
    _, log = log_of(rows)
    return log, run_funnel(log, FunnelParams(steps=steps("view", "cart")), data_end=END)


def labelled(fig):
    fig.canvas.draw()  # tick labels get their text when drawn
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_title(), "every panel has a title"
        # a categorical y axis (steps, segment values) is labelled by its tick labels
        y_labelled = ax.get_ylabel() or any(t.get_text() for t in ax.get_yticklabels())
        assert ax.get_xlabel() and y_labelled, "axes are labelled"
    return True


def test_dollar_signs_in_data_are_text_not_math():
    rows = [(1, 0, "view", "$5 off_$x^2"), (1, 1, "cart", "$5 off_$x^2"), (2, 0, "view", "mobile")]
    _, log = log_of(rows)
    result = run_funnel(log, FunnelParams(steps=steps("view", "cart")), data_end=END)
    fig = plots.breakdown_grid([result.breakdown("device")])
    fig.canvas.draw()
    assert any("$5 off_$x^2" in t.get_text() for t in fig.axes[0].get_yticklabels())


def test_no_breakdowns_gives_a_titled_note():
    fig = plots.breakdown_grid([])
    assert fig.axes[0].get_title() and "funnel.breakdowns" in fig.axes[0].texts[0].get_text()


def test_figures_are_titled_and_labelled(case):
    log, result = case
    figures = [
        result.plot(unit="users"),
        plots.breakdown_grid([result.breakdown("device")]),
        plots.trend_chart(result.trend("day"), freq="day"),
        plots.time_to_convert_chart(result.step_durations()),
        plots.transition_heatmap(transition_matrix(log, unit="user")),
        plots.events_per_day_chart(daily_event_counts(log)),
    ]
    assert all(labelled(f) for f in figures)


def test_funnel_chart_bars_are_the_entrants(case):
    _, result = case
    fig = result.plot()
    widths = sorted(p.get_width() for p in fig.axes[0].patches)
    assert widths == sorted(result.steps["entrants"].tolist())


def test_breakdown_chart_error_bars_are_the_intervals(case):
    _, result = case
    bd = result.breakdown("device")
    fig = bd.plot()
    line = fig.axes[0].lines[0]
    assert np.allclose(sorted(line.get_xdata()), sorted(bd.table["conversion"]))


def test_log_axes_have_plain_tick_labels(case):
    _, result = case
    fig = plots.time_to_convert_chart(result.step_durations())
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert labels and not any("$" in t or "mathdefault" in t for t in labels)


def _ranking_summary():
    import pandas as pd

    rows = []
    for model, base in (("ALS", 0.07), ("popularity", 0.035)):
        for k in (5, 10):
            for metric in ("ndcg", "coverage", "novelty"):
                value = base * k / 10 if metric == "ndcg" else 0.5 if metric == "coverage" else 7.0
                rows.append({"model": model, "metric": metric, "k": k, "value": value, "low": value * 0.8,
                             "high": value * 1.2, "users": 100})
    return pd.DataFrame(rows)


def test_ranking_chart_draws_one_bar_with_its_interval_per_model_and_k():
    fig = plots.ranking_chart(_ranking_summary())
    assert labelled(fig)
    heights = sorted(round(p.get_height(), 4) for p in fig.axes[0].patches)
    assert heights == [0.0175, 0.035, 0.035, 0.07]


def test_coverage_popularity_and_loss_charts_are_labelled():
    import pandas as pd

    assert labelled(plots.coverage_chart(_ranking_summary(), 10))
    bias = pd.DataFrame({"model": ["ALS"] * 10, "decile": range(1, 11), "share": [0.5] + [0.5 / 9] * 9})
    fig = plots.popularity_bias_chart(bias)
    assert labelled(fig)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[0], bias["share"])
    losses = pd.DataFrame({"iteration": [1, 2, 3], "reference (NumPy)": [0.3, 0.2, 0.1], "implicit": [0.3, 0.2, 0.1]})
    fig = plots.loss_curves_chart(losses)
    assert labelled(fig) and len(fig.axes[0].lines) == 2


def test_anomaly_charts_are_labelled_and_mark_the_alarms():
    import pandas as pd

    periods = pd.date_range("2026-09-01", periods=10, freq="D", tz="UTC")
    series = pd.DataFrame({"period": periods, "checkout_rate": [0.5] * 4 + [0.1] + [0.5] * 5})
    alarms = pd.DataFrame({"period": periods, "detector": "rate test", "alarm": [False] * 4 + [True] + [False] * 5})
    fig = plots.kpi_timeline_chart(series, "checkout_rate", alarms, {"incident day": ["2026-09-05"]},
                                   ylabel="checkout conversion (%)")
    assert labelled(fig)
    marked = [line for line in fig.axes[0].lines if line.get_label() == "alarm: rate test"][0]
    assert list(marked.get_ydata()) == [0.1]
    features = pd.DataFrame({"events_per_minute": [1.0, 1.2, 0.9, 20.0]}, index=list("abcd"))
    assert labelled(plots.feature_distributions_chart(features, pd.Series([False, False, False, True], index=list("abcd")),
                                                      ["events_per_minute"]))
    table = pd.DataFrame({"detector": ["LOF", "LOF", "IsolationForest", "IsolationForest"],
                          "type": ["bot", "any"] * 2, "pr_auc": [0.1, 0.2, 1.0, 0.9]})
    fig = plots.detector_scores_chart(table)
    assert labelled(fig) and sorted(round(p.get_height(), 2) for p in fig.axes[0].patches) == [0.1, 0.2, 0.9, 1.0]


# --- error bars are the intervals they are given (read back from matplotlib's artists) ----------------

def error_segments(ax) -> list[tuple[float, float, float]]:
    """(position, low end, high end) of every error bar drawn on ``ax`` by errorbar() or bar(yerr=...)
    (bar() draws its error bars through errorbar(), whose container joins the axes' own)."""
    from matplotlib.container import ErrorbarContainer

    out = []
    for container in ax.containers:
        if not isinstance(container, ErrorbarContainer):
            continue
        (bars,) = container.lines[2]
        vertical = not container.has_xerr
        for (x0, y0), (x1, y1) in bars.get_segments():
            out.append((x0, min(y0, y1), max(y0, y1)) if vertical else (y0, min(x0, x1), max(x0, x1)))
    return sorted(out)


def test_breakdown_error_bars_span_exactly_the_wilson_intervals(case):
    _, result = case
    bd = result.breakdown("device")
    ax = bd.plot().axes[0]
    table = bd.table.iloc[::-1]  # drawn bottom-up: the first row at the top
    expected = sorted(zip(range(len(table)), table["ci_low"], table["ci_high"]))
    assert (table["ci_high"] - table["ci_low"] > 0.05).all()  # intervals wide enough that zeroing shows
    assert np.allclose(error_segments(ax), expected, rtol=0, atol=1e-12)


def test_odds_ratio_error_bars_span_exactly_the_intervals():
    import pandas as pd

    drivers = pd.DataFrame({"step": ["cart", "cart", "purchase"], "term": ["mobile", "email", "mobile"],
                            "odds_ratio": [0.8, 1.5, 2.0], "odds_low": [0.6, 1.1, 1.2],
                            "odds_high": [1.1, 2.2, 3.5]})
    cart, purchase = plots.odds_ratio_chart(drivers).axes  # one panel per step, largest odds ratio on top
    assert np.allclose(error_segments(cart), [(0, 0.6, 1.1), (1, 1.1, 2.2)], rtol=1e-12, atol=0)
    assert np.allclose(error_segments(purchase), [(0, 1.2, 3.5)], rtol=1e-12, atol=0)


def test_ranking_error_bars_span_exactly_the_bootstrap_intervals():
    summary = _ranking_summary()  # every interval is (0.8, 1.2) × its value
    ax = plots.ranking_chart(summary).axes[0]
    ndcg = summary[summary["metric"] == "ndcg"]
    got = error_segments(ax)
    assert sorted((round(low, 12), round(high, 12)) for _, low, high in got) == sorted(
        (round(low, 12), round(high, 12)) for low, high in zip(ndcg["low"], ndcg["high"]))
    # each bar carries its own interval: the error bar at a bar's centre spans 0.8 to 1.2 × its height
    bars = sorted((p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches)
    assert np.allclose(got, [(x, 0.8 * h, 1.2 * h) for x, h in bars], rtol=1e-12, atol=0)


def test_trend_band_spans_exactly_the_intervals(case):
    _, result = case
    trend = result.trend("day")
    ax = plots.trend_chart(trend, freq="day").axes[0]
    (band,) = ax.collections
    heights = band.get_paths()[0].vertices[:, 1]
    assert sorted(set(np.round(heights, 12))) == sorted(set(np.round(np.r_[trend["ci_low"], trend["ci_high"]], 12)))
    assert (trend["ci_high"] - trend["ci_low"] > 0.05).any()


def test_breakdown_error_bars_reach_the_interval_and_are_never_negative():
    """0 of 7 and 7 of 7 converting: statsmodels' Wilson bounds were 1e-17 on the wrong side of the rate."""
    import pandas as pd

    from funnelkit.funnel import Breakdown
    from funnelkit.stats import rate_frame

    table = pd.DataFrame({"value": ["none", "all", "some"], "entrants": [7, 7, 30], "converted": [0, 7, 9]})
    table = pd.concat([table, rate_frame(table["converted"], table["entrants"]).rename(columns={"rate": "conversion"})],
                      axis=1)
    raw = table.assign(ci_low=[2.8e-17, 0.6, table["ci_low"][2]])  # a bound a rounding error above its rate
    for frame in (table, raw):
        fig = plots.breakdown_chart(Breakdown(column="device", attribution="first_step", table=frame, test={}))
        (bars,) = fig.axes[0].containers[0].lines[2]
        ends = np.array([[segment[0][0], segment[1][0]] for segment in bars.get_segments()])
        assert (ends[:, 1] >= ends[:, 0]).all()
        expected_low = np.minimum(frame["ci_low"], frame["conversion"])
        assert np.allclose(ends[:, 0], expected_low) and np.allclose(ends[:, 1], frame["ci_high"])


def test_error_bars_clip_rounding_noise_and_refuse_a_really_inverted_interval():
    """A bound 1e-17 (or 1e-9 of the value) on the wrong side is noise; 1e-6 is a wrong interval, not a 0 bar."""
    from funnelkit.plots import _error_bars

    bars = _error_bars([0.0, 1.0, 0.3, 250.0], [2.8e-17, 0.6, 0.2, 250.0 + 1e-7], [0.35, 1.0 - 1e-16, 0.5, 260.0])
    np.testing.assert_array_equal(bars, [[0.0, 0.4, 0.3 - 0.2, 0.0], [0.35, 0.0, 0.5 - 0.3, 10.0]])
    with pytest.raises(ValueError, match=r"1 interval\(s\) do not contain their estimate.*position 1"):
        _error_bars([0.0, 0.3], [0.0, 0.3 + 1e-6], [0.35, 0.5])
    with pytest.raises(ValueError, match="0.7 outside"):
        _error_bars([0.7], [0.2], [0.5])


def test_breakdown_chart_refuses_an_interval_that_excludes_its_rate():
    import pandas as pd

    from funnelkit.funnel import Breakdown

    table = pd.DataFrame({"value": ["a", "b"], "entrants": [10, 10], "converted": [3, 5], "conversion": [0.3, 0.5],
                          "ci_low": [0.1, 0.55], "ci_high": [0.6, 0.8]})
    with pytest.raises(ValueError, match="do not contain their estimate"):
        plots.breakdown_chart(Breakdown(column="device", attribution="first_step", table=table, test={}))


# --- notebook 02's charts: top drivers per step, each model once, no overlapping labels -------------------

def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts of ``fig`` (tick labels, annotations, titles) whose boxes intersect."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()
             and t.figure is fig and not any(t in legend.get_texts() for legend in fig.legends)]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0]


def _drivers_of_three_steps():
    import pandas as pd

    rng = np.random.default_rng(3)
    rows = []
    for step, given in (("cart", None), ("checkout", "cart"), ("purchase", "checkout")):
        for i in range(15):
            odds = float(np.exp(rng.normal(0, 0.4)))
            rows.append({"step": step, "given": given, "term": f"{step} term {i}", "driver": f"{step} driver {i}",
                         "odds_ratio": odds, "odds_low": odds / 1.3, "odds_high": odds * 1.3,
                         "p_adjusted": 0.5 if i % 3 else 0.001})
    return pd.DataFrame(rows)


def test_odds_ratio_chart_shows_the_strongest_terms_of_each_step_significant_or_not():
    drivers = _drivers_of_three_steps()
    fig = plots.odds_ratio_chart(drivers, top=6)
    assert labelled(fig) and len(fig.axes) == 3
    for ax, (step, part) in zip(fig.axes, drivers.groupby("step", sort=False)):
        shown = [t.get_text() for t in ax.get_yticklabels()]
        strongest = part.loc[np.abs(np.log(part["odds_ratio"])).nlargest(6).index]
        assert sorted(shown) == sorted(strongest["driver"])  # the readable names, at most six, the strongest
        assert step in ax.get_title() and "6 strongest of 15" in ax.get_title()
        # drawn bottom-up by odds ratio: the largest at the top of the panel
        assert shown == list(strongest.sort_values("odds_ratio")["driver"])
    # significance is shown: filled dots for significant terms, hollow for the others
    faces = {line.get_markerfacecolor() for ax in fig.axes for line in ax.lines if line.get_marker() == "o"}
    assert "white" in faces and len(faces) == 2


def test_odds_ratio_chart_has_readable_log_ticks_and_its_legend_outside_the_data():
    import pandas as pd

    # the report's case: every interval between 0.55 and 1.9, where the old axis showed only "1"
    drivers = pd.DataFrame({"step": ["cart", "cart", "checkout"], "term": ["a", "b", "c"],
                            "odds_ratio": [0.6, 1.7, 1.2], "odds_low": [0.55, 1.5, 1.0],
                            "odds_high": [0.66, 1.9, 1.4], "p_adjusted": [0.01, 0.01, 0.3],
                            "planted": np.log([0.6, 1.6, 1.0])})
    fig = plots.odds_ratio_chart(drivers)
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        lo, hi = ax.get_xlim()
        visible = [t.get_text() for t, x in zip(ax.get_xticklabels(), ax.get_xticks()) if lo <= x <= hi]
        assert {"0.5", "1", "2"} <= set(visible), ticks
        assert not any("$" in t or "10^" in t for t in ticks)
        assert ax.get_legend() is None  # no legend drawn over the intervals
    (legend,) = fig.legends
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    assert {t.get_text() for t in legend.get_texts()} >= {"planted (simulated shop)", "not significant"}
    assert not overlapping_texts(fig)


def test_odds_ratio_ticks_stay_powers_of_two_with_plain_labels_on_extreme_ratios():
    assert plots._odds_ticks(0.5, 2.0) == [0.5, 1.0, 2.0]
    ticks = plots._odds_ticks(1 / 300, 300.0)
    assert 1.0 in ticks and len(ticks) <= 10 and all(np.log2(t) == round(np.log2(t)) for t in ticks)
    assert [plots._odds_label(t) for t in (0.0625, 0.5, 1.0, 4.0)] == ["1/16", "0.5", "1", "4"]


def _comparison():
    import pandas as pd

    from funnelkit.predict import ModelComparison

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    probabilities = {"one feature": np.clip(0.2 + 0.1 * y + rng.normal(0, 0.1, 400), 0.01, 0.99),
                     "logistic": np.clip(0.2 + 0.3 * y + rng.normal(0, 0.1, 400), 0.01, 0.99),
                     "logistic, class-weighted": np.clip(0.5 + 0.3 * y + rng.normal(0, 0.1, 400), 0.01, 0.99)}
    folds = pd.DataFrame([{"model": m, "fold": f, "roc_auc": 0.7 + 0.01 * f, "pr_auc": 0.3, "brier": 0.1,
                           "best_params": None} for m in probabilities for f in range(5)])
    return ModelComparison(folds, probabilities, y)


def test_each_model_is_drawn_once_when_the_best_is_also_listed():
    comparison = _comparison()
    # the notebook asks for ['one feature', 'logistic', best] and the best is often 'logistic'
    roc, pr = plots.model_curves_chart(comparison, ["one feature", "logistic", "logistic"]).axes
    for ax in (roc, pr):
        names = [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()]
        assert names == ["one feature", "logistic"]
    calibration = plots.calibration_chart(comparison, ["logistic", "logistic, class-weighted", "logistic"]).axes[0]
    names = [t.get_text() for t in calibration.get_legend().get_texts()]
    assert names == ["logistic", "logistic, class-weighted", "perfect calibration"]
    assert len([line for line in calibration.lines if line.get_label() == "logistic"]) == 1


def test_accuracy_chart_names_each_design_once_without_overlapping_labels():
    from funnelkit.regression import accuracy_table

    accuracy = accuracy_table()  # Longley and the degree-7 polynomial sit 0.2 apart in log10 κ
    fig = plots.accuracy_chart(accuracy)
    assert labelled(fig)
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(label.split(" (log10")[0] for label in shown) == sorted(accuracy.index)
    assert not ax.texts  # no label placed on a point, where two close designs collided
    assert not overlapping_texts(fig)
    # each design's row carries its two methods' digits
    qr = next(c for c in ax.collections if c.get_label() == "QR (column-scaled)")
    assert sorted(qr.get_offsets()[:, 0]) == sorted(accuracy["lre_qr"])


# ---- logs with many event names: top-N event types, the rest as "other" (issue 18, point 4)

MANY = ["view", "cart", "checkout", "purchase"] + [f"custom_event_{i:02d}" for i in range(16)]


def many_daily():
    """Events per day of 20 types: the custom ones frequent (1600 down to 100 a day), the funnel's rare."""
    import pandas as pd

    days = pd.date_range("2024-03-01", periods=5, tz="UTC")
    per_day = {name: 100 * (16 - i) for i, name in enumerate(MANY[4:])} | {"view": 9, "cart": 7, "checkout": 5,
                                                                          "purchase": 3}
    return pd.DataFrame([(d, name, n + k) for k, d in enumerate(days) for name, n in per_day.items()],
                        columns=["day", "event_type", "events"])


def many_counts():
    """A 20 × 21 transition count matrix (integer), rows ranked by total: custom_event_00 the busiest."""
    import pandas as pd

    rng = np.random.default_rng(18)
    counts = rng.integers(40, 50, (20, 21))  # little noise: the weights below decide the ranking
    weights = np.round(1.5 ** np.arange(15, -1, -1)).astype(int)  # custom_event_00 > custom_event_01 > ... > the funnel's, as event and as next
    counts[4:] *= weights[:, None]
    counts[:, 4:20] *= weights
    return pd.DataFrame(counts, index=MANY, columns=MANY + ["(exit)"])


def test_events_per_day_draws_the_top_types_and_the_funnel_steps_and_sums_the_rest_as_other():
    from funnelkit.figure_lint import lint_figure

    daily = many_daily()
    fig = plots.events_per_day_chart(daily, top=6)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    # the funnel's four steps stay although they are the rarest, then the two busiest others
    assert list(lines) == ["custom_event_00", "custom_event_01", "view", "cart", "checkout", "purchase",
                           "other (14 event types)"]
    folded = daily[daily["event_type"].isin(MANY[6:])].groupby("day")["events"].sum()
    assert lines["other (14 event types)"].get_ydata().tolist() == folded.tolist()
    assert sum(line.get_ydata().sum() for line in lines.values()) == daily["events"].sum()  # nothing lost
    assert lint_figure(fig) == []
    # with the custom events as the funnel's steps, they are kept instead
    fig = plots.events_per_day_chart(daily, top=3, keep=["custom_event_14", "custom_event_15"])
    assert [line.get_label() for line in fig.axes[0].lines] == ["custom_event_00", "custom_event_14",
                                                                "custom_event_15", "other (17 event types)"]


def test_a_log_with_few_event_types_is_drawn_as_before():
    daily = many_daily()
    daily = daily[daily["event_type"].isin(MANY[:5])]  # 5 types, under the top 6: nothing folded
    assert [line.get_label() for line in plots.events_per_day_chart(daily).axes[0].lines] == [
        "custom_event_00", "view", "cart", "checkout", "purchase"]


def test_transition_heatmap_of_counts_folds_rare_rows_and_columns_then_takes_row_shares():
    from funnelkit.figure_lint import lint_figure

    counts = many_counts()
    fig = plots.transition_heatmap(counts, top=10)
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    rows = [t.get_text() for t in ax.get_yticklabels()]
    columns = [t.get_text() for t in ax.get_xticklabels()]
    named = MANY[:10]  # the funnel's four, then custom_event_00..05, the busiest rows
    assert rows == named + ["other (10 event types)"]
    assert columns == named + ["other (10 event types)", "(exit)"]
    # the "other" row: the ten folded rows' counts summed, its folded columns summed, then row shares
    rest = counts.iloc[10:].sum(axis=0)
    expected = np.r_[rest.iloc[:10].to_numpy(), rest.iloc[10:20].sum(), rest.iloc[20]] / rest.sum()
    assert np.allclose(shown[-1], expected)
    assert np.allclose(shown.sum(axis=1), 1.0)
    assert ax.get_ylabel() == "current event type"
    assert lint_figure(fig) == []


def test_transition_heatmap_of_shares_folds_columns_exactly_and_says_which_rows_it_leaves_out():
    counts = many_counts()
    shares = counts.div(counts.sum(axis=1), axis=0)
    ax = plots.transition_heatmap(shares, top=10).axes[0]
    shown = ax.images[0].get_array()
    assert len(shown) == 10 and ax.get_ylabel() == "current event type (10 rarer types not shown)"
    assert np.allclose(shown[:, 10], shares.iloc[:10, 10:20].sum(axis=1))  # the "other" column
    assert np.allclose(shown.sum(axis=1), 1.0)


def test_event_mix_table_sums_the_rare_event_types_into_one_row():
    import pandas as pd

    from funnelkit import tables
    from funnelkit.text import pct

    totals = many_daily().groupby("event_type")["events"].sum().sort_values(ascending=False)
    mix = pd.DataFrame({"event_type": totals.index, "events": totals.to_numpy(), "users": 10})
    mix["share_of_events"] = mix["events"] / mix["events"].sum()
    table = tables.event_mix_table(mix, top=10)
    assert table["event type"].tolist() == [f"custom_event_{i:02d}" for i in range(6)] + MANY[:4] + [
        "other (10 event types)"]
    other = table.iloc[-1]
    assert other["events"] == f"{totals[MANY[10:]].sum():,}" and other["users"] == "–"
    assert other["share of events"] == pct(totals[MANY[10:]].sum() / totals.sum(), 2)
    # one type to fold: it keeps its name rather than becoming "other (1 event types)"
    assert tables.event_mix_table(mix.head(11), top=10)["event type"].tolist() == mix["event_type"].head(11).tolist()


# --- the KPI timeline shades the headline detector's alarms, and only those (issue 18) -----------------------


def _kpi_case():
    import pandas as pd

    periods = pd.date_range("2026-09-01", periods=10, freq="D", tz="UTC")
    series = pd.DataFrame({"period": periods, "checkout_rate": [0.5, 0.5, 0.1, 0.5, 0.5, 0.2, 0.5, 0.5, 0.5, 0.3]})
    flags = {"3-sigma": [2, 5], "STL": [2, 5, 9], "robust z": [0, 1, 3, 4, 6, 7, 8, 9]}  # robust z: 8 false alarms
    alarms = pd.concat([pd.DataFrame({"period": periods, "detector": name, "alarm": [i in days for i in range(10)]})
                        for name, days in flags.items()], ignore_index=True)
    return periods, series, alarms


def test_the_kpi_timeline_shades_one_span_per_alarm_of_the_named_detector_only():
    import pandas as pd

    periods, series, alarms = _kpi_case()
    fig = plots.kpi_timeline_chart(series, "checkout_rate", alarms, {"planted incident day": ["2026-09-03"]},
                                   ylabel="checkout conversion (%)", detector="3-sigma",
                                   alarm_label="alarm: 3-sigma detector on daily conversion")
    assert labelled(fig)
    ax = fig.axes[0]
    spans = [p for p in ax.patches if p.get_gid() == "alarm"]
    assert len(spans) == 2  # the 3-sigma's two alarms, not the 8 of robust z nor STL's third
    assert sorted(mdates_num(p) for p in spans) == [mdates_num(periods[2]), mdates_num(periods[5])]
    assert len([p for p in ax.patches if p.get_gid() == "context"]) == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "alarm: 3-sigma detector on daily conversion" in legend
    assert not any(text in legend for text in ("alarm: STL", "alarm: robust z"))  # others only on request
    # the alarmed values are circled at the middle of their day, inside their span
    circled = [line for line in ax.lines if line.get_marker() == "o"][0]
    assert list(circled.get_ydata()) == [0.1, 0.2]
    middle = pd.Timestamp("2026-09-03 12:00", tz="UTC")
    assert mdates_num(middle) in [mdates_num(x) for x in circled.get_xdata()]
    assert mdates_num(ax.lines[0].get_xdata()[2]) == mdates_num(middle)  # the series too: circle on the line


def test_other_detectors_are_marked_on_request_without_more_shading():
    _, series, alarms = _kpi_case()
    fig = plots.kpi_timeline_chart(series, "checkout_rate", alarms, ylabel="checkout conversion (%)",
                                   detector="3-sigma", other_detectors=True)
    ax = fig.axes[0]
    assert len([p for p in ax.patches if p.get_gid() == "alarm"]) == 2
    marked = {line.get_label(): len(line.get_ydata()) for line in ax.lines}
    assert marked["alarm: STL"] == 3 and marked["alarm: robust z"] == 8
    assert "alarm: 3-sigma" in [t.get_text() for t in ax.get_legend().get_texts()]  # default legend entry


def test_hourly_alarms_shade_an_hour_each():
    import pandas as pd

    periods = pd.date_range("2026-09-01", periods=48, freq="h", tz="UTC")
    series = pd.DataFrame({"period": periods, "cart_rate": [0.1] * 48})
    alarms = pd.DataFrame({"period": periods, "detector": "rate test", "alarm": [i == 30 for i in range(48)]})
    fig = plots.kpi_timeline_chart(series, "cart_rate", alarms, ylabel="cart conversion (%)", detector="rate test",
                                   period=pd.Timedelta(hours=1))
    (span,) = [p for p in fig.axes[0].patches if p.get_gid() == "alarm"]
    assert span.get_width() * 24 == pytest.approx(1.0)  # matplotlib dates count days
    assert mdates_num(span) == mdates_num(periods[30])


def test_kpi_step_charts_draw_one_labelled_figure_per_step_with_that_steps_alarms():
    import pandas as pd

    periods, series, alarms = _kpi_case()
    series = series.assign(cart_rate=0.4)
    by_step = {"cart": alarms.iloc[:0], "checkout": alarms[alarms["detector"] == "3-sigma"]}
    figures = plots.kpi_step_charts(series, by_step, {"planted incident day": ["2026-09-03"]}, detector="3-sigma",
                                    alarm_label="alarm: 3-sigma detector on hourly conversion",
                                    period=pd.Timedelta(hours=1))
    assert len(figures) == 2 and all(labelled(fig) for fig in figures)
    assert [fig.axes[0].get_ylabel() for fig in figures] == [
        "cart conversion from the previous step (%)", "checkout conversion from the previous step (%)"]
    assert [len([p for p in fig.axes[0].patches if p.get_gid() == "alarm"]) for fig in figures] == [0, 2]
    (first, _) = [p for p in figures[1].axes[0].patches if p.get_gid() == "alarm"]
    assert first.get_width() * 24 == pytest.approx(1.0)  # each figure gets the period given
    assert "alarm: 3-sigma detector on hourly conversion" in [t.get_text() for t in
                                                              figures[1].axes[0].get_legend().get_texts()]
    assert plots.kpi_step_charts(series, {}) == []


def mdates_num(value):
    """Matplotlib's float for a time (days since its epoch), or the left edge of a span."""
    import matplotlib.dates as mdates
    import pandas as pd

    if hasattr(value, "get_x"):  # axvspan's Rectangle, x in data coordinates
        return round(float(value.get_x()), 9)
    return round(float(mdates.date2num(pd.Timestamp(value))), 9)


def test_popularity_bias_chart_shows_every_model_even_when_two_fill_the_top_decile():
    # on the default shop ALS puts 99% of its slots in the most popular tenth and popularity 100%: as lines one
    # hid the other; each model is now a row of the grid, with its shares written in the cells
    import pandas as pd

    shares = {"popularity": [1.0] + [0.0] * 9, "ALS": [0.996, 0.004] + [0.0] * 8, "random": [0.1] * 10}
    bias = pd.DataFrame([{"model": m, "decile": d, "share": s} for m, row in shares.items()
                         for d, s in enumerate(row, start=1)])
    fig = plots.popularity_bias_chart(bias)
    assert labelled(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["popularity", "ALS", "random"]  # the data's order
    np.testing.assert_allclose(ax.images[0].get_array(), [shares[m] for m in shares])
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert len(cells) == 30
    # 99.6% is not rounded to popularity's 100%, nor 0.4% to 0%
    assert (cells[(0, 0)], cells[(1, 0)], cells[(1, 1)], cells[(1, 2)], cells[(2, 9)]) == (
        "100%", "99.6%", "<1%", "0%", "10%")
    # the colour says the share on one fixed scale, whatever the largest share of this run
    halved = plots.popularity_bias_chart(bias.assign(share=bias["share"] / 2))
    assert halved.axes[0].images[0].get_clim() == (0, 1)


def test_loss_curves_stay_visible_when_the_solvers_agree():
    import pandas as pd

    losses = pd.DataFrame({"iteration": [1, 2, 3], "reference (NumPy)": [0.3, 0.2, 0.1], "implicit": [0.3, 0.2, 0.1]})
    first, second = plots.loss_curves_chart(losses).axes[0].lines
    assert first.get_marker() != second.get_marker() and first.get_linestyle() != second.get_linestyle()
    # the one drawn first is the wider, so the one on top never covers it
    assert first.get_markersize() > second.get_markersize() and first.get_linewidth() > second.get_linewidth()
    assert first.get_markerfacecolor() == "none"


def test_coverage_chart_writes_each_value_beside_its_bar():
    # popularity's coverage (0.3% of the catalogue) is a bar too thin to see: its value is written beside it
    fig = plots.coverage_chart(_ranking_summary(), 10)
    coverage, novelty = fig.axes
    rows = _ranking_summary().query("k == 10")
    expected = [f"{v:.1%}" for v in rows.loc[rows["metric"] == "coverage", "value"]]
    assert [t.get_text() for t in coverage.texts] == expected
    assert len(novelty.texts) == len(expected)


def test_ranking_chart_of_hit_rate_reads_in_percent_with_the_legend_beside_the_bars():

    summary = _ranking_summary().assign(metric=lambda f: f["metric"].replace({"ndcg": "hit"}))
    fig = plots.ranking_chart(summary, "hit")
    assert labelled(fig)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Hit rate@k") and "%" in ax.get_ylabel()
    assert ax.yaxis.get_major_formatter()(0.07, 0) in ("7%", "7.0%")  # a share, not 0.07
    fig.canvas.draw()
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes_box.x1  # outside the plotting area: it covers no bar


def test_feature_distributions_share_one_legend_outside_the_panels():
    import pandas as pd

    features = pd.DataFrame({"events_per_minute": [1.0, 1.2, 0.9, 20.0], "distinct_items": [1, 2, 3, 300]},
                            index=list("abcd"))
    fig = plots.feature_distributions_chart(features, pd.Series([False, False, False, True], index=list("abcd")),
                                            ["events_per_minute", "distinct_items"])
    assert labelled(fig)
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend over the bars
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["not flagged (n=3)", "flagged (n=1)"]


def test_transition_heatmap_puts_the_funnel_steps_first_in_step_order():
    counts = many_counts()
    steps = ["custom_event_15", "custom_event_03"]  # a funnel of custom events, the first one rare
    ax = plots.transition_heatmap(counts, top=4, keep=steps).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == steps + ["custom_event_00", "custom_event_01",
                                                                "other (16 event types)"]
    assert [t.get_text() for t in ax.get_xticklabels()][-2:] == ["other (16 event types)", "(exit)"]


def test_funnel_event_types_are_the_events_of_the_steps_in_step_order_once_each():
    from funnelkit.event_types import funnel_event_types

    funnel = FunnelParams(steps=[{"name": "look", "events": ["product", "catalog"]},
                                 {"name": "add", "events": ["add_to_cart"]}, {"name": "again", "events": ["product"]}])
    assert funnel_event_types(funnel) == ["product", "catalog", "add_to_cart"]


def test_a_term_left_out_of_the_odds_ratio_chart_does_not_stretch_its_axis():
    import pandas as pd

    # "rare" has the widest interval but the smallest effect: not among the top 2, so not drawn
    drivers = pd.DataFrame({"step": ["cart"] * 3, "term": ["a", "b", "rare"],
                            "odds_ratio": [0.6, 1.7, 1.05], "odds_low": [0.55, 1.5, 1e-6],
                            "odds_high": [0.66, 1.9, 1e6]})
    ax = plots.odds_ratio_chart(drivers, top=2).axes[0]
    assert "rare" not in [t.get_text() for t in ax.get_yticklabels()]
    low, high = ax.get_xlim()
    assert 0.4 < low <= 0.5 and 2.0 <= high < 2.5


def test_the_cohort_heatmap_colours_no_in_progress_cell():
    from funnelkit.retention.cohorts import cohort_matrix

    monday = pd.Timestamp("2026-09-07", tz="UTC")
    week = pd.Timedelta(days=7)
    sizes = pd.DataFrame({"cohort": [monday, monday + week], "users": [200, 150]})
    active = pd.DataFrame({"cohort": [monday, monday, monday + week, monday + week],
                           "period": [monday, monday + week, monday + week, monday + 2 * week],
                           "users": [200, 40, 150, 3]})
    cells = cohort_matrix(sizes, active, period="week", periods=3, data_start=monday,
                          data_end=monday + 2 * week + pd.Timedelta(days=1))
    fig = plots.cohort_heatmap(cells)
    grid = fig.axes[0].images[0].get_array()
    shares = np.ma.filled(np.ma.asarray(grid, dtype=float), np.nan)
    # cohort 1 week 2 and cohort 2 week 1 are in progress: no colour
    assert np.isnan(shares[0, 2]) and np.isnan(shares[1, 1])
    assert shares[0, 1] == pytest.approx(0.2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("in progress") == 2 and "2%" not in texts and "0%" not in texts
