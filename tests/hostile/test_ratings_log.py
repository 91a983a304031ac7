"""Recommendations on a log that is not the built-in shop: a ratings log and an orders log without event types.

The README's "Your own interaction log" params example is run as written (only its file name replaced), so the
documented way keeps working.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from funnelkit.data import load_events
from funnelkit.errors import SchemaError
from funnelkit.params import DataParams, RecommendParams
from funnelkit.recommend import confidence_matrix
from funnelkit.report import read_metrics
from tests.hostile.conftest import ROOT, write_params
from tests.hostile.logs import canonical_csv, orders_csv, ratings_csv

RATINGS = DataParams(format="custom", columns={"user_id": "userId", "item_id": "movieId", "event_time": "timestamp"},
                     timestamp_unit="s", event_type="rating")


def readme_example() -> dict:
    """The params of the README's own-interaction-log example (the YAML block after its heading)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Your own interaction log", 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


def test_a_ratings_log_loads_with_one_event_type_and_keeps_the_rating_as_a_number(tmp_path):
    path = ratings_csv(tmp_path / "ratings.csv")
    raw = pd.read_csv(path)
    events = load_events(path, RATINGS)
    counts = events.query(f"SELECT event_type, count(*) AS n, sum(CAST(rating AS DOUBLE)) AS stars "
                          f"FROM {events.table} GROUP BY 1")
    assert counts["event_type"].tolist() == ["rating"] and counts["n"].tolist() == [len(raw)]
    assert counts["stars"].iloc[0] == pytest.approx(raw["rating"].sum())
    spec = RecommendParams(weights={"rating": 1.0}, weight_column="rating")
    assert confidence_matrix(events, spec).matrix.sum() == pytest.approx(raw["rating"].sum(), rel=1e-6)


def test_an_orders_log_weighs_each_line_by_its_quantity(tmp_path):
    path = orders_csv(tmp_path / "orders.csv")
    raw = pd.read_csv(path)
    events = load_events(path, DataParams(format="custom", event_type="purchase", assume_timezone="UTC",
                                          columns={"user_id": "customer", "item_id": "sku",
                                                   "event_time": "order_date"}))
    interactions = confidence_matrix(events, RecommendParams(weights={"purchase": 1.0}, weight_column="quantity"))
    expected = raw.groupby(["customer", "sku"])["quantity"].sum()
    row, col = interactions.user_index(["C0001"])[0], interactions.item_index([expected["C0001"].index[0]])[0]
    assert interactions.matrix[row, col] == expected["C0001"].iloc[0]
    assert interactions.matrix.sum() == raw["quantity"].sum()


def test_data_event_type_on_a_log_that_has_an_event_type_column_is_refused(tmp_path):
    path = canonical_csv(tmp_path / "events.csv")
    with pytest.raises(SchemaError, match=r"data.event_type 'purchase'.*column 'event_type'"):
        load_events(path, DataParams(event_type="purchase"))


def test_validate_on_a_ratings_log_without_event_type_points_to_data_event_type(tmp_path, cli):
    path = ratings_csv(tmp_path / "ratings.csv")
    data = RATINGS.model_dump(mode="json", exclude={"event_type"}) | {"source": str(path)}
    result = cli("validate", "--params", str(write_params(tmp_path, data=data)))
    assert result.code == 2, result.output
    assert "'event_type' not found" in result.stderr and "data.event_type: <type>" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_weight_column_stops_the_run_before_any_notebook_with_a_message_naming_it(tmp_path, cli):
    path = ratings_csv(tmp_path / "ratings.csv", n_users=60)
    raw = pd.read_csv(path)
    raw.loc[7, "rating"] = -2  # a dislike written as a negative number is not a confidence
    raw.to_csv(path, index=False)
    params = readme_example()
    params["data"]["source"] = str(path)
    result = cli("run", "--params", str(write_params(tmp_path, **params)), "--only", "03",
                 "--reports", str(tmp_path / "reports"))
    assert result.code == 2, result.output
    assert "recommend.weight_column 'rating': 1 weighted event(s) have no finite weight >= 0" in result.stderr
    assert "'-2.0'" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "reports" / "03_als_recommendations.html").exists()


@pytest.mark.notebooks
def test_readme_example_runs_notebook_03_on_a_ratings_log_and_als_beats_popularity(tmp_path, cli):
    """The documented way end to end: `funnelkit run --only 03` with the README's params on a ratings log."""
    path = ratings_csv(tmp_path / "ratings.csv")
    params = readme_example()
    assert params["data"]["event_type"] == "rating" and params["recommend"]["split"] == "user_temporal"
    params["data"]["source"] = str(path)
    reports = tmp_path / "reports"
    result = cli("run", "--params", str(write_params(tmp_path, **params)), "--only", "03", "--reports", str(reports))
    assert result.code == 0, result.output
    metrics = read_metrics(reports / "03_als_recommendations.ipynb")
    # every user rated at least 5 movies, so with test_fraction 0.2 every user holds out at least one
    assert metrics["test_users"]["value"] == pd.read_csv(path)["userId"].nunique()
    # the planted tastes are learnable: ALS beats popularity, the paired interval clear of zero
    assert metrics["ndcg_gain_over_popularity"]["ci"][0] > 0
    html = (reports / "03_als_recommendations.html").read_text()
    assert "last 20% of each user" in html and "each times the event" in html
    assert "Not shown: this section needs one cut-off for everyone" in html
