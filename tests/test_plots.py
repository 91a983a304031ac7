"""Every figure has a title and labelled axes with units, and draws the data it is given."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
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
    assert list(fig.axes[0].lines[0].get_ydata()) == list(bias["share"])
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
    ax = plots.odds_ratio_chart(drivers).axes[0]
    expected = sorted(zip([2, 1, 0], drivers["odds_low"], drivers["odds_high"]))
    assert np.allclose(error_segments(ax), expected, rtol=1e-12, atol=0)


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
