"""The retention study in one call: :func:`run` returns a :class:`RetentionResults`."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..eventlog import EventLog
from ..params import RetentionParams
from ..schema import COLUMNS, US_PER_DAY
from ..study import Metric, StudyResults
from ..text import escape_md, money, p_equals, pct, pct_ci
from . import activity, clv
from .cohorts import average_curve, cohort_matrix
from .lifecycle import lifecycle_table
from .survival import SurvivalComparison, compare, group_labels, kaplan_meier

MIN_AT_RISK = 30
"""Fewest units still watched at a time for a survival figure to be reported there."""
MIN_CUSTOMERS = 30
"""Fewest customers (and repeat customers, for the spend model) to fit a customer-value model."""
LOOSE_FACTOR = 1e4
"""A fitted parameter whose 95% interval spans more than this factor is said to be loosely pinned down."""
VALUE_DRAWS = 2000
"""Parameter draws behind the customer-value intervals."""


@dataclass
class CustomerValue:
    """The customer-value models and their checks (see :mod:`funnelkit.retention.clv`).

    Attributes
    ----------
    summary : DataFrame
        :func:`activity.customer_summary` at the end of the data (every customer).
    purchases : BetaGeo
        BG/NBD of repeat orders, fitted on every customer (time in days).
    spend : GammaGamma or None
        Gamma-Gamma of order value on the repeat customers; None without prices or with too few.
    calibration : BetaGeo
        The same BG/NBD fitted on the calibration period only (before ``cut``).
    holdout : DataFrame
        :func:`clv.holdout_calibration`: predicted against actual orders after ``cut`` by frequency group.
    holdout_totals : dict
        ``actual`` and ``predicted`` repeat orders after ``cut`` over every calibration customer.
    cut : Timestamp
        Start of the holdout period.
    horizon_days : float
    new_purchases, new_value : tuple
        (estimate, ci_low, ci_high): a new customer's expected repeat orders over the horizon, and
        their expected value (repeat orders × expected spend; NaNs without ``spend``).
    skipped : str or None
        Why a model was not fitted (too few customers, no prices), for the report.
    notes : list of str
        Fits whose optimum the data cannot pin down (:class:`clv.BoundaryWarning`), in words for the report.
    """

    summary: pd.DataFrame
    purchases: "clv.BetaGeo | None"
    spend: "clv.GammaGamma | None"
    calibration: "clv.BetaGeo | None"
    holdout: pd.DataFrame | None
    holdout_totals: dict | None
    cut: pd.Timestamp
    horizon_days: float
    new_purchases: tuple
    new_value: tuple
    skipped: str | None
    notes: list[str] = field(default_factory=list)


@dataclass
class RetentionResults(StudyResults):
    """Everything the retention study found; built by :func:`run`.

    Attributes
    ----------
    spec : RetentionParams
    currency : str
    data_start, data_end : Timestamp
        First and last event of the log (UTC): what every period and every censoring is measured against.
    cohorts : DataFrame
        :func:`cohorts.cohort_matrix` (in-progress cells have no share).
    cohort_curve : DataFrame
        :func:`cohorts.average_curve`: the pooled share active k periods later, finished cells only.
    lifecycle : DataFrame
        :func:`lifecycle.lifecycle_table`.
    timeline : DataFrame
        :func:`activity.user_timeline`: one row per user (first two visits and orders).
    returns : SurvivalComparison
        Time from the first visit to the next one, by ``spec.segment`` (one curve without).
    return_curve : SurvivalCurve
        The same over every user.
    repurchase : SurvivalCurve
        Time from a customer's first order to their next.
    value : CustomerValue
    """

    spec: RetentionParams
    currency: str
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    cohorts: pd.DataFrame
    cohort_curve: pd.DataFrame
    lifecycle: pd.DataFrame
    timeline: pd.DataFrame
    returns: SurvivalComparison
    return_curve: object
    repurchase: object
    value: CustomerValue

    # ------------------------------------------------------------------ figures
    @property
    def return_within_days(self) -> float:
        return self.spec.return_within.total_seconds() / 86400

    def returned_within(self) -> tuple[float, float, float]:
        """Share of new visitors back within ``spec.return_within`` (1 - S(t)) with its 95% interval; NaNs when
        fewer than :data:`MIN_AT_RISK` visitors were watched that long."""
        s, low, high = self.return_curve.at(self.return_within_days, MIN_AT_RISK)
        return (1 - s, 1 - high, 1 - low)

    def metrics(self) -> list[Metric]:
        """Return share, median time to a second order, a new customer's expected value, and counts."""
        days = self.return_within_days
        share, low, high = self.returned_within()
        label = f"New visitors who come back within {days:g} days"
        out = [Metric("return_within_share", None if np.isnan(share) else float(share), "share of new visitors",
                      label, None if np.isnan(share) else (float(low), float(high)), headline=True)
               if not np.isnan(share) else
               Metric("return_within_share", f"not estimable: {self._too_short()}", label=label, headline=True)]
        median, m_low, m_high = self.repurchase.median()
        if np.isnan(median):
            out.append(Metric("median_days_to_second_order", "not reached", label="Median time from a first order "
                              "to the next (fewer than half of the customers ordered again while watched)",
                              headline=True))
        else:
            ci = None if np.isnan(m_low) or np.isnan(m_high) else (m_low, m_high)
            out.append(Metric("median_days_to_second_order", median, "days",
                              "Median time from a first order to the next", ci, headline=True))
        value = self.value
        horizon = value.horizon_days
        if value.purchases is not None:
            est, low, high = value.new_purchases
            out.append(Metric("new_customer_repeat_orders", est, "orders",
                              f"Expected repeat orders of a new customer within {horizon:g} days", _ci(low, high)))
        if not np.isnan(value.new_value[0]):
            est, low, high = value.new_value
            out.append(Metric("new_customer_value", est, self.currency,
                              f"Expected repeat-order value of a new customer within {horizon:g} days",
                              _ci(low, high), headline=True))
        elif value.skipped:
            out.append(Metric("new_customer_value", f"not estimated: {value.skipped}",
                              label=f"Expected repeat-order value of a new customer within {horizon:g} days",
                              headline=True))
        if value.holdout_totals is not None:
            totals = value.holdout_totals
            out.append(Metric("holdout_orders_actual", totals["actual"], "orders",
                              "Repeat orders in the holdout period (actual)"))
            out.append(Metric("holdout_orders_predicted", totals["predicted"], "orders",
                              "Repeat orders in the holdout period (predicted by the calibration-period fit)"))
        if not np.isnan(self.returns.pvalue):
            out.append(Metric("return_logrank_pvalue", self.returns.pvalue, None,
                              f"Log-rank test: time to return differs by {self.spec.segment}"))
        out += [Metric("users", int(len(self.timeline)), "users", "Users in the log"),
                Metric("customers", int(self.repurchase.n), "customers", "Users with at least one order")]
        return out

    def customer_values(self) -> pd.DataFrame:
        """One row per customer (real ids): their history at the end of the data (frequency, recency and T in
        days, mean repeat-order value), the probability they are still active, and their expected repeat orders
        and value (with the spend model) over ``spec.horizon``; most valuable first. Empty without a model."""
        value = self.value
        summary = value.summary
        if value.purchases is None:
            return summary.iloc[0:0]
        args = (summary["frequency"], summary["recency"], summary["T"])
        out = summary.drop(columns=["holdout_frequency"]).assign(
            probability_active=value.purchases.probability_alive(*args),
            expected_orders=value.purchases.conditional_expected_purchases(value.horizon_days, *args))
        if value.spend is not None:
            # a customer whose repeat orders have no price is valued at the population's spend (as with none)
            known = summary["monetary_value"].notna()
            spend = value.spend.conditional_expected_spend(summary["frequency"].where(known, 0),
                                                           summary["monetary_value"].fillna(0.0))
            out["expected_value"] = out["expected_orders"] * np.asarray(spend, dtype=float)
            return out.sort_values("expected_value", ascending=False, ignore_index=True)
        return out.sort_values("expected_orders", ascending=False, ignore_index=True)

    def _too_short(self) -> str:
        """Why the return share is not estimable, and the longest horizon that is."""
        days = self.durations_watched()
        longest = float(np.sort(days)[-MIN_AT_RISK]) if len(days) >= MIN_AT_RISK else 0.0
        hint = (f"; set retention.return_within to at most {int(longest)} days" if longest >= 1 else "")
        return (f"fewer than {MIN_AT_RISK} visitors were watched {self.return_within_days:g} days (the log spans "
                f"{self.span_days:.0f} days){hint}")

    def durations_watched(self) -> np.ndarray:
        """Each visitor's time watched without returning or until their return (days): the return curve's data."""
        return self.return_curve.durations

    @property
    def span_days(self) -> float:
        return (self.data_end - self.data_start).total_seconds() / 86400

    def headline(self) -> str:
        """The findings in plain language (Markdown), headline first."""
        lines = []
        days = self.return_within_days
        share, low, high = self.returned_within()
        if np.isnan(share):
            lines.append(f"- **Coming back** within {days:g} days cannot be estimated: {self._too_short()}.")
        else:
            lines.append(f"- **{pct_ci(share, low, high)} of new visitors come back within {days:g} days** "
                         f"(a later visit; Kaplan–Meier, so visitors who arrived late count only for as long as "
                         f"they were watched).")
        median, m_low, m_high = self.repurchase.median()
        customers = self.repurchase.n
        if customers == 0:
            lines.append("- **No orders** in the log, so no repurchase or customer value: they need `purchase` events "
                         "(map your log's order event to it with `data.event_names`, e.g. "
                         "`{payment_done: purchase}`).")
        elif np.isnan(median):
            s, _, _ = self.repurchase.at(min(self.repurchase.max_follow_up, days), 1)
            watched = min(self.repurchase.max_follow_up, days)
            lines.append(f"- **Fewer than half of the {customers:,} customers order again while watched**: the "
                         f"median time to a second order is not reached"
                         + ("" if np.isnan(s) else f" ({pct(1 - s)} ordered again within {watched:.0f} days)")
                         + ".")
        else:
            interval = "" if np.isnan(m_low) or np.isnan(m_high) else f" (95% CI {m_low:.0f}–{m_high:.0f})"
            lines.append(f"- **Half of the customers order again within {median:.0f} days**{interval}.")
        value = self.value
        if not np.isnan(value.new_value[0]):
            est, low, high = value.new_value
            currency = self.currency
            interval = ("no interval: the fit gave no usable standard errors" if np.isnan(low) else
                        f"95% CI {money(low, currency, markdown=True)}–{money(high, currency, markdown=True)}")
            lines.append(f"- **A new customer is worth {money(est, currency, markdown=True)} in repeat orders over "
                         f"the {value.horizon_days:g} days after their first** ({interval}; "
                         f"{value.new_purchases[0]:.2f} repeat orders expected; BG/NBD × Gamma-Gamma).")
        elif value.skipped and customers > 0:  # with no orders at all the line above said it
            lines.append(f"- **Customer value not estimated**: {escape_md(value.skipped)}.")
        if value.holdout_totals is not None:
            totals = value.holdout_totals
            lines.append(f"- Checked on the last {pct(self.spec.holdout_share, 0)} of the log held out: "
                         f"{totals['predicted']:,.0f} repeat orders predicted, {totals['actual']:,} happened.")
        if not np.isnan(self.returns.pvalue) and self.spec.segment:
            verdict = "differs" if self.returns.pvalue < 0.05 else "does not differ detectably"
            lines.append(f"- Time to return {verdict} by {escape_md(self.spec.segment)} "
                         f"(log-rank {p_equals(self.returns.pvalue)}).")
        in_progress = int(self.cohorts["in_progress"].sum()) if len(self.cohorts) else 0
        if in_progress:
            lines.append(f"- {in_progress} cohort cells are still in progress (their period ends after the data "
                         f"does): shown hatched, with no rate, rather than as a drop.")
        return "\n".join(lines)


