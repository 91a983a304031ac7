"""KPI anomaly detection: per-period funnel counts and four detectors that flag unusual periods.

:func:`kpi_series` turns a funnel's counts by period of entry
(:meth:`FunnelResult.by_period`, computed in the engine, DuckDB or Spark) into
one row per hour or day of traffic and step conversions; the detectors
take one column of it and say which periods are unusual:

``3-sigma`` (:func:`three_sigma`)
    Distance from the mean in standard deviations. The textbook rule; the
    mean and the standard deviation are pulled by the outliers themselves
    (masking) and it knows nothing of seasonality or of sample size.
``robust z`` (:func:`robust_z`)
    Distance from the median in scaled MADs: not masked by a few outliers.
``STL`` (:func:`stl_residual`)
    Robust z-score of the residual of a seasonal-trend decomposition (STL,
    or MSTL for daily and weekly seasonality together) fitted without the
    anomalies: a seasonal peak is expected, not an anomaly.
``rate test`` (:func:`rate_test`)
    For a conversion rate: the tail probability of the period's count given
    its own number of trials, under a binomial or beta-binomial centred on
    the pooled rate, with a Bonferroni threshold. A rate from 2 trials is
    never an alarm; a small drop over 500 trials can be.

Every detector returns a DataFrame with the index of its input and columns
``value``, ``expected``, ``score`` and ``alarm``; :func:`detect` runs several
on one column of :func:`kpi_series` into a long table and
:func:`score_against_incidents` scores that table against known incident
dates (for instance the simulator's ground truth).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..funnel.result import PERIOD_LENGTH as FUNNEL_PERIODS

if TYPE_CHECKING:  # pragma: no cover
    from ..funnel import FunnelResult

__all__ = [
    "kpi_series", "three_sigma", "robust_z", "stl_residual", "rate_test", "DETECTORS", "detect",
    "score_against_incidents", "STL_PERIODS", "PERIOD_LENGTH",
]

MAD_SCALE = 1.4826
"""MAD × 1.4826 estimates the standard deviation of a normal sample (1 / Φ⁻¹(3/4))."""
STL_MAX_ROUNDS = 200
"""Most refits of :func:`stl_residual` while excluding anomalies."""
MAX_ROUNDS = 50
"""Most re-estimations of ρ in :func:`rate_test` (the set of extreme periods settles in a few)."""
MAX_RHO = 0.999
"""Upper clip of the estimated intra-period correlation of :func:`rate_test`."""
MEAN_AD_SCALE = 1.2533
"""Mean absolute deviation × 1.2533 (√(π/2)) estimates a normal standard deviation; used when the MAD is 0."""

PERIOD_LENGTH = {freq: FUNNEL_PERIODS[freq] for freq in ("hour", "day")}
"""Length of one period of each frequency of :func:`kpi_series` (the funnel's hours and days)."""
STL_PERIODS = {"hour": (24, 168), "day": (7,)}
"""Seasonal periods used by :func:`detect` (in periods): daily and weekly for hours, weekly for days."""

_RESULT_COLUMNS = ["value", "expected", "score", "alarm"]


# --------------------------------------------------------------------------- per-period series

def kpi_series(result: "FunnelResult", freq: Literal["hour", "day"]) -> pd.DataFrame:
    """Traffic and step conversion counts per UTC hour or day of funnel entry.

    Parameters
    ----------
    result : FunnelResult
        A computed funnel (:func:`funnelkit.funnel.run_funnel`); its
        :meth:`~funnelkit.funnel.FunnelResult.by_period` counts (aggregated
        in its engine) are the series.
    freq : {"hour", "day"}
        Period length. A unit belongs to the period (UTC) containing its
        ``entry`` (the time it entered the funnel).

    Returns
    -------
    DataFrame
        One row per period on a complete UTC calendar from the first to the
        last period with an entrant (empty periods included, with zero
        counts), in time order, with columns

        ``period``
            Start of the period (tz-aware UTC Timestamp).
        ``entrants``
            Units that entered the funnel in the period, censored ones
            included (it is traffic, known as soon as the unit arrives).
        ``{s}_from``, for every step *k* ≥ 1 named *s*
            Resolved (not censored) units of the period that reached step
            *k - 1* (depth ≥ *k*).
        ``{s}_reached``
            Resolved units of the period that reached step *k*
            (depth ≥ *k + 1*).
        ``{s}_rate``
            ``{s}_reached / {s}_from``, the step conversion of the period's
            cohort; NaN when ``{s}_from`` is 0.

        Counts are int64. Empty when the funnel has no unit.

    Raises
    ------
    ValueError
        If ``freq`` is not ``"hour"`` or ``"day"``.

    Notes
    -----
    Censored units (window still open at the end of the data, see
    ``funnelkit.funnel``) are left out of the step counts, so the last
    periods' rates are computed on the resolved units only (and are NaN
    when every unit of the period is censored).
    """
    if freq not in PERIOD_LENGTH:
        raise ValueError(f"freq must be 'hour' or 'day', got {freq!r}")
    periods = result.by_period(freq, empty_periods=True)
    frame = pd.DataFrame({"period": periods["period"], "entrants": periods["units"]})
    names = result.step_names
    for previous, name in zip(names, names[1:]):
        trials, reached = periods[f"reached_{previous}"], periods[f"reached_{name}"]
        frame[f"{name}_from"] = trials
        frame[f"{name}_reached"] = reached
        frame[f"{name}_rate"] = (reached / trials.where(trials > 0)).astype(float)
    return frame


# --------------------------------------------------------------------------- detectors

def _frame(values: pd.Series, expected, score) -> pd.DataFrame:
    """value / expected / score columns on the index of ``values``; NaN values get a NaN score."""
    score = np.broadcast_to(np.asarray(score, dtype=float), (len(values),)).copy()
    score[values.isna().to_numpy()] = np.nan
    expected = np.broadcast_to(np.asarray(expected, dtype=float), (len(values),))
    return pd.DataFrame({"value": values.astype(float), "expected": expected, "score": score}, index=values.index)


def _with_alarm(frame: pd.DataFrame, alarm) -> pd.DataFrame:
    frame["alarm"] = np.asarray(alarm, dtype=bool) & frame["score"].notna().to_numpy()
    return frame[_RESULT_COLUMNS]


def three_sigma(values: pd.Series, threshold: float = 3.0) -> pd.DataFrame:
    """The 3-sigma rule: distance from the mean in standard deviations.

    Parameters
    ----------
    values : Series
        The KPI, one value per period; NaN values are ignored (and never alarm).
    threshold : float, default 3.0
        Alarm when ``|score|`` exceeds it.

    Returns
    -------
    DataFrame
        Index of ``values``; ``value``; ``expected`` = the mean x̄ of the
        non-NaN values; ``score`` = z = (x - x̄) / s, with s the sample
        standard deviation (ddof = 1) of the non-NaN values (0 when every
        value equals x̄; NaN with fewer than two values); ``alarm`` =
        ``|z| > threshold``.

    Notes
    -----
    Both x̄ and s include the outliers, which therefore hide themselves
    (masking): with n values no |z| can exceed (n - 1) / √n, and one large
    outlier inflates s so that a second one is no longer flagged.
    """
    values = pd.Series(values, dtype=float)
    clean = values.dropna()
    mean = clean.mean() if len(clean) else np.nan
    sd = clean.std(ddof=1) if len(clean) > 1 else np.nan
    deviation = (values - mean).to_numpy()
    if not sd == sd:  # fewer than two values
        z = np.full(len(values), np.nan)
    elif sd > 0:
        z = deviation / sd
    else:
        z = np.zeros(len(values))
    frame = _frame(values, mean, z)
    return _with_alarm(frame, frame["score"].abs() > threshold)


def _robust_scale(clean: pd.Series, centre: float) -> float:
    """1.4826 × MAD, or 1.2533 × mean absolute deviation from the median when the MAD is 0."""
    deviations = (clean - centre).abs()
    mad = deviations.median()
    if mad > 0:
        return MAD_SCALE * mad
    return MEAN_AD_SCALE * deviations.mean()


def robust_z(values: pd.Series, threshold: float = 3.5) -> pd.DataFrame:
    """Robust z-score: distance from the median in scaled median absolute deviations.

    Parameters
    ----------
    values : Series
        The KPI, one value per period; NaN values are ignored (and never alarm).
    threshold : float, default 3.5
        Alarm when ``|score|`` exceeds it (3.5 is Iglewicz and Hoaglin's
        cut-off for the modified z-score).

    Returns
    -------
    DataFrame
        Index of ``values``; ``value``; ``expected`` = m, the median of the
        non-NaN values; ``score`` = (x - m) / (1.4826 · MAD), MAD =
        median |x - m| (1.4826 · MAD estimates the standard deviation of a
        normal sample); when the MAD is 0 (more than half the values equal),
        the scale is 1.2533 · mean |x - m| instead, and when that is 0 too
        every score is 0; ``alarm`` = ``|score| > threshold``.

    Notes
    -----
    The median and the MAD have a 50% breakdown point: up to half the
    values can be outliers without moving the centre or the scale much, so
    one large outlier does not mask another (unlike :func:`three_sigma`).

    References
    ----------
    B. Iglewicz and D. C. Hoaglin, *How to Detect and Handle Outliers*, ASQC
    Quality Press, 1993.
    """
    values = pd.Series(values, dtype=float)
    clean = values.dropna()
    if clean.empty:
        return _with_alarm(_frame(values, np.nan, np.full(len(values), np.nan)), False)
    centre = float(clean.median())
    scale = _robust_scale(clean, centre)
    deviation = (values - centre).to_numpy()
    score = deviation / scale if scale > 0 else np.zeros(len(values))
    frame = _frame(values, centre, score)
    return _with_alarm(frame, frame["score"].abs() > threshold)


def _seasonal_fit(y: np.ndarray, periods: tuple[int, ...]) -> np.ndarray:
    """Trend + seasonal component(s) of a periodic, non-robust STL (one period) or MSTL (several)."""
    from statsmodels.tsa.seasonal import MSTL, STL

    periodic = 10 * len(y) + 1  # R's s.window = "periodic": a seasonal window longer than the series
    # R's stl evaluates each loess every window/10 points and interpolates between (s.jump, t.jump,
    # l.jump); statsmodels' default of every point costs 4x the time for the same fit to within a
    # thousandth of the residual spread. MSTL shares one setting: the shortest period's, the finer.
    settings = {"seasonal_deg": 0, **_r_jumps(min(periods), periodic)}
    if len(periods) == 1:
        fit = STL(y, period=periods[0], seasonal=periodic, **settings).fit()
    else:
        with warnings.catch_warnings():
            # the lengths were checked by the caller; statsmodels would drop a too-long period with only a warning
            warnings.simplefilter("error", UserWarning)
            fit = MSTL(y, periods=periods, windows=(periodic,) * len(periods), stl_kwargs=settings).fit()
    seasonal = np.asarray(fit.seasonal, dtype=float)
    return np.asarray(fit.trend, dtype=float) + (seasonal.sum(axis=1) if seasonal.ndim == 2 else seasonal)


def _r_jumps(period: int, seasonal_window: int) -> dict[str, int]:
    """R's default loess jumps, ceiling(window / 10), for statsmodels' default trend and low-pass windows."""
    odd = lambda n: n if n % 2 else n + 1  # noqa: E731 - statsmodels makes each window odd the same way
    trend = odd(math.ceil(1.5 * period / (1 - 1.5 / seasonal_window)))
    low_pass = odd(period + 1)
    return {"seasonal_jump": math.ceil(seasonal_window / 10), "trend_jump": math.ceil(trend / 10),
            "low_pass_jump": math.ceil(low_pass / 10)}


def _largest_per_position(candidates: np.ndarray, size: np.ndarray, periods: tuple[int, ...]) -> list[int]:
    """Candidates by decreasing ``size``, keeping at most one per index modulo each period."""
    taken: list[set[int]] = [set() for _ in periods]
    chosen = []
    for i in candidates[np.argsort(-size[candidates], kind="stable")]:
        if any(i % p in seen for p, seen in zip(periods, taken)):
            continue
        chosen.append(int(i))
        for p, seen in zip(periods, taken):
            seen.add(int(i % p))
    return chosen


def _robust_scores(residual: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(r - median) / robust scale, centre and scale from the residuals in ``keep`` (as :func:`robust_z`)."""
    clean = pd.Series(residual[keep])
    centre = float(clean.median())
    scale = _robust_scale(clean, centre)
    return (residual - centre) / scale if scale > 0 else np.zeros(len(residual))


def _long_enough_for_stl(n: int, periods: Sequence[int]) -> bool:
    """Two full cycles of the longest period for STL; MSTL (several periods) needs more than two."""
    longest = max(periods)
    return n >= 2 * longest and (len(periods) == 1 or n > 2 * longest)


def stl_residual(values: pd.Series, periods: Sequence[int], threshold: float = 3.5) -> pd.DataFrame:
    """Robust z-score of the residual of a seasonal-trend decomposition fitted without the anomalies.

    Parameters
    ----------
    values : Series
        The KPI, one value per period of a regular calendar (as from
        :func:`kpi_series`). NaN values are filled by linear interpolation
        (nearest value at the ends) for the fit only; they get a NaN score
        and never alarm.
    periods : sequence of int
        Seasonal periods, in numbers of values: one period fits
        ``statsmodels.tsa.seasonal.STL``, several fit ``MSTL`` (e.g.
        ``(24, 168)`` for hourly data: daily and weekly seasonality).
    threshold : float, default 3.5
        Alarm when ``|score|`` exceeds it.

    Returns
    -------
    DataFrame
        Index of ``values``; ``value``; ``expected`` = trend + seasonal
        component(s) of the final fit (below); ``score`` = robust z-score of
        the residual r = value - expected, (r - median r) / (1.4826 · MAD r)
        with the median and MAD taken over the periods not excluded from the
        fit (1.2533 · mean |r - median r| when that MAD is 0, as in
        :func:`robust_z`); ``alarm`` = ``|score| > threshold``.
        ``attrs["excluded"]`` is the number of periods left out of the fit.

    Raises
    ------
    ValueError
        If no period is given, a period is below 2, the series is shorter
        than two of the longest period, or (several periods) exactly two of
        it: MSTL needs more than two cycles of every period.

    Notes
    -----
    *Fit.* STL/MSTL with periodic seasonal components (R's
    ``s.window = "periodic"``: ``seasonal_deg=0`` and a seasonal window
    longer than the series, so each component is one fixed profile, the
    locally weighted mean of the cycles) and statsmodels' default trend
    window, without STL's robustness weights; each loess is evaluated every
    tenth of its window and interpolated between, as R's ``stl`` does.

    *Robust to the anomalies by exclusion.* An anomaly must not leak into
    the profile (a sale Friday would make every other Friday look low), so
    the fit is repeated without the anomalous periods: starting from the
    fit of all values, each round scores the residuals and adds to the
    excluded set the not-yet-excluded periods with |score| above
    ``threshold``, largest first and at most one per position of each
    seasonal cycle (index modulo each period): an anomaly contaminates the
    profile at its own cycle positions, so a sale Friday is removed before
    the other Fridays it made look low are judged, while the 24 hours of a
    broken day, all at different positions, go in one round. The excluded
    values are replaced by the current fit and the series refitted; this
    repeats until no period is added and the fit has settled (at most 200
    rounds; replacing a value by the fit and iterating is the EM way of
    giving it zero weight). Every period is then scored against the final
    fit, the excluded ones included. Each round is one (M)STL fit, about
    0.1 s for three weeks of hours.

    *Why not STL's own ``robust=True``.* Its bisquare weights are
    re-estimated from residuals that the weighted fit itself shrinks: with
    the few cycles of a short KPI history (three weeks hold three cycles of
    a weekly period) the fit follows two of three values of a cycle
    position and makes the third an outlier. Measured on Gaussian noise
    with daily and weekly seasonality, three weeks hourly, no anomaly: the
    robust MSTL's residual MAD was 0.6 of the noise's standard deviation
    and 30 of 504 hours alarmed at 3.5; this fit: none.

    References
    ----------
    R. B. Cleveland, W. S. Cleveland, J. E. McRae and I. Terpenning, "STL: A
    seasonal-trend decomposition procedure based on loess", *Journal of
    Official Statistics* 6(1), 1990. K. Bandara, R. J. Hyndman and C.
    Bergmeir, "MSTL: A seasonal-trend decomposition algorithm for time
    series with multiple seasonal patterns", 2021, arXiv:2107.13462.
    """
    values = pd.Series(values, dtype=float)
    periods = tuple(int(p) for p in periods)
    if not periods or min(periods) < 2:
        raise ValueError(f"stl_residual needs seasonal periods of at least 2 values, got {periods}")
    longest, n = max(periods), len(values)
    if not _long_enough_for_stl(n, periods):
        raise ValueError(
            f"stl_residual needs at least two full cycles of the longest period ({longest} values"
            f"{', more than ' if len(periods) > 1 else ', at least '}{2 * longest} values); "
            f"the series has {n}"
        )
    if values.notna().sum() == 0:
        return _with_alarm(_frame(values, np.nan, np.full(n, np.nan)), False)
    x = values.reset_index(drop=True).interpolate(limit_direction="both").to_numpy()
    observed = values.notna().to_numpy()
    excluded = np.zeros(n, dtype=bool)
    expected = _seasonal_fit(x, periods)
    settled = False
    for _ in range(STL_MAX_ROUNDS):
        residual = x - expected
        keep = observed & ~excluded
        scores = _robust_scores(residual, keep if keep.any() else observed)
        new = observed & ~excluded & (np.abs(scores) > threshold)
        if new.any():
            excluded[_largest_per_position(np.flatnonzero(new), np.abs(scores), periods)] = True
        elif settled or not excluded.any():
            break
        filled = np.where(excluded, expected, x)
        refit = _seasonal_fit(filled, periods)
        scale = _robust_scale(pd.Series(residual[keep]), float(np.median(residual[keep]))) if keep.any() else 0.0
        settled = bool(np.max(np.abs(refit - expected)) <= 1e-3 * max(scale, 1e-12))
        expected = refit
    else:
        residual = x - expected
        scores = _robust_scores(residual, observed & ~excluded if (observed & ~excluded).any() else observed)
    frame = _frame(values, expected, scores)
    frame = _with_alarm(frame, frame["score"].abs() > threshold)
    frame.attrs["excluded"] = int(excluded.sum())
    return frame


def _intraclass_correlation(k: np.ndarray, n: np.ndarray, p0: float, keep: np.ndarray) -> float:
    """Method-of-moments ρ in Var(K_i) = n_i p0 (1 - p0) (1 + (n_i - 1) ρ), from the periods in ``keep``.

    Solves X²_S = A_S + B_S ρ, X²_S = Σ_S (k_i - n_i p0)² / (p0 (1 - p0)), where A_S + B_S ρ is its
    expectation when p0 = Σ k / Σ n is estimated from every period (see :func:`rate_test`).
    """
    if not 0 < p0 < 1 or keep.sum() < 2:
        return 0.0
    total = n.sum()
    pairs = n * (n - 1)
    ns, ks = n[keep], k[keep]
    spread = (ns ** 2).sum() / total ** 2
    a = (ns * (1 - 2 * ns / total)).sum() + spread * total
    b = (pairs[keep] * (1 - 2 * ns / total)).sum() + spread * pairs.sum()
    if b <= 0:
        return 0.0
    pearson = ((ks - ns * p0) ** 2).sum() / (p0 * (1 - p0))
    return float(np.clip((pearson - a) / b, 0.0, MAX_RHO))


def _log_pvalues(k: np.ndarray, n: np.ndarray, p0: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """log P(K ≤ k) and log P(K ≥ k) under Binomial(n, p0) (ρ = 0) or the beta-binomial of mean p0 and ICC ρ."""
    if rho > 0:
        ab = (1 - rho) / rho
        null, mirror = stats.betabinom(n, p0 * ab, (1 - p0) * ab), stats.betabinom(n, (1 - p0) * ab, p0 * ab)
    else:
        null, mirror = stats.binom(n, p0), stats.binom(n, 1 - p0)
    # P(K >= k) = P(n - K <= n - k): the upper tail as the mirrored lower tail, because scipy's logsf
    # returns NaN far in the beta-binomial's upper tail (and logcdf can exceed 0 by rounding); a NaN
    # would keep an extreme rise out of the periods excluded from the ρ estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        lower, upper = null.logcdf(k), mirror.logcdf(n - k)
    lower = np.where(np.isnan(lower), -np.inf, np.minimum(lower, 0.0))
    upper = np.where(np.isnan(upper), -np.inf, np.minimum(upper, 0.0))
    return lower, upper


def rate_test(reached: pd.Series, trials: pd.Series, *, alpha: float = 0.001, overdispersed: bool = True,
              direction: Literal["drop", "both"] = "drop") -> pd.DataFrame:
    """Rate-aware alarm: is a period's conversion count too extreme for its number of trials?

    Parameters
    ----------
    reached : Series
        Conversions k_i per period (e.g. ``{s}_reached`` of :func:`kpi_series`).
    trials : Series
        Trials n_i per period, same index (e.g. ``{s}_from``). Periods with
        0 (or NaN) trials get NaN and no alarm.
    alpha : float, default 0.001
        Family-wise error rate over the periods (Bonferroni).
    overdispersed : bool, default True
        Use a beta-binomial null (below) instead of the binomial.
    direction : {"drop", "both"}, default "drop"
        ``"drop"``: one-sided, only too few conversions alarm;
        ``"both"``: two-sided.

    Returns
    -------
    DataFrame
        Index of ``reached``; ``value`` = k_i / n_i (the period's rate);
        ``expected`` = p0 = Σ k_i / Σ n_i, the pooled rate of all periods
        with trials; ``score`` = -log10 of the p-value; ``alarm`` =
        p-value < alpha / m, m = the number of periods with trials.
        ``attrs`` holds ``p0``, ``rho`` (the intra-period correlation used, 0
        for the binomial), ``threshold`` (alpha / m) and ``excluded`` (number
        of periods left out of the estimate of ρ).

    Raises
    ------
    ValueError
        For a bad ``direction`` or ``alpha``, or counts with k_i > n_i or k_i < 0.

    Notes
    -----
    *Null distribution.* Given n_i, K_i follows Binomial(n_i, p0) or, when
    ``overdispersed``, the beta-binomial with mean n_i p0 and intra-period
    correlation ρ, i.e. shape parameters a = p0 (1 - ρ) / ρ and
    b = (1 - p0) (1 - ρ) / ρ, whose variance is
    n_i p0 (1 - p0) (1 + (n_i - 1) ρ). The rate of real traffic varies from
    period to period more than a binomial allows (mix of devices, channels,
    campaigns), so with the plain binomial that ordinary variation alarms,
    the more so the larger the periods.

    *p-value.* For a drop P(K ≤ k_i) (``scipy.stats.binom.cdf`` or
    ``scipy.stats.betabinom.cdf``); two-sided
    min(1, 2 min(P(K ≤ k_i), P(K ≥ k_i))). A period with few trials cannot
    reach the threshold (2 trials, 0 conversions at p0 = 0.3: p = 0.49), so
    quiet hours do not alarm.

    *Estimate of ρ* (method of moments). Over a set S of periods, with
    X²_S = Σ_S (k_i - n_i p0)² / (p0 (1 - p0)), N = Σ n_i over all periods,
    D = Σ n_i (n_i - 1) over all periods and Q_S = Σ_S n_i² / N²,

        E[X²_S] = A_S + B_S ρ,
        A_S = Σ_S n_i (1 - 2 n_i / N) + N Q_S,
        B_S = Σ_S n_i (n_i - 1) (1 - 2 n_i / N) + D Q_S

    (exact under the null with p0 estimated from every period), so
    ρ̂ = (X²_S - A_S) / B_S, clipped to [0, 0.999]; ρ̂ = 0 is the binomial.
    Every period enters p0, but S leaves out the periods the test itself
    finds extreme, so that the incident being looked for does not inflate
    ρ̂ and hide itself (on a three-week daily series one broken day is
    most of the variance). Starting from the binomial (ρ = 0): S = the
    periods with neither tail probability, P(K ≤ k_i) nor P(K ≥ k_i),
    below alpha / m under the current ρ (neither an extreme drop nor an
    extreme rise); ρ = ρ̂(S); repeat until S no longer
    changes (at most 50 rounds). At the fixed point ρ is estimated from
    exactly the periods it does not find extreme; with binomial data it
    stays near 0, with overdispersed data it grows towards the ordinary
    spread and the periods first excluded come back. A level shift lasting
    many periods becomes part of the ordinary variation.
    """
    if direction not in ("drop", "both"):
        raise ValueError(f"direction must be 'drop' or 'both', got {direction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    k = pd.Series(reached, dtype=float)
    n = pd.Series(trials, dtype=float).reindex(k.index)
    if ((k < 0) | (k > n)).any():
        raise ValueError("rate_test needs 0 <= reached <= trials in every period")
    ok = (n > 0).to_numpy() & k.notna().to_numpy()
    kk, nn = k.to_numpy()[ok], n.to_numpy()[ok]
    m = int(ok.sum())
    p0 = float(kk.sum() / nn.sum()) if m else np.nan
    threshold = alpha / m if m else np.nan
    log_p = np.full(len(k), np.nan)
    rho, excluded = 0.0, np.zeros(m, dtype=bool)
    if m:
        seen = set()
        while True:
            low, high = _log_pvalues(kk, nn, p0, rho)
            two_sided = np.minimum(0.0, np.log(2) + np.minimum(low, high))
            extreme = np.minimum(low, high) < np.log(threshold)
            key = extreme.tobytes()
            if not overdispersed or key in seen or len(seen) >= MAX_ROUNDS:
                break
            seen.add(key)
            excluded = extreme
            rho = _intraclass_correlation(kk, nn, p0, ~excluded)
        log_p[ok] = low if direction == "drop" else two_sided
    value = pd.Series(np.where(ok, k / n.where(n > 0), np.nan), index=k.index)
    frame = _frame(value, p0, -log_p / np.log(10))
    with np.errstate(invalid="ignore"):
        frame = _with_alarm(frame, log_p < np.log(threshold))
    frame.attrs.update({"p0": p0, "rho": rho, "threshold": threshold, "excluded": int(excluded.sum())})
    return frame


DETECTORS: dict[str, Callable[..., pd.DataFrame]] = {
    "3-sigma": three_sigma,
    "robust z": robust_z,
    "STL": stl_residual,
    "rate test": rate_test,
}
"""The detectors by the names used in tables and plots."""


def detect(series: pd.DataFrame, freq: str, column: str,
           detectors: Sequence[str] = ("3-sigma", "robust z", "STL", "rate test"), *,
           z_threshold: float = 3.5, rate_alpha: float = 0.001, min_trials: int = 1) -> pd.DataFrame:
    """Run detectors on one column of :func:`kpi_series`.

    Parameters
    ----------
    series : DataFrame
        Output of :func:`kpi_series`.
    freq : {"hour", "day"}
        Its frequency; sets the STL periods (:data:`STL_PERIODS`: ``(24,
        168)`` hourly, ``(7,)`` daily).
    column : str
        The KPI: ``entrants`` (traffic) or a step's ``{s}_rate``.
    detectors : sequence of str
        Names in :data:`DETECTORS`. The rate test applies to rate columns
        only (it reads ``{s}_reached`` and ``{s}_from``) and is skipped for
        other columns; it runs one-sided (a drop) with the beta-binomial.
        STL is skipped when the series is shorter than it needs
        (:func:`stl_residual`: two cycles of the longest period).
    z_threshold : float
        Threshold of robust z and STL (3-sigma keeps its 3).
    rate_alpha : float
        Family-wise alpha of the rate test.
    min_trials : int, default 1
        Rate columns: a period whose ``{s}_from`` is below it has no rate
        for any detector (value NaN, no alarm; the rate test leaves it out
        of the pooled rate and of the Bonferroni count). A rate from two
        sessions is 0, 0.5 or 1: the z-score detectors would take its
        swing for an incident.

    Returns
    -------
    DataFrame
        Long table, one row per period and detector, in the order of
        ``detectors``: ``period``, ``detector``, ``value``, ``expected``,
        ``score``, ``alarm`` (see each detector for the definitions).

    Raises
    ------
    ValueError
        For an unknown frequency, column or detector name.

    Notes
    -----
    On a rate column only a *drop* alarms (a step breaking): the z-score
    detectors' alarms are kept where the score is negative, and the rate
    test is one-sided. A conversion rising far above its usual level is
    no broken step; its score is still in the table. Traffic
    (``entrants``) alarms both ways: a sale day is news too.
    """
    if freq not in STL_PERIODS:
        raise ValueError(f"freq must be 'hour' or 'day', got {freq!r}")
    if column not in series.columns:
        raise ValueError(f"no column {column!r} in the KPI series; columns are {list(series.columns)}")
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; known: {list(DETECTORS)}")
    values = series[column]
    is_rate = column.endswith("_rate")
    if is_rate:
        step = column[: -len("_rate")]
        enough = series[f"{step}_from"] >= min_trials
        values = values.where(enough)
        reached, trials = series[f"{step}_reached"].where(enough), series[f"{step}_from"].where(enough)
    frames = []
    for name in detectors:
        if name == "STL":
            if not _long_enough_for_stl(len(values), STL_PERIODS[freq]):
                continue
            out = stl_residual(values, STL_PERIODS[freq], threshold=z_threshold)
        elif name == "rate test":
            if not is_rate:
                continue
            out = rate_test(reached, trials, alpha=rate_alpha)
        elif name == "robust z":
            out = robust_z(values, threshold=z_threshold)
        else:
            out = DETECTORS[name](values)
        if is_rate:  # only a falling conversion is a broken step (the rate test is one-sided already)
            out["alarm"] &= out["score"].lt(0) | (name == "rate test")
        frames.append(out.assign(period=series["period"].to_numpy(), detector=name))
    columns = ["period", "detector", *_RESULT_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _utc_day(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.normalize()


def score_against_incidents(alarms: pd.DataFrame, incident_dates: Iterable, freq: str) -> pd.DataFrame:
    """Precision, recall and delay of each detector against known incident dates.

    Parameters
    ----------
    alarms : DataFrame
        Output of :func:`detect` (columns ``period``, ``detector``, ``alarm``).
    incident_dates : iterable
        UTC calendar dates of the incidents (``"2026-09-14"``, dates or
        Timestamps; a time of day is ignored), e.g. the ``date`` of the
        simulator's ``ground_truth["incidents"]``.
    freq : {"hour", "day"}
        Frequency of the periods (their length, for the delay).

    Returns
    -------
    DataFrame
        One row per detector, in order of first appearance: ``detector``;
        ``alarms`` = number of alarmed periods; ``precision`` = share of
        alarmed periods whose UTC date is an incident date (NaN with no
        alarm); ``recall`` = share of incident dates with at least one
        alarmed period (NaN with no incident date); ``delay_hours`` = mean,
        over the incident dates found, of the hours from the date's 00:00
        UTC to the end of its first alarmed period (an alarm can only be
        raised once its period is over: 24 for a daily alarm; NaN when none
        is found); ``false_alarms`` = alarmed periods outside incident dates.
    """
    if freq not in PERIOD_LENGTH:
        raise ValueError(f"freq must be 'hour' or 'day', got {freq!r}")
    incidents = sorted({_utc_day(d) for d in incident_dates})
    length_hours = PERIOD_LENGTH[freq] / pd.Timedelta(hours=1)
    rows = []
    for name, group in alarms.groupby("detector", sort=False):
        periods = pd.to_datetime(group.loc[group["alarm"].astype(bool), "period"], utc=True)
        days = periods.dt.normalize()
        on_incident = days.isin(incidents)
        delays = []
        for day in incidents:
            hit = periods[days == day]
            if len(hit):
                delays.append((hit.min() - day) / pd.Timedelta(hours=1) + length_hours)
        rows.append({
            "detector": name,
            "alarms": int(len(periods)),
            "precision": float(on_incident.mean()) if len(periods) else np.nan,
            "recall": len(delays) / len(incidents) if incidents else np.nan,
            "delay_hours": float(np.mean(delays)) if delays else np.nan,
            "false_alarms": int((~on_incident).sum()),
        })
    columns = ["detector", "alarms", "precision", "recall", "delay_hours", "false_alarms"]
    return pd.DataFrame(rows, columns=columns)
