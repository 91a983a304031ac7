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
