"""What the worst step could be worth: the step lifted to its best segment's rate, with an interval.

"Revenue lost at a step" priced every unit lost there as if it would then have
bought like those who passed: an upper bound that on the built-in shop came to
several times the revenue the shop took. The figure here asks a question a shop
could act on: if the step converted for everyone as well as it already does for
its best segment (a device, a channel, returning customers), how many more units
would convert, and what would they spend?
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..schema import COLUMNS
from .result import MISSING_SEGMENT, FunnelResult

Z95 = NormalDist().inv_cdf(0.975)


def lift_estimate(best_units: int, best_passed: int, other_units: int, other_passed: int, converted: int,
                  revenue_mean: float = float("nan"), revenue_std: float = float("nan"),
                  revenue_units: int = 0, z: float = Z95) -> dict:
    """Extra conversions and revenue if the other units passed a step at the best segment's rate.

    Parameters
    ----------
    best_units, best_passed : int
        Units of the best segment at the step before, and how many of them passed the step.
    other_units, other_passed : int
        The same for every other unit (the rest of the segment column).
    converted : int
        Units who passed the step (best and others) and went on to the last step.
    revenue_mean, revenue_std : float
        Mean and sample standard deviation of a converting unit's revenue; NaN: no money figure.
    revenue_units : int
        Converting units the revenue mean is taken over.
    z : float
        Normal quantile of the interval (1.96 for 95%).

    Returns
    -------
    dict
        ``best_rate`` = best_passed / best_units, ``other_rate`` likewise;
        ``extra_passed`` = other_units × (best_rate − other_rate), the units
        who would pass the step; ``downstream`` = converted / (best_passed +
        other_passed); ``extra_conversions`` = extra_passed × downstream with
        ``conversions_se``, ``conversions_ci``; ``extra_revenue`` =
        extra_conversions × revenue_mean with ``revenue_se``, ``revenue_ci``.

    Notes
    -----
    The assumption: the extra units who pass the step then go on to the last
    step at today's downstream rate and spend what converting units spend
    today. The interval is the delta method on three independent estimates:
    the two step rates (binomial), the downstream rate (binomial given the
    units who passed) and the mean revenue (its standard error):

    Var(E) = other_units² (r_b(1−r_b)/best_units + r_o(1−r_o)/other_units),
    Var(P) = d² Var(E) + E² d(1−d)/passed,
    Var(R) = m² Var(P) + P² s²/n_revenue.

    It is conditional on which segment is best: picking the largest of
    several rates favours one that is high by chance, which the interval
    does not cover (only segments with enough units should compete).
    """
    rb, ro = best_passed / best_units, other_passed / other_units
    passed = best_passed + other_passed
    d = converted / passed if passed else float("nan")
    extra = other_units * (rb - ro)
    var_extra = other_units ** 2 * (rb * (1 - rb) / best_units + ro * (1 - ro) / other_units)
    var_d = d * (1 - d) / passed if passed else float("nan")
    conversions = extra * d
    var_conversions = d ** 2 * var_extra + extra ** 2 * var_d
    revenue = conversions * revenue_mean
    var_mean = revenue_std ** 2 / revenue_units if revenue_units > 1 else float("nan")
    var_revenue = revenue_mean ** 2 * var_conversions + conversions ** 2 * var_mean
    se_c, se_r = float(np.sqrt(var_conversions)), float(np.sqrt(var_revenue))
    return {
        "best_rate": rb, "other_rate": ro, "extra_passed": extra, "downstream": d,
        "extra_conversions": conversions, "conversions_se": se_c,
        "conversions_ci": (conversions - z * se_c, conversions + z * se_c),
        "extra_revenue": revenue, "revenue_se": se_r, "revenue_ci": (revenue - z * se_r, revenue + z * se_r),
    }


@dataclass(frozen=True)
class StepLift:
    """The outcome of :func:`lift_to_best_segment`; ``reason`` says why a figure is missing.

    Attributes
    ----------
    step, previous : str
        The step lifted and the one before it.
    units, passed, rate : int, int, float
        Units at the previous step, how many passed the step, and the step's conversion.
    segment, value : str or None
        The best segment's column and value (None when there is none).
    best_units, best_rate : int, float
        Its units at the previous step and its rate at the step.
    extra_conversions, conversions_ci : float, tuple
        More units reaching the last step (95% interval).
    extra_revenue, revenue_ci : float, tuple
        Their revenue in the data's currency (95% interval); NaN without prices.
    converted, revenue_per_conversion, converted_revenue : int, float, float
        Units who converted, their mean revenue and its total: what the same units spent.
    reason : str or None
        Why there is no lift (no segment columns, none large enough, none better).
    revenue_reason : str or None
        Why there is no money figure (no prices in the log).
    """

    step: str
    previous: str
    units: int
    passed: int
    rate: float
    converted: int
    segment: str | None = None
    value: str | None = None
    best_units: int = 0
    best_rate: float = float("nan")
    extra_conversions: float = float("nan")
    conversions_ci: tuple = (float("nan"), float("nan"))
    extra_revenue: float = float("nan")
    revenue_ci: tuple = (float("nan"), float("nan"))
    revenue_per_conversion: float = float("nan")
    converted_revenue: float = float("nan")
    reason: str | None = None
    revenue_reason: str | None = None


def lift_to_best_segment(result: FunnelResult, columns: list[str], step: str | int | None = None,
                         min_units: int = 30, unit: str = "units") -> StepLift:
    """Extra conversions and revenue if ``step`` converted for every unit as for its best segment.

    Parameters
    ----------
    result : FunnelResult
        The funnel.
    columns : list of str
        Segment columns that compete (``funnel.breakdowns``).
    step : str or int, optional
        A step after the first; default the worst step (:meth:`FunnelResult.worst_step`).
    min_units : int
        A segment value competes only with at least this many units at the previous step
        (``funnel.min_segment_units``); ``(missing)`` never competes.
    unit : str
        Plural name of the unit, for the reasons in words.

    Returns
    -------
    StepLift
        The best segment is the (column, value) with the highest conversion at
        ``step`` among those that compete; every other unit is lifted to its
        rate (:func:`lift_estimate`: the assumption and the interval are
        stated there). The revenue is NaN with ``revenue_reason`` when the log
        has no prices; the whole lift is NaN with ``reason`` when no segment
        competes or none converts better than the rest.
    """
    k = result.step_index(step if step is not None else str(result.worst_step()["step"]))
    if k == 0:
        raise ValueError("a step after the first is lifted: the first step has no conversion")
    steps = result.steps
    prev, name = result.step_names[k - 1], result.step_names[k]
    units, passed = int(steps["entrants"].iloc[k - 1]), int(steps["entrants"].iloc[k])
    converted = int(steps["entrants"].iloc[-1])
    revenue = result.conversion_revenue()
    no_price = COLUMNS.price not in result.events.columns
    base = dict(step=name, previous=prev, units=units, passed=passed, converted=converted,
                rate=passed / units if units else float("nan"), revenue_per_conversion=revenue["mean"],
                converted_revenue=revenue["total"],
                revenue_reason=("the log has no prices" if no_price else
                                None if revenue["units"] else f"no converting {unit} has a price"))
    if not columns:
        return StepLift(**base, reason="the log has no segment columns (funnel.breakdowns is empty), "
                                       "so there is no best segment to compare with")
    best = _best_segment(result, columns, k, min_units)
    if best is None:
        return StepLift(**base, reason=f"no segment value has {min_units:,} {unit} or more at {prev}")
    column, value, best_units, best_passed = best
    if best_units == units or best_passed / best_units <= (passed - best_passed) / (units - best_units):
        return StepLift(**base, segment=column, value=value, best_units=best_units,
                        best_rate=best_passed / best_units,
                        reason=f"no segment converts better at {name} than the other {unit}")
    estimate = lift_estimate(best_units, best_passed, units - best_units, passed - best_passed, converted,
                             revenue["mean"], revenue["std"], revenue["units"])
    return StepLift(
        **base, segment=column, value=value, best_units=best_units, best_rate=estimate["best_rate"],
        extra_conversions=estimate["extra_conversions"], conversions_ci=estimate["conversions_ci"],
        extra_revenue=estimate["extra_revenue"], revenue_ci=estimate["revenue_ci"],
    )


def _best_segment(result: FunnelResult, columns: list[str], k: int, min_units: int):
    """(column, value, units at step k-1, units at step k) of the highest rate at step k, or None.

    Values are taken unpooled (a pooled "other" row mixes values) and must have at least
    ``min_units`` units at step k-1; ties go to the larger value, then to the first column.
    A unit's segment is read at its first step whatever ``funnel.attribution`` says: read at its
    deepest step (``last_step``) it would depend on how far the unit went, biasing the step rates.
    """
    prev, name = (f"reached_{s}" for s in result.step_names[k - 1:k + 1])
    best, best_key = None, None
    for column in columns:
        table = result.breakdown(column, attribution="first_step").table
        table = table[(table["value"] != MISSING_SEGMENT) & (table[prev] >= max(min_units, 1))]
        for value, n, x in zip(table["value"], table[prev], table[name]):
            key = (x / n, n)
            if best_key is None or key > best_key:
                best, best_key = (column, str(value), int(n), int(x)), key
    return best