def _ci(low: float, high: float) -> tuple | None:
    return None if np.isnan(low) or np.isnan(high) else (float(low), float(high))


def _days(us) -> np.ndarray:
    return np.asarray(us, dtype="float64") / US_PER_DAY


def return_durations(timeline: pd.DataFrame, data_end: pd.Timestamp, start: str, event: str):
    """(days, observed) from ``start`` to ``event`` per row with a ``start``, censored at ``data_end``."""
    rows = timeline[timeline[start].notna()]
    end_us = data_end.value // 1000
    observed = rows[event].notna().to_numpy()
    stop = np.where(observed, rows[event].fillna(0).to_numpy("int64"), end_us)
    return _days(stop - rows[start].to_numpy("int64")), observed, rows


def _with_params(model, theta: np.ndarray):
    """A copy of fitted ``model`` holding parameters ``theta`` (for predictions under drawn parameters)."""
    other = type(model)()
    other.params_ = pd.Series(theta, index=model.params_.index)
    return other


def _value_draws(model, spend, horizon: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A new customer's expected repeat orders and value under parameters drawn from the fits' asymptotic
    normal distributions (draws outside the parameter space are dropped)."""
    def draws(fitted):
        covariance = fitted.cov_params_.to_numpy()
        if not np.isfinite(covariance).all() or np.linalg.eigvalsh(covariance).min() < 0:
            return np.empty((0, len(fitted.params_)))  # no usable standard errors: no interval
        values = rng.multivariate_normal(fitted.params_.to_numpy(), covariance, VALUE_DRAWS, check_valid="ignore",
                                         method="eigh")
        return values[(values > 0).all(axis=1)]

    purchases = np.array([_with_params(model, theta).expected_purchases_new(horizon) for theta in draws(model)])
    purchases = purchases[np.isfinite(purchases)]
    if spend is None:
        return purchases, np.array([])
    thetas = draws(spend)
    thetas = thetas[thetas[:, list(spend.params_.index).index("q")] > 1]  # a finite mean spend
    spends = np.array([_with_params(spend, theta).expected_spend_new() for theta in thetas])
    spends = spends[np.isfinite(spends)]
    n = min(len(purchases), len(spends))
    return purchases, purchases[:n] * spends[:n]


def pooled_from(frequency: pd.Series, min_customers: int = MIN_CUSTOMERS) -> int:
    """The calibration frequency from which the holdout check pools customers: the first with fewer than
    ``min_customers`` customers (a group of one or two customers says nothing), at least 1, at most 7."""
    counts = frequency.value_counts()
    for group in range(1, 7):
        if counts.get(group, 0) < min_customers:
            return group
    return 7


def _estimate_with_interval(estimate: float, draws: np.ndarray) -> tuple:
    """(estimate, 2.5th, 97.5th percentile of the draws); NaN bounds with fewer than 100 usable draws."""
    if len(draws) < 100 or not np.isfinite(estimate):
        return (float(estimate), np.nan, np.nan)
    low, high = np.quantile(draws, [0.025, 0.975])
    return (float(estimate), float(low), float(high))


def _fit(model, *columns, what: str, notes: list[str], consequence: str = ""):
    """``model.fit(*columns)``, or the reason it could not be fitted (the data may not identify it). A fit on a
    boundary the data cannot resolve is kept, and said in ``notes`` (``what`` names the fit, ``consequence``
    what the reader loses) rather than printed as a warning into the report."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", clv.BoundaryWarning)
        try:
            fitted = model.fit(*columns)
        except DataError as error:
            return None, str(error)
    on_boundary = False
    for warning in caught:
        if issubclass(warning.category, clv.BoundaryWarning):
            on_boundary = True
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    params = fitted.params_
    estimates = ", ".join(f"{name} = {value:.3g}" for name, value in params.items())
    if on_boundary:
        notes.append(f"{what} sits where the data cannot tell nearby parameters apart ({estimates}"
                     f"{_dropout_in_words(params)}): its parameters have no standard errors{consequence}.")
        return fitted, None
    table = fitted.summary()
    loose = table.index[(table["ci_upper"] / table["ci_lower"]).to_numpy() > LOOSE_FACTOR].tolist()
    if loose:
        notes.append(f"{what}: the data pin down {', '.join(loose)} only loosely (95% intervals spanning more than "
                     f"a factor of {LOOSE_FACTOR:,.0f}; {estimates}{_dropout_in_words(params)}).")
    return fitted, None


