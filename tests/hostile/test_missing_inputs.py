"""Studies whose inputs the log lacks, end to end: they render what they can, or one card saying what they need.

One ``funnelkit run`` per crafted log (notebook runs are slow), each checked on several points:

- the canonical log without ``price``: notebook 02 crashed (``SchemaError: design_matrix: column(s)
  ['log_price'] not in the table``); now its models leave the price features out and say so, and the
  order value is a short "not available" note;
- the canonical log without ``item_id`` and ``category``: notebook 03 crashed; now it shows one card
  ("The recommendation study needs the column item_id; your log has columns ...") and exits 0, and its
  row on the index says "not applicable" with the reason; notebook 04 names the features it left out;
- REES46 and RetailRocket (no checkout event, so the steps are view → cart → purchase; RetailRocket has
  no prices and no segments either): notebook 02 models cart and purchase given cart;
- a clickstream whose funnel ends in ``payment_done``, without items: 02 (no ``purchase`` events) and 03
  (no ``item_id``) are both not applicable.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from funnelkit.report import NOT_APPLICABLE

from . import logs
from .conftest import run_cli, write_params

pytestmark = pytest.mark.notebooks  # executes notebooks end to end (slow)

DRIVERS, RECOMMEND, ANOMALY = "02_conversion_drivers", "03_als_recommendations", "04_anomaly_studies"
#: the crafted logs span 28 days: the default test period (14 days, and as much again for validation) leaves
#: no training data
SHORT_TEST = {"test_period": "7D"}


def _run(folder: Path, source: Path, notebooks=("02", "03", "04"), **sections) -> dict:
    """Run the notebooks on ``source``; the CLI result, runs.json's rows and each report's text."""
    data = {"source": str(source), **sections.pop("data", {})}
    folder.mkdir(parents=True, exist_ok=True)
    params = write_params(folder, data=data, **sections)
    reports = folder / "reports"
    result = run_cli("run", "--params", str(params), "--only", *notebooks, "--reports", str(reports),
                     "--no-progress", "--jobs", "2")
    manifest = json.loads((reports / "runs.json").read_text()) if (reports / "runs.json").is_file() else {}
    pages = {p.stem: _text(p) for p in reports.glob("*.html")}
    return {"result": result, "rows": manifest.get("notebooks", {}), "pages": pages}


def _text(path: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _ok(run: dict, *names: str) -> None:
    assert run["result"].code == 0, run["result"].output
    for name in names:
        assert run["rows"][name]["status"] == "ok", run["rows"][name]
        assert "Traceback" not in run["pages"][name]


def _metrics(run: dict, name: str) -> dict:
    return run["rows"][name]["metrics"]


@pytest.fixture(scope="module")
def canonical(tmp_path_factory) -> Path:
    return logs.canonical_csv(tmp_path_factory.mktemp("canonical") / "events.csv", n_users=300)


@pytest.fixture(scope="module")
def without_prices(tmp_path_factory, canonical):
    folder = tmp_path_factory.mktemp("no_prices")
    return _run(folder, logs.without_columns(canonical, folder / "events.csv", ["price"]), recommend=SHORT_TEST)


@pytest.fixture(scope="module")
def without_items(tmp_path_factory, canonical):
    folder = tmp_path_factory.mktemp("no_items")
    return _run(folder, logs.without_columns(canonical, folder / "events.csv", ["item_id", "category"]),
                recommend=SHORT_TEST)


def test_drivers_without_prices_leave_price_features_out_and_say_so(without_prices):
    _ok(without_prices, DRIVERS, RECOMMEND, ANOMALY)
    page = without_prices["pages"][DRIVERS]
    assert ("Left out of the models on this log: log_price , price_mean (the log has no price column)."
            in page)
    assert ("Not available on this log. The order-value model needs the column price; your log has columns "
            "user_id, session_id, event_time, event_type, item_id, category, device.") in page
    metrics = _metrics(without_prices, DRIVERS)
    assert {"sessions_cart_model", "sessions_checkout_model", "sessions_purchase_model", "logistic_auc",
            "svm_objective_rel_diff"} <= set(metrics)
    assert "order_value_r2" not in metrics and NOT_APPLICABLE not in metrics
    # the rest runs as usual: recommendations need items, not prices
    assert _metrics(without_prices, RECOMMEND)["ndcg_als"]["value"] is not None


def test_recommendations_without_item_ids_show_one_card_and_the_index_says_not_applicable(without_items):
    _ok(without_items, DRIVERS, RECOMMEND, ANOMALY)  # exit 0: the runner counts the notebook as run
    reason = ("The recommendation study needs the column item_id; your log has columns user_id, session_id, "
              "event_time, event_type, price, device.")
    assert _metrics(without_items, RECOMMEND) == {NOT_APPLICABLE: {
        "name": NOT_APPLICABLE, "value": reason, "unit": None, "label": "Not applicable", "ci": None}}
    page = without_items["pages"][RECOMMEND]
    assert f"Not applicable to this log. {reason}" in page
    # the report ends at the card: no section of the study that did not run
    assert page.rstrip().endswith("The rest of this study is skipped; the other notebooks run as usual.")
    assert "NDCG" not in page
    index = without_items["pages"]["index"]
    # the card: from its title to its notebook's file name, which closes the card's details
    row = index[index.index("Recommendations: which items"):index.index("03_als_recommendations.ipynb")]
    assert f"Not applicable to this log. {reason}" in row and " ok " not in row


def test_other_studies_without_item_ids_name_the_features_they_left_out(without_items):
    assert NOT_APPLICABLE not in _metrics(without_items, DRIVERS)
    assert "Left out of the models on this log: distinct_items (the log has no item_id column); " \
           "distinct_categories (the log has no category column)." in without_items["pages"][DRIVERS]
    assert "Left out of the behavioural features on this log: distinct_items , top_item_purchase_share (the log " \
           "has no item_id column); distinct_categories (the log has no category column)." \
           in without_items["pages"][ANOMALY]
    # notebook 04 ran its whole study on the remaining features, not a "not applicable" card
    anomaly = _metrics(without_items, ANOMALY)
    assert NOT_APPLICABLE not in anomaly and {"flagged_users", "broken_days"} <= set(anomaly)


@pytest.mark.parametrize("builder, fmt, has_prices", [(logs.rees46_csv, "rees46", True),
                                                       (logs.retailrocket_csv, "retailrocket", False)])
def test_logs_without_checkout_model_cart_then_purchase_given_cart(tmp_path, builder, fmt, has_prices):
    run = _run(tmp_path, builder(tmp_path / "events.csv", n_users=300), notebooks=("02", "04"),
               data={"format": fmt})
    _ok(run, DRIVERS, ANOMALY)
    metrics = _metrics(run, DRIVERS)
    assert {"sessions_cart_model", "sessions_purchase_model"} <= set(metrics)
    assert "sessions_checkout_model" not in metrics
    page = run["pages"][DRIVERS]
    assert ("order_value_r2" in metrics) is has_prices
    assert ("the log has no price column" in page) is not has_prices


def test_a_clickstream_without_purchases_or_items_gets_two_cards(tmp_path):
    source = logs.clickstream_csv(tmp_path / "events.csv", n_users=200)
    steps = [{"name": e, "events": [e]} for e in ("product", "add_to_cart", "payment_done")]
    run = _run(tmp_path, source, notebooks=("02", "03"), funnel={"steps": steps},
               data={"format": "custom", "columns": {"event_type": "event", "event_time": "timestamp"},
                     "assume_timezone": "UTC"})
    _ok(run, DRIVERS, RECOMMEND)
    drivers_reason = _metrics(run, DRIVERS)[NOT_APPLICABLE]["value"]
    assert drivers_reason.startswith("The conversion-drivers study needs purchase events; your log has event "
                                     "types add_to_cart, cart, catalog,")
    assert "data.event_names" in drivers_reason
    assert _metrics(run, RECOMMEND)[NOT_APPLICABLE]["value"].startswith(
        "The recommendation study needs the column item_id; your log has columns user_id, session_id,")
    assert run["pages"]["index"].count("Not applicable to this log.") == 2  # one card each
    assert "2 not applicable" in run["pages"]["index"]  # and the run's status line counts them


RETENTION = "06_retention"


@pytest.mark.parametrize("builder, data, has_prices", [(logs.rees46_csv, {"format": "rees46"}, True),
                                                     (logs.retailrocket_csv, {"format": "retailrocket"}, False)])
def test_retention_on_public_formats_reports_what_the_log_supports(tmp_path, builder, data, has_prices):
    source = builder(tmp_path / "events.csv", n_users=300)
    run = _run(tmp_path / "default", source, notebooks=("06",), data=data)
    _ok(run, RETENTION)
    metrics = _metrics(run, RETENTION)
    # a 28-day log cannot say who comes back within the default 30 days, and says how far it can
    assert metrics["return_within_share"]["value"].startswith(
        "not estimable: fewer than 30 visitors were watched 30 days (the log spans 28 days); set "
        "retention.return_within to at most")
    assert metrics["customers"]["value"] > 50
    value = metrics["new_customer_value"]["value"]
    if has_prices:  # a value, or the reason the model could not be fitted on 300 users
        assert isinstance(value, float) or value.startswith("not estimated: the repeat-order model could not be "
                                                            "fitted on these ")
    else:
        assert value.startswith("not estimated: the log has no prices")
    assert "in progress" in run["pages"][RETENTION]
    shorter = _run(tmp_path / "shorter", source, notebooks=("06",), data=data, retention={"return_within": "7D"})
    _ok(shorter, RETENTION)
    share = _metrics(shorter, RETENTION)["return_within_share"]
    assert 0 < share["ci"][0] < share["value"] < share["ci"][1] < 1


def test_retention_on_a_clickstream_without_purchases_keeps_the_return_figures(tmp_path):
    source = logs.clickstream_csv(tmp_path / "events.csv", n_users=200)
    steps = [{"name": e, "events": [e]} for e in ("product", "add_to_cart", "payment_done")]
    run = _run(tmp_path, source, notebooks=("06",), funnel={"steps": steps},
               data={"format": "custom", "columns": {"event_type": "event", "event_time": "timestamp"},
                     "assume_timezone": "UTC"})
    _ok(run, RETENTION)
    metrics = _metrics(run, RETENTION)
    assert isinstance(metrics["return_within_share"]["value"], float)  # a 60-day log: 30 days are watched
    assert metrics["customers"]["value"] == 0
    page = run["pages"][RETENTION]
    assert "No orders in the log, so no repurchase" in page and "data.event_names" in page
    assert "Customer value not estimated" not in page  # said once, by the line on orders