def _dropout_in_words(params: pd.Series) -> str:
    """What BG/NBD's dropout parameters say when they run to extremes (a clause starting with "; ", or "")."""
    a, b = params.get("a"), params.get("b")
    if a is None or b is None:
        return ""
    if min(a, b) > 1e4:
        return (f"; a very large a and b mean every customer has about the same chance, {a / (a + b):.0%}, "
                "to stop after an order")
    if a / (a + b) > 0.99:
        return "; a much larger a than b means nearly every customer stops after their first repeat order"
    return ""


def customer_value(events: EventLog, spec: RetentionParams, data_start: pd.Timestamp, data_end: pd.Timestamp,
                   has_price: bool, seed: int = 0) -> CustomerValue:
    """Fit BG/NBD (and Gamma-Gamma with prices) on every customer; check a calibration-period fit on the holdout."""
    horizon = spec.horizon.total_seconds() / 86400
    everything = data_end + pd.Timedelta(microseconds=1)
    summary = activity.customer_summary(events, everything)
    cut = data_start + (data_end - data_start) * (1 - spec.holdout_share)
    nan3 = (np.nan, np.nan, np.nan)
    repeaters = int((summary["frequency"] > 0).sum())
    if len(summary) < MIN_CUSTOMERS or repeaters == 0:
        reason = (f"{len(summary):,} customers, {repeaters:,} of them with a repeat order (at least "
                  f"{MIN_CUSTOMERS} customers and one repeat order are needed)")
        return CustomerValue(summary, None, None, None, None, None, cut, horizon, nan3, nan3, reason)
    notes: list[str] = []
    purchases, failure = _fit(clv.BetaGeo(), summary["frequency"], summary["recency"], summary["T"],
                              what="The repeat-order model (BG/NBD)", notes=notes,
                              consequence=", so the expected orders and value have no interval")
    if purchases is None:
        # the headline says it in words; the optimiser's stopping point is for the section's note
        no_prices = "" if has_price else "the log has no prices, and "
        reason = (f"{no_prices}the repeat-order model could not be fitted on these {len(summary):,} customers "
                  f"({repeaters:,} with a repeat order); why is said under “What a customer is worth”")
        return CustomerValue(summary, None, None, None, None, None, cut, horizon, nan3, nan3, reason,
                             [f"Why the repeat-order model was not fitted: {failure}."])
    spend, skipped = None, None
    with_value = summary[(summary["frequency"] > 0) & summary["monetary_value"].notna()]
    if not has_price:
        skipped = "the log has no prices"
    elif len(with_value) < MIN_CUSTOMERS:
        skipped = f"only {len(with_value):,} repeat customers with order values (at least {MIN_CUSTOMERS} needed)"
    else:
        spend, failure = _fit(clv.GammaGamma(), with_value["frequency"], with_value["monetary_value"],
                              what="The order-value model (Gamma-Gamma)", notes=notes,
                              consequence=", so the expected value has no interval")
        if spend is None:
            skipped = f"the order-value model could not be fitted: {failure}"
        elif spend.params_["q"] <= 1:
            skipped, spend = "the spend model has no finite mean (q ≤ 1): order values are too heavy-tailed", None
    rng = np.random.default_rng(seed)
    purchase_draws, value_draws = _value_draws(purchases, spend, horizon, rng)
    new_purchases = _estimate_with_interval(purchases.expected_purchases_new(horizon), purchase_draws)
    new_value = nan3
    if spend is not None:
        new_value = _estimate_with_interval(clv.new_customer_value(purchases, spend, horizon), value_draws)

    calibration = holdout = totals = None
    early = activity.customer_summary(events, cut)
    if len(early) >= MIN_CUSTOMERS and (early["frequency"] > 0).any():
        calibration, failure = _fit(clv.BetaGeo(), early["frequency"], early["recency"], early["T"],
                                    what=f"The holdout check's fit (on the data before {cut:%Y-%m-%d})", notes=notes)
    if calibration is not None:
        length = (data_end - cut).total_seconds() / 86400
        holdout = clv.holdout_calibration(calibration, early["frequency"], early["recency"], early["T"],
                                          early["holdout_frequency"], length,
                                          max_group=pooled_from(early["frequency"]))
        predicted = calibration.conditional_expected_purchases(length, early["frequency"], early["recency"],
                                                               early["T"])
        totals = {"actual": int(early["holdout_frequency"].sum()), "predicted": float(np.asarray(predicted, dtype=float).sum()),
                  "customers": int(len(early)), "days": length}
    return CustomerValue(summary, purchases, spend, calibration, holdout, totals, cut, horizon, new_purchases,
                         new_value, skipped, notes)


def run(events: EventLog, spec: RetentionParams, *, currency: str = "", truth=None, seed: int = 0) -> RetentionResults:
    """Run the retention study on ``events``.

    Parameters
    ----------
    events : EventLog
        The event log (needs ``session_id``; ``price`` for customer value).
    spec : RetentionParams
        The ``retention`` params section.
    currency : str
        The data's currency (``data.currency``), for the value figures.
    truth : funnelkit.groundtruth.Planted, optional
        The built-in shop's planted truth: its anomalous accounts (bots, click farm, fake orders) are left
        out, as in the other customer studies.
    seed : int
        Seeds the parameter draws behind the customer-value intervals.

    Returns
    -------
    RetentionResults
    """
    types = activity.require_columns(events, spec.segment)
    if truth is not None:
        events = events.without_users(truth.anomalous_accounts)
    (start_us,), = [tuple(r) for r in events.rows(f"SELECT min(epoch_us({COLUMNS.event_time})) FROM {events.table}")]
    data_start = pd.Timestamp(int(start_us), unit="us", tz="UTC")
    data_end = events.data_end

    sizes, active = activity.cohort_counts(events, spec.period, spec.return_event)
    cohorts = cohort_matrix(sizes, active, period=spec.period, periods=spec.periods, data_start=data_start,
                            data_end=data_end)
    lifecycle = lifecycle_table(activity.activity_patterns(events, spec.period), period=spec.period,
                                data_end=data_end)
    timeline = activity.user_timeline(events, spec.segment)
    days, observed, rows = return_durations(timeline, data_end, "first_visit", "second_visit")
    groups = (group_labels(rows["segment"], spec.min_cohort_users) if spec.segment
              else pd.Series("all", index=rows.index))
    returns = compare(days, observed, groups, spec.segment)
    return_curve = kaplan_meier(days, observed)
    order_days, order_observed, _ = return_durations(timeline, data_end, "first_order", "second_order")
    repurchase = kaplan_meier(order_days, order_observed, label="customers")
    value = customer_value(events, spec, data_start, data_end, COLUMNS.price in types, seed)
    return RetentionResults(spec, currency, data_start, data_end, cohorts, average_curve(cohorts), lifecycle,
                            timeline, returns, return_curve, repurchase, value)
