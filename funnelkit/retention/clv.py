r"""Customer value: the BG/NBD model of repeat purchases and the Gamma-Gamma model of spend.

Everything numerical here is written from the mathematics with SciPy's special functions
(``gammaln``, ``digamma``, ``hyp2f1``) and ``scipy.optimize.minimize``. The ``lifetimes``
package (unmaintained) is not used; its CDNOW figures and those of the papers below are the
known answers of ``tests/test_retention_clv.py``, and ``tests/reference/clv_reference.py``
checks every likelihood and expectation here against numerical integration (mpmath) and
simulation.

Contents
--------
* :class:`BetaGeo` -- the BG/NBD model (Fader, Hardie & Lee 2005): fit by maximum likelihood,
  expected purchases of a new customer, expected purchases and probability of being alive of
  a customer given their history.
* :class:`GammaGamma` -- the Gamma-Gamma model of the mean spend per transaction (Fader &
  Hardie 2013): fit, expected spend of a customer given their history and of a new customer.
* :func:`customer_value`, :func:`new_customer_value` -- expected value (repeat purchases x
  spend) over a horizon, optionally discounted.
* :func:`holdout_calibration` -- the calibration/holdout table: actual against predicted
  purchases in a holdout period, by calibration-period frequency.

Both estimators follow scikit-learn's contract (settings stored unchanged by ``__init__``,
``fit`` returns ``self``, learned state ends in ``_``) and expose statsmodels-like results:
``params_``, ``bse_``, ``cov_params_``, ``loglik_``, ``conf_int()``, ``summary()``.

Data per customer
-----------------
Time is measured in any one unit (days, weeks...): the rate parameter ``alpha`` of BG/NBD,
the horizons and the discount rate are all in that unit.

x (``frequency``)
    Number of *repeat* transactions in the calibration period (the first transaction, at
    time 0, is not counted).
t_x (``recency``)
    Time of the last repeat transaction, measured from the first transaction; 0 when x = 0.
T
    Time from the first transaction to the end of the calibration period (0 <= t_x <= T).
m (``monetary_value``)
    Mean value of the x repeat transactions (the first transaction is left out, as in
    Fader & Hardie 2013, because it is often atypical).

The BG/NBD model
----------------
Assumptions (Fader, Hardie & Lee 2005, section 3):

1. While active, a customer's transactions follow a Poisson process of rate lambda.
2. lambda varies across customers as Gamma(r, alpha) (shape r, *rate* alpha):
   g(lambda) = alpha^r lambda^(r-1) exp(-alpha lambda) / Gamma(r).
3. Right after each repeat transaction the customer becomes inactive for good with
   probability p (never right after the first purchase at time 0).
4. p varies across customers as Beta(a, b).
5. lambda and p are independent across customers.

Individual likelihood. Active through T, or inactive after the x-th repeat transaction::

    L(lambda, p | x, t_x, T) = (1-p)^x lambda^x e^(-lambda T)
                               + [x > 0] p (1-p)^(x-1) lambda^x e^(-lambda t_x)

Integrating over g(lambda) and Beta(a, b) (FHL 2005, eq. 6)::

    L(r, alpha, a, b | x, t_x, T) = A1 A2 (A3 + [x > 0] A4)
    A1 = Gamma(r + x) alpha^r / Gamma(r)
    A2 = Gamma(a + b) Gamma(b + x) / (Gamma(b) Gamma(a + b + x))
    A3 = (alpha + T)^-(r + x)
    A4 = a / (b + x - 1) (alpha + t_x)^-(r + x)

and the log-likelihood of n customers is the sum of ::

    ln L = ln Gamma(r+x) - ln Gamma(r) + r ln alpha
           + ln Gamma(a+b) + ln Gamma(b+x) - ln Gamma(b) - ln Gamma(a+b+x)
           + ln(A3 + [x > 0] A4)

The last term is computed as ``logaddexp(l3, l4)`` with l3 = ln A3, l4 = ln A4, which neither
overflows nor underflows for large x.

Gradient. With w3 = A3 / (A3 + A4) and w4 = A4 / (A3 + A4) (w4 = 0 when x = 0), psi the
digamma function, and d ln A3/dr = -ln(alpha+T), d ln A4/dr = -ln(alpha+t_x),
d ln A3/d alpha = -(r+x)/(alpha+T), d ln A4/d alpha = -(r+x)/(alpha+t_x),
d ln A4/da = 1/a, d ln A4/db = -1/(b+x-1)::

    d lnL/dr     = psi(r+x) - psi(r) + ln alpha - w3 ln(alpha+T) - w4 ln(alpha+t_x)
    d lnL/dalpha = r/alpha - (r+x) [w3/(alpha+T) + w4/(alpha+t_x)]
    d lnL/da     = psi(a+b) - psi(a+b+x) + w4/a
    d lnL/db     = psi(a+b) + psi(b+x) - psi(b) - psi(a+b+x) - w4/(b+x-1)

The optimiser works on theta = ln(r, alpha, a, b) (the parameters are positive), whose
gradient is d lnL/d theta_k = param_k * d lnL/d param_k (chain rule).

Predictions (FHL 2005, eqs. 9, 10 and 11). With 2F1 the Gaussian hypergeometric function:

* Expected repeat purchases of a new customer in (0, t]::

      E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]

* Probability that a customer with history (x, t_x, T) is still active at T::

      P(alive) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))

* Expected repeat purchases in (T, T+t] of that customer::

      E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1)
          [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))] P(alive)

  E[X(t)] is the case x = 0, T = 0 of the bracket. For numerical stability the code uses
  Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z), which turns the
  bracket into ``1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` with z = t/(alpha+T+t):
  its first two arguments no longer grow with x (SciPy's ``hyp2f1`` fails on the original
  form for x in the hundreds). The expression has removable singularities where it loses
  its digits: a = 1 (0/0), r - a an integer (then c - a - b of the 2F1 is an integer, where
  SciPy's ``hyp2f1`` returns inf or garbage for z > 0.9) and a + b = 1 for x = 0 (a pole of
  the 2F1 cancelled by the prefactor). Within 1e-4 of one, the value is extrapolated from
  points 3e-4 and 6e-4 away on both sides (Richardson; error O(1e-14), relative).

The Gamma-Gamma model
---------------------
Assumptions (Fader & Hardie 2013):

1. The value z of each transaction of a customer is Gamma(p, nu) (shape p, rate nu), so
   the mean of x transactions, m, is Gamma(p x, nu x).
2. nu varies across customers as Gamma(q, gamma) (shape q, rate gamma); in the code gamma
   is called ``v``.
3. Spend is independent of the transaction process (x, t_x, T): this is what lets
   :func:`customer_value` multiply the two models' expectations. Checking it (e.g. the
   correlation of m and x across customers) is the analyst's job.

Marginal density of m for a customer with x repeat transactions::

    f(m | p, q, v, x) = Gamma(p x + q) / (Gamma(p x) Gamma(q))
                        v^q x^(p x) m^(p x - 1) / (v + x m)^(p x + q)

so ::

    ln f = ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln v + px ln x + (px-1) ln m
           - (px+q) ln(v + x m)

    d ln f/dp = x [psi(px+q) - psi(px) + ln x + ln m - ln(v + x m)]
    d ln f/dq = psi(px+q) - psi(q) + ln v - ln(v + x m)
    d ln f/dv = q/v - (px+q)/(v + x m)

Expected spend per transaction (the mean of the posterior of p/nu,
nu | x, m ~ Gamma(px+q, v+xm))::

    E[Z | x, m] = p (v + x m) / (p x + q - 1)
                = (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m

a weighted average of the population mean p v/(q-1) (the expected spend of a new customer,
finite only when q > 1) and the customer's own mean m.

Estimation and standard errors
------------------------------
Both models maximise the log-likelihood with ``scipy.optimize.minimize`` (BFGS) on the log
parameters with the analytic gradient, from ``n_starts`` starting points (a moment-based
guess and fixed multiplicative perturbations of it); the best converged fit wins. The
covariance of the estimates is the inverse of the observed information, the Hessian of the
negative log-likelihood with respect to the natural parameters at the optimum, computed by
central differences of the analytic gradient. ``conf_int`` gives Wald intervals on the log
scale, ``exp(ln theta -/+ z se(theta)/theta)`` (delta method: se(ln theta) = se(theta)/theta),
which stay positive and are more nearly symmetric in the likelihood than intervals on the
natural scale.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way:
an alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. Journal of Marketing Research 42(4), 415-430.

Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://www.brucehardie.com/notes/025/gamma_gamma.pdf
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from funnelkit.errors import DataError

__all__ = [
    "BetaGeo",
    "GammaGamma",
    "customer_value",
    "new_customer_value",
    "holdout_calibration",
]

# Groups of the holdout table with fewer customers get no interval: the normal approximation
# of a mean of skewed counts needs a few customers, and the sample sd of 2 or 3 is noise.
MIN_CUSTOMERS_FOR_INTERVAL = 10


# --------------------------------------------------------------------------
# Input validation: one message shape, naming the column, the count and an example
# --------------------------------------------------------------------------
class BoundaryWarning(RuntimeWarning):
    """A maximum-likelihood fit whose optimum the data cannot pin down (the observed information is not
    positive definite): the estimates are kept, their standard errors are NaN."""


def _column(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float array (a scalar becomes one row)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers, got values of type {type(values).__name__}: {exc}") from None
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise DataError(f"{name}: expected one value per customer (1-D), got shape {arr.shape}")
    return arr


def _row_labels(*inputs):
    """The index of the first Series among the inputs (so that messages and outputs use the
    caller's labels). Inputs are matched by position, never aligned on their indexes."""
    for value in inputs:
        if isinstance(value, pd.Series):
            return value.index
    return None


def _require(ok: np.ndarray, name: str, what: str, columns: dict[str, np.ndarray], labels) -> None:
    """Raise :class:`DataError` if some rows fail ``ok``; ``what`` describes the failure."""
    bad = np.flatnonzero(~ok)
    if bad.size == 0:
        return
    first = int(bad[0])
    row = _plain(labels[first]) if labels is not None else first
    shown = ", ".join(f"{col}={_plain(vals[first]):g}" for col, vals in columns.items())
    raise DataError(
        f"{name}: {bad.size} of {ok.size} row(s) {what} (first: row {row!r}, {shown})"
    )


def _plain(value):
    """A NumPy scalar as the Python value it holds (messages read 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


def _same_length(columns: dict[str, np.ndarray]) -> None:
    lengths = {name: arr.size for name, arr in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError("columns differ in length: " + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    if next(iter(lengths.values())) == 0:
        raise DataError(f"no customers: {', '.join(lengths)} are empty")


def _finite(arr: np.ndarray, name: str, labels) -> None:
    _require(np.isfinite(arr), name, "are not finite (NaN or infinite)", {name: arr}, labels)


def _counts(values, name: str, labels) -> np.ndarray:
    """A column of transaction counts: finite, >= 0, whole numbers."""
    arr = _column(values, name)
    _finite(arr, name, labels)
    _require(arr >= 0, name, "are negative", {name: arr}, labels)
    _require(arr == np.floor(arr), name, "are not whole numbers", {name: arr}, labels)
    return arr


def _customer_histories(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (x, t_x, T) of the BG/NBD model."""
    labels = _row_labels(frequency, recency, T)
    x = _column(frequency, "frequency")
    t_x = _column(recency, "recency")
    T_ = _column(T, "T")
    _same_length({"frequency": x, "recency": t_x, "T": T_})
    x = _counts(x, "frequency", labels)
    _finite(t_x, "recency", labels)
    _finite(T_, "T", labels)
    _require(t_x >= 0, "recency", "are negative", {"recency": t_x}, labels)
    _require(t_x <= T_, "recency", "are greater than T", {"recency": t_x, "T": T_}, labels)
    _require((x > 0) | (t_x == 0), "recency", "are not 0 although frequency is 0 (no repeat purchase)",
             {"frequency": x, "recency": t_x}, labels)
    return x, t_x, T_


def _durations(values, name: str, *, positive: bool, n_customers: int | None = None) -> np.ndarray:
    """A column of lengths of time: one value, or one per customer when ``n_customers`` is given
    (several for a single customer)."""
    labels = _row_labels(values)
    arr = _column(values, name)
    if n_customers not in (None, 1) and arr.size not in (1, n_customers):
        raise DataError(f"{name}: expected one value or one per customer ({n_customers}), got {arr.size}")
    _finite(arr, name, labels)
    if positive:
        _require(arr > 0, name, "are not positive", {name: arr}, labels)
    else:
        _require(arr >= 0, name, "are negative", {name: arr}, labels)
    return arr


def _spend_histories(frequency, monetary_value, *, repeat_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validated (x, m) of the Gamma-Gamma model; m is ignored (set to 0) where x = 0."""
    labels = _row_labels(frequency, monetary_value)
    x = _column(frequency, "frequency")
    m = _column(monetary_value, "monetary_value")
    _same_length({"frequency": x, "monetary_value": m})
    x = _counts(x, "frequency", labels)
    if repeat_only:
        _require(x > 0, "frequency", "are 0: the Gamma-Gamma model is fitted on repeat customers only "
                 "(pass the rows with frequency > 0)", {"frequency": x}, labels)
    repeat = x > 0
    _require(~repeat | np.isfinite(m), "monetary_value", "are not finite (NaN or infinite) for a repeat customer",
             {"frequency": x, "monetary_value": m}, labels)
    _require(~repeat | (m > 0), "monetary_value", "are not positive for a repeat customer",
             {"frequency": x, "monetary_value": m}, labels)
    return x, np.where(repeat, m, 0.0)


def _shaped_like(result: np.ndarray, *inputs):
    """Results in the caller's shape: a Series on the first pandas input's index, a float for
    scalar inputs, else an array."""
    labels = _row_labels(*inputs)
    if labels is not None and len(labels) == result.size:
        return pd.Series(result, index=labels)
    if all(np.ndim(v) == 0 for v in inputs):
        return float(result[0])
    return result


# --------------------------------------------------------------------------
# BG/NBD: log-likelihood, gradient and predictions (natural parameters r, alpha, a, b)
# --------------------------------------------------------------------------
def _bgnbd_log_terms(params, x, t_x, T):
    """ln A3 and ln A4 of the module docstring (ln A4 = -inf where x = 0)."""
    r, alpha, a, b = params
    log_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # b + x - 1 > 0 whenever x >= 1; the placeholder 1 keeps the log finite where x = 0
    b_shifted = np.where(repeat, b + x - 1.0, 1.0)
    log_a4 = np.where(repeat, np.log(a) - np.log(b_shifted) - (r + x) * np.log(alpha + t_x), -np.inf)
    return log_a3, log_a4, b_shifted


def _bgnbd_log_a1_a2(params, x) -> np.ndarray:
    """ln A1 + ln A2 of the module docstring."""
    r, alpha, a, b = params
    return (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
            + special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x))


def _bgnbd_loglik(params, x, t_x, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood ln L(r, alpha, a, b | x, t_x, T) (FHL 2005, eq. 6)."""
    log_a3, log_a4, _ = _bgnbd_log_terms(params, x, t_x, T)
    return _bgnbd_log_a1_a2(params, x) + np.logaddexp(log_a3, log_a4)


def _bgnbd_loglik_and_grad(params, x, t_x, T) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient w.r.t. (r, alpha, a, b), shape (n, 4)."""
    r, alpha, a, b = params
    log_a3, log_a4, b_shifted = _bgnbd_log_terms(params, x, t_x, T)
    log_sum = np.logaddexp(log_a3, log_a4)
    w3, w4 = np.exp(log_a3 - log_sum), np.exp(log_a4 - log_sum)
    loglik = _bgnbd_log_a1_a2(params, x) + log_sum
    psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + x)
    grad = np.column_stack([
        special.digamma(r + x) - special.digamma(r) + np.log(alpha)
        - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x),
        r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x)),
        psi_ab - psi_abx + w4 / a,
        psi_ab + special.digamma(b + x) - special.digamma(b) - psi_abx - w4 / b_shifted,
    ])
    return loglik, grad


def _log_odds_dead(params, x, t_x, T) -> np.ndarray:
    """ln of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) (-inf where x = 0): P(alive) = 1/(1+exp(.))."""
    r, alpha, a, b = params
    repeat = x > 0
    b_shifted = np.where(repeat, b + x - 1.0, 1.0)
    return np.where(repeat, np.log(a) - np.log(b_shifted) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
                    -np.inf)


def _bgnbd_probability_alive(params, x, t_x, T) -> np.ndarray:
    """P(active at T | x, t_x, T) (FHL 2005, eq. 11; the 'probability alive')."""
    return special.expit(-_log_odds_dead(params, x, t_x, T))


# Within _NEAR of a removable singularity of the closed form (see _purchases_if_alive) the
# value is extrapolated from points _STEP (and 2 _STEP) away on either side, where the closed
# form is accurate: Richardson's combination of the two symmetric means has error O(_STEP^4).
_NEAR = 1e-4
_STEP = 3e-4


def _distance_to_integer(value: float) -> float:
    return abs(value - round(value))


def _across(evaluate, params, index: int):
    """``evaluate(params)`` extrapolated across a removable singularity in ``params[index]``
    (which must exceed 2 _STEP, to stay positive)."""
    step = _STEP

    def mean_at(h):
        shifted = [list(params), list(params)]
        shifted[0][index] -= h
        shifted[1][index] += h
        return 0.5 * (evaluate(tuple(shifted[0])) + evaluate(tuple(shifted[1])))

    return (4.0 * mean_at(step) - mean_at(2.0 * step)) / 3.0


def _purchases_if_alive(params, t, x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T, active at T] = (a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)],
    z = t/(alpha+T+t) (the bracket of FHL 2005 eq. 10 after Euler's transformation).

    The expectation is smooth in the parameters, but the closed form has removable
    singularities where it loses its digits, each crossed by :func:`_across`:

    * a = 1: (a+b+x-1)/(a-1) times a bracket that vanishes, 0/0 (crossed in a);
    * r - a an integer: then c - a - b = x + r - a + 1 of the 2F1 is an integer, where the
      connection formula that SciPy's ``hyp2f1`` uses for z > 0.9 is singular (it returns
      inf, or loses every digit just beside it) (crossed in r);
    * a + b = 1 with x = 0: c = a + b - 1 = 0, a pole of the 2F1 cancelled by the prefactor
      (crossed in b).

    Each crossing moves its parameter at least _STEP - _NEAR > _NEAR away from its own
    singularity and leaves the parameters of the checks before it unchanged, so the
    recursion ends after at most three levels. A parameter too small to be moved (below
    3 _STEP, far outside any fitted model) is left to the closed form.
    """
    r, alpha, a, b = params
    evaluate = functools.partial(_purchases_if_alive, t=t, x=x, T=T)
    if abs(a - 1.0) < _NEAR:
        return _across(evaluate, params, 2)
    if _distance_to_integer(r - a) < _NEAR and r > 3 * _STEP:
        return _across(evaluate, params, 0)
    if abs(a + b - 1.0) < _NEAR and b > 3 * _STEP and np.any(np.asarray(x) == 0):
        return _across(evaluate, params, 3)
    z = t / (alpha + T + t)
    c = a + b + x - 1.0
    bracket = 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    return c / (a - 1.0) * bracket


_LEGENDRE = np.polynomial.legendre.leggauss(64)


def _purchases_by_quadrature(params, t, x, T) -> np.ndarray:
    """The quantity of :func:`_purchases_if_alive` by numerical integration, for where the closed form fails.

    Active at T after x repeat purchases, a customer's λ is Gamma(r + x, alpha + T) and their p
    Beta(a, b + x) a posteriori, and E[Y(t) | λ, p] = (1 - exp(-λ p t)) / p (each of the Poisson
    purchases happens if the customer survived the dropouts before it). Averaging over λ gives
    g(p) = (1 - ((alpha+T)/(alpha+T+pt))^(r+x)) / p, bounded and smooth in p; the average of g over
    p is taken in the probability scale u = F(p) (p = F⁻¹(u)) by 64-point Gauss-Legendre. This
    stays accurate where the 2F1 overflows: a and b in the thousands (the data cannot tell
    customers' dropout probabilities apart, and the fit lets a and b grow with a/(a+b) fixed).
    """
    r, alpha, a, b = params
    t, x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, T)))
    nodes, weights = _LEGENDRE
    u = (nodes + 1.0) / 2.0
    flat = [v.reshape(-1)[:, None] for v in (t, x, T)]
    t_, x_, T_ = flat
    p = stats.beta.ppf(u[None, :], a, b + x_)
    ratio = p * t_ / (alpha + T_)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = -np.expm1(-(r + x_) * np.log1p(ratio)) / p
    g = np.where(p > 0, g, (r + x_) * t_ / (alpha + T_))  # the limit p -> 0
    return (g @ (weights / 2.0)).reshape(t.shape)


def _expected_if_alive(params, t, x, T) -> np.ndarray:
    """:func:`_purchases_if_alive`, by :func:`_purchases_by_quadrature` wherever the closed form is not finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        closed = np.asarray(_purchases_if_alive(params, t, x, T), dtype=float)
    broken = ~np.isfinite(closed)
    if not broken.any():
        return closed
    shape = np.broadcast_shapes(closed.shape, *(np.shape(v) for v in (t, x, T)))
    closed = np.broadcast_to(closed, shape).copy()
    mask = np.broadcast_to(broken, shape)
    parts = [np.broadcast_to(np.asarray(v, dtype=float), shape)[mask] for v in (t, x, T)]
    closed[mask] = _purchases_by_quadrature(params, *parts)
    return closed


# --------------------------------------------------------------------------
# Gamma-Gamma: log-likelihood and gradient (natural parameters p, q, v)
# --------------------------------------------------------------------------
def _gg_loglik(params, x, m) -> np.ndarray:
    """Per-customer ln f(m | p, q, v, x) of the Gamma-Gamma model (Fader & Hardie 2013)."""
    p, q, v = params
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
            + px * np.log(x) + (px - 1.0) * np.log(m) - (px + q) * np.log(v + x * m))


def _gg_loglik_and_grad(params, x, m) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient w.r.t. (p, q, v), shape (n, 3)."""
    p, q, v = params
    px = p * x
    log_vxm = np.log(v + x * m)
    psi_pxq = special.digamma(px + q)
    grad = np.column_stack([
        x * (psi_pxq - special.digamma(px) + np.log(x) + np.log(m) - log_vxm),
        psi_pxq - special.digamma(q) + np.log(v) - log_vxm,
        q / v - (px + q) / (v + x * m),
    ])
    return _gg_loglik(params, x, m), grad


# --------------------------------------------------------------------------
# Maximum likelihood machinery shared by the two models
# --------------------------------------------------------------------------
def _observed_information(total_grad, params: np.ndarray) -> np.ndarray:
    """Hessian of the negative log-likelihood by central differences of its analytic gradient.

    ``total_grad(params)`` is the gradient of the *total* log-likelihood. Steps are relative
    (eps^(1/3) * param, the optimum for central differences); the result is symmetrised.
    """
    k = params.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.cbrt(np.finfo(float).eps) * params[j]
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = -(total_grad(up) - total_grad(down)) / (2.0 * step)
    return 0.5 * (hessian + hessian.T)


# Multiplicative perturbations of the first guess, one row per extra start (fixed: fits are reproducible)
_START_FACTORS = np.exp(np.array([
    [0.0, 0.0, 0.0, 0.0],
    [-1.0, -1.0, 1.0, 1.0],
    [1.0, 1.0, -1.0, 0.5],
    [-2.0, 0.0, -1.0, 2.0],
    [0.5, 2.0, 0.5, -1.0],
]))


class _MaximumLikelihoodModel(BaseEstimator):
    """Fit, covariance, intervals and summary shared by :class:`BetaGeo` and :class:`GammaGamma`.

    Subclasses define ``_PARAM_NAMES``, ``_MODEL``, ``_loglik_and_grad(params, data)`` and
    ``_first_guess(data)``.
    """

    _PARAM_NAMES: tuple[str, ...] = ()
    _MODEL = ""

    def __init__(self, n_starts: int = 3, tol: float = 1e-8, max_iter: int = 2000):
        self.n_starts = n_starts
        self.tol = tol
        self.max_iter = max_iter

    def _why_unidentified(self, stop: dict) -> str:
        """Why a fit may not converge, for the error message (``stop``: where the optimiser stopped)."""
        return ("The data may not identify the model (too few repeat customers, values or rates that do not "
                "differ between customers, or nobody ever stopping); try more customers, or more starts (n_starts)")

    def _check_settings(self) -> None:
        if not (isinstance(self.n_starts, (int, np.integer)) and 1 <= self.n_starts <= len(_START_FACTORS)):
            raise ValueError(f"n_starts must be an integer in [1, {len(_START_FACTORS)}], got {self.n_starts!r}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")

    def _minimise_from(self, start: np.ndarray, data, n: int):
        """BFGS on theta = ln(params) of the mean negative log-likelihood per customer
        (per customer so that ``tol`` means the same for 100 or 100,000 customers)."""

        def objective(theta):
            params = np.exp(theta)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loglik, grad = self._loglik_and_grad(params, data)
                value, gradient = -loglik.sum() / n, -(grad.sum(axis=0) * params) / n
            if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
                return np.inf, np.zeros_like(theta)  # BFGS's line search backs off
            return value, gradient

        result = optimize.minimize(objective, np.log(start), jac=True, method="BFGS",
                                   options={"gtol": self.tol, "maxiter": self.max_iter})
        _, gradient = objective(result.x)
        # BFGS can stop on "precision loss" at the optimum itself: accept any point whose
        # gradient is small enough, and nothing else
        converged = bool(np.isfinite(result.fun) and np.max(np.abs(gradient)) <= max(self.tol, 1e-6))
        return result, converged

    def _fit_mle(self, data, n: int):
        self._check_settings()
        first = self._first_guess(data)
        fits = [self._minimise_from(first * factors[: first.size], data, n)
                for factors in _START_FACTORS[: self.n_starts]]
        converged = [result for result, ok in fits if ok]
        if not converged:
            best = min((result for result, _ in fits), key=lambda res: res.fun)
            stop = dict(zip(self._PARAM_NAMES, np.exp(best.x)))
            raise DataError(
                f"{self._MODEL}: the maximum likelihood fit did not converge from {self.n_starts} start(s) "
                f"(it stopped at {', '.join(f'{k}={v:.4g}' for k, v in stop.items())}: "
                f"{best.message.rstrip('.')}). {self._why_unidentified(stop)}")
        best = min(converged, key=lambda res: res.fun)
        params = np.exp(best.x)

        self.params_ = pd.Series(params, index=list(self._PARAM_NAMES), name="coef")
        self.loglik_ = float(self._loglik_and_grad(params, data)[0].sum())
        self.n_customers_ = n
        self.converged_ = True
        self.n_iter_ = int(best.nit)
        self.cov_params_ = self._covariance(params, data)
        self.bse_ = pd.Series(np.sqrt(np.diag(self.cov_params_.to_numpy())), index=self.params_.index,
                              name="std_err")
        return self

    def _covariance(self, params: np.ndarray, data) -> pd.DataFrame:
        def total_grad(p):
            return self._loglik_and_grad(p, data)[1].sum(axis=0)

        information = _observed_information(total_grad, params)
        names = list(self._PARAM_NAMES)
        try:
            # Cholesky both inverts and checks that the optimum is a strict maximum
            factor = np.linalg.cholesky(information)
            inverse_factor = np.linalg.inv(factor)
            cov = inverse_factor.T @ inverse_factor
        except np.linalg.LinAlgError:
            # statsmodels' choice for a singular information: warn and keep the estimates, which
            # may sit on a boundary the data cannot resolve (e.g. b huge and a tiny: nobody drops out)
            estimates = ", ".join(f"{name}={value:.4g}" for name, value in zip(names, params))
            warnings.warn(f"{self._MODEL}: the observed information is not positive definite at the optimum "
                          f"({estimates}): the likelihood is flat in some direction, the estimates may be on "
                          "a boundary the data cannot resolve, and standard errors are NaN", BoundaryWarning,
                          stacklevel=4)
            cov = np.full((params.size, params.size), np.nan)
        return pd.DataFrame(cov, index=names, columns=names)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals on the log scale.

        ``exp(ln theta_hat -/+ z_{1-alpha/2} se(theta_hat) / theta_hat)``: the interval of
        ``ln theta`` (whose standard error is se(theta)/theta by the delta method) mapped back,
        so that it stays positive.

        Parameters
        ----------
        alpha : float, default 0.05
            1 - coverage.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, indexed by parameter name.
        """
        check_is_fitted(self, "params_")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        estimate = self.params_.to_numpy()
        log_se = self.bse_.to_numpy() / estimate
        return pd.DataFrame({"lower": estimate * np.exp(-z * log_se), "upper": estimate * np.exp(z * log_se)},
                            index=self.params_.index)

    def summary(self, alpha: float = 0.05) -> pd.DataFrame:
        """The parameter table.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter, with columns ``coef`` (estimate), ``std_err`` (from the
            observed information), ``ci_lower``, ``ci_upper`` (:meth:`conf_int` at level
            ``1 - alpha``). ``attrs`` holds ``model``, ``loglik``, ``n_customers``.
        """
        ci = self.conf_int(alpha)
        table = pd.DataFrame({"coef": self.params_, "std_err": self.bse_,
                              "ci_lower": ci["lower"], "ci_upper": ci["upper"]})
        table.attrs.update(model=self._MODEL, loglik=self.loglik_, n_customers=self.n_customers_)
        return table


# --------------------------------------------------------------------------
# The estimators
# --------------------------------------------------------------------------
class BetaGeo(_MaximumLikelihoodModel):
    """The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005).

    Assumptions, likelihood, gradient and predictions are written out in the module
    docstring. Times are in any one unit (days, weeks...); ``alpha`` is in that unit.

    Parameters
    ----------
    n_starts : int, default 3
        Starting points of the optimiser (1 to 5): a moment-based guess and fixed
        perturbations of it. The best converged fit is kept.
    tol : float, default 1e-8
        Convergence tolerance: largest absolute derivative of the mean negative
        log-likelihood per customer with respect to the log-parameters. A fit is accepted
        when it is at most ``max(tol, 1e-6)``.
    max_iter : int, default 2000
        Iterations of BFGS per start.

    Attributes
    ----------
    params_ : pandas.Series
        Maximum likelihood estimates of ``r``, ``alpha`` (Gamma shape and rate of the
        purchase rate lambda; mean rate r/alpha purchases per time unit), ``a``, ``b`` (Beta
        parameters of the dropout probability p; mean a/(a+b)).
    loglik_ : float
        Log-likelihood at the estimates (natural log, summed over customers).
    n_customers_ : int
        Customers fitted.
    cov_params_ : pandas.DataFrame
        Inverse of the observed information (Hessian of the negative log-likelihood with
        respect to r, alpha, a, b at the estimates); NaN if it is not positive definite.
    bse_ : pandas.Series
        Standard errors, square roots of the diagonal of ``cov_params_``.
    converged_ : bool
        True (a fit that does not converge raises :class:`~funnelkit.errors.DataError`).
    n_iter_ : int
        BFGS iterations of the retained start.

    References
    ----------
    Fader, Hardie & Lee (2005), Marketing Science 24(2), 275-284.
    """

    _PARAM_NAMES = ("r", "alpha", "a", "b")
    _MODEL = "BG/NBD"

    def _why_unidentified(self, stop: dict) -> str:
        if min(stop["r"], stop["alpha"]) > 1e3:
            # r and alpha growing together at a fixed r/alpha is the gamma mixing collapsing to one rate
            return (f"The fit ran towards every customer ordering at the same rate (r and alpha growing together, "
                    f"r/alpha = {stop['r'] / stop['alpha']:.3g} orders per unit of time): the customers' order "
                    "counts vary no more than one common rate would make them, a limit BG/NBD reaches only at "
                    "infinite r and alpha; more customers with a longer history may show a difference")
        return super()._why_unidentified(stop)

    def fit(self, frequency, recency, T):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency : array_like of int
            x: repeat transactions per customer in the calibration period (>= 0).
        recency : array_like of float
            t_x: time of the last repeat transaction since the first transaction
            (0 when x = 0).
        T : array_like of float
            Time from the first transaction to the end of the calibration period
            (0 <= t_x <= T).

        Returns
        -------
        BetaGeo
            self.

        Raises
        ------
        funnelkit.errors.DataError
            Invalid inputs (the message names the column, the number of bad rows and the
            first one), or no start of the optimiser converged.
        """
        data = _customer_histories(frequency, recency, T)
        if not np.any(data[0] > 0):
            raise DataError(f"frequency: all {data[0].size} customers have 0 repeat purchases: the BG/NBD "
                            "purchase rate and dropout cannot be estimated without repeat customers")
        return self._fit_mle(data, data[0].size)

    @staticmethod
    def _loglik_and_grad(params, data):
        return _bgnbd_loglik_and_grad(params, *data)

    @staticmethod
    def _first_guess(data) -> np.ndarray:
        # r = 1 and the mean observed purchase rate r/alpha = sum(x)/sum(T); a = 1, b = 3 (mean p = 1/4)
        x, _, T = data
        rate = max(x.sum(), 1.0) / max(T.sum(), np.finfo(float).tiny)
        return np.array([1.0, 1.0 / rate, 1.0, 3.0])

    def _fitted(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        return tuple(self.params_.to_numpy())

    def expected_purchases_new(self, t):
        """Expected repeat purchases of a new customer in (0, t]: E[X(t)] (FHL 2005, eq. 9).

        ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``.

        Parameters
        ----------
        t : float or array_like
            Time since the first purchase (>= 0), in the unit of the fit.

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Purchases (not counting the first), shaped like ``t``.
        """
        params = self._fitted()
        t_ = _durations(t, "t", positive=False)
        return _shaped_like(_expected_if_alive(params, t_, np.zeros_like(t_), np.zeros_like(t_)), t)

    def conditional_expected_purchases(self, t, frequency, recency, T):
        """Expected purchases in (T, T+t] of a customer with history (x, t_x, T): E[Y(t) | x, t_x, T]
        (FHL 2005, eq. 10).

        Parameters
        ----------
        t : float or array_like
            Length of the future period (>= 0), in the unit of the fit; one value or one per
            customer.
        frequency, recency, T : array_like
            The customers' calibration histories, as in :meth:`fit`.

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Expected purchases per customer.
        """
        params = self._fitted()
        x, t_x, T_ = _customer_histories(frequency, recency, T)
        t_ = _durations(t, "t", positive=False, n_customers=x.size)
        return _shaped_like(_expected_if_alive(params, t_, x, T_) * _bgnbd_probability_alive(params, x, t_x, T_),
                            frequency, recency, T, t)

    def probability_alive(self, frequency, recency, T):
        """Probability that a customer is still active at T given (x, t_x, T) (FHL 2005, eq. 11).

        ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``; exactly 1 for a
        customer without repeat purchase (in BG/NBD nobody drops out before a repeat purchase).

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Probability per customer.
        """
        params = self._fitted()
        x, t_x, T_ = _customer_histories(frequency, recency, T)
        return _shaped_like(_bgnbd_probability_alive(params, x, t_x, T_), frequency, recency, T)


class GammaGamma(_MaximumLikelihoodModel):
    """The Gamma-Gamma model of the mean spend per transaction (Fader & Hardie 2013).

    Assumptions, likelihood and gradient are written out in the module docstring.

    Parameters
    ----------
    n_starts, tol, max_iter
        As in :class:`BetaGeo`.

    Attributes
    ----------
    params_ : pandas.Series
        Estimates of ``p`` (shape of a transaction's value), ``q`` and ``v`` (shape and rate
        of the Gamma distribution of nu across customers; ``v`` is called gamma in the note).
    loglik_, n_customers_, cov_params_, bse_, converged_, n_iter_
        As in :class:`BetaGeo`.

    References
    ----------
    Fader & Hardie (2013), http://www.brucehardie.com/notes/025/gamma_gamma.pdf
    """

    _PARAM_NAMES = ("p", "q", "v")
    _MODEL = "Gamma-Gamma"

    def fit(self, frequency, monetary_value):
        """Fit by maximum likelihood on repeat customers.

        Parameters
        ----------
        frequency : array_like of int
            x: repeat transactions per customer, all > 0 (pass only repeat customers).
        monetary_value : array_like of float
            m: mean value of those x transactions (> 0), in currency units.

        Returns
        -------
        GammaGamma
            self.

        Raises
        ------
        funnelkit.errors.DataError
            Invalid inputs (including frequency 0), or no start of the optimiser converged.
        """
        data = _spend_histories(frequency, monetary_value, repeat_only=True)
        return self._fit_mle(data, data[0].size)

    @staticmethod
    def _loglik_and_grad(params, data):
        return _gg_loglik_and_grad(params, *data)

    @staticmethod
    def _first_guess(data) -> np.ndarray:
        # p = 1, q = 2, and v such that the population mean spend p v/(q-1) is the mean of m
        _, m = data
        return np.array([1.0, 2.0, m.mean()])

    def _fitted(self) -> tuple[float, float, float]:
        check_is_fitted(self, "params_")
        return tuple(self.params_.to_numpy())

    def conditional_expected_spend(self, frequency, monetary_value):
        """Expected value of a future transaction of a customer with history (x, m).

        ``E[Z | x, m] = p (v + x m) / (p x + q - 1)``, the posterior mean of p/nu: a weighted
        average of the population mean ``p v/(q-1)`` and the customer's own mean m, whose
        weight ``px/(px+q-1)`` grows with x. For x = 0 it is the population mean and m is
        ignored (may be 0 or NaN).

        Parameters
        ----------
        frequency : array_like of int
            x >= 0.
        monetary_value : array_like of float
            m, the mean value of the x repeat transactions (> 0 where x > 0).

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Expected value per transaction, in the currency of ``monetary_value``.

        Raises
        ------
        funnelkit.errors.DataError
            Invalid inputs, or q <= 1 with a customer of x = 0 (infinite expectation).
        """
        p, q, v = self._fitted()
        x, m = _spend_histories(frequency, monetary_value, repeat_only=False)
        if q <= 1.0 and np.any(x == 0):
            raise DataError(self._infinite_mean_message(q))
        return _shaped_like(p * (v + x * m) / (p * x + q - 1.0), frequency, monetary_value)

    def expected_spend_new(self) -> float:
        """Expected value of a transaction of a new customer: ``E[Z] = p v / (q - 1)``.

        Raises
        ------
        funnelkit.errors.DataError
            If q <= 1: E[1/nu] is then infinite, and so is the population mean spend.
        """
        p, q, v = self._fitted()
        if q <= 1.0:
            raise DataError(self._infinite_mean_message(q))
        return p * v / (q - 1.0)

    @staticmethod
    def _infinite_mean_message(q: float) -> str:
        return (f"Gamma-Gamma: q = {q:.4g} <= 1, so the expected spend of a customer without repeat "
                "purchases, p v/(q-1), is infinite (the spend distribution has too heavy a tail): "
                "check the monetary values for outliers")


# --------------------------------------------------------------------------
# Customer value
# --------------------------------------------------------------------------
def _discounted_increments(cumulative, horizon: float, discount_rate: float):
    """Sum over periods k = 1..K of [E(s_k) - E(s_{k-1})] / (1 + d)^k, s_k = min(k, horizon),
    K = ceil(horizon); ``cumulative(s)`` is the expected cumulative purchases at s."""
    if discount_rate == 0.0:
        return cumulative(horizon)
    n_periods = int(np.ceil(horizon))
    ends = np.minimum(np.arange(1, n_periods + 1, dtype=float), horizon)
    total, previous = 0.0, 0.0
    for k, end in enumerate(ends, start=1):
        current = cumulative(end)
        total = total + (current - previous) / (1.0 + discount_rate) ** k
        previous = current
    return total


def _check_horizon(horizon, discount_rate) -> tuple[float, float]:
    horizon, discount_rate = float(horizon), float(discount_rate)
    if not (np.isfinite(horizon) and horizon > 0):
        raise DataError(f"horizon must be a positive time, got {horizon}")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise DataError(f"discount_rate must be >= 0 (per time unit), got {discount_rate}")
    return horizon, discount_rate


def customer_value(bgnbd: BetaGeo, gg: GammaGamma, frequency, recency, T, monetary_value, horizon,
                   discount_rate: float = 0.0):
    """Expected value of each customer's repeat purchases over the next ``horizon``.

    Undiscounted (``discount_rate = 0``)::

        value = E[Y(horizon) | x, t_x, T] * E[Z | x, m]

    the product of the BG/NBD conditional expected purchases and the Gamma-Gamma
    conditional expected spend (the models assume spend independent of the purchase
    process). Discounted, purchases are grouped by period of one time unit and each period
    is discounted at its end::

        value = E[Z | x, m] * sum_{k=1..K} [E[Y(s_k)] - E[Y(s_{k-1})]] / (1 + d)^k

    with s_k = min(k, horizon), K = ceil(horizon), d = ``discount_rate``.

    Parameters
    ----------
    bgnbd : BetaGeo
        Fitted purchase model.
    gg : GammaGamma
        Fitted spend model.
    frequency, recency, T : array_like
        Calibration histories (see :meth:`BetaGeo.fit`).
    monetary_value : array_like
        Mean value of the repeat transactions (ignored where frequency = 0).
    horizon : float
        Length of the future period, in the time unit of ``bgnbd``.
    discount_rate : float, default 0
        Discount rate per time unit of ``bgnbd`` (e.g. a yearly 10% with weeks:
        1.10 ** (1/52) - 1).

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        Expected value per customer, in the currency of ``monetary_value``.
    """
    horizon, discount_rate = _check_horizon(horizon, discount_rate)
    spend = np.asarray(gg.conditional_expected_spend(frequency, monetary_value), dtype=float)

    def purchases(s):
        return np.asarray(bgnbd.conditional_expected_purchases(s, frequency, recency, T), dtype=float)

    value = np.atleast_1d(_discounted_increments(purchases, horizon, discount_rate) * spend)
    return _shaped_like(value, frequency, recency, T, monetary_value)


def new_customer_value(bgnbd: BetaGeo, gg: GammaGamma, horizon, discount_rate: float = 0.0) -> float:
    """Expected value of a new customer's repeat purchases in the ``horizon`` after their first.

    ``E[X(horizon)] * p v / (q - 1)`` when undiscounted, discounted by period as in
    :func:`customer_value`. The first purchase itself is not included.

    Parameters
    ----------
    bgnbd, gg, horizon, discount_rate
        As in :func:`customer_value`.

    Returns
    -------
    float
        Expected value, in the currency the spend model was fitted in.
    """
    horizon, discount_rate = _check_horizon(horizon, discount_rate)
    spend = gg.expected_spend_new()
    return float(_discounted_increments(bgnbd.expected_purchases_new, horizon, discount_rate) * spend)


# --------------------------------------------------------------------------
# Calibration / holdout check
# --------------------------------------------------------------------------
def holdout_calibration(bgnbd: BetaGeo, frequency, recency, T, holdout_frequency, holdout_length,
                        max_group: int = 7) -> pd.DataFrame:
    """Actual against predicted holdout purchases, by calibration-period frequency.

    Customers are grouped by their calibration frequency x: ``0, 1, ..., max_group - 1``
    and ``>= max_group``. For each group: the mean number of purchases actually made in the
    holdout period and the mean of the model's conditional expectations
    E[Y(holdout_length) | x, t_x, T] (FHL 2005, eq. 10), with a normal-approximation 95%
    interval for the actual mean, ``mean -/+ 1.96 sd / sqrt(n)`` (sd the group's sample
    standard deviation, ddof = 1).

    Parameters
    ----------
    bgnbd : BetaGeo
        Model fitted on the calibration period.
    frequency, recency, T : array_like
        Calibration histories (see :meth:`BetaGeo.fit`).
    holdout_frequency : array_like of int
        Purchases of each customer in the holdout period (T, T + holdout_length].
    holdout_length : float or array_like
        Length of the holdout period, in the time unit of the fit (one value or one per
        customer).
    max_group : int, default 7
        Frequencies from ``max_group`` up are pooled in one group.

    Returns
    -------
    pandas.DataFrame
        One row per group present in the data, in order, with columns ``group`` (str:
        ``"0"``, ``"1"``, ..., ``">= 7"``), ``customers``, ``actual_mean``,
        ``predicted_mean``, ``actual_ci_lower``, ``actual_ci_upper``. The interval is NaN
        for groups of fewer than ``MIN_CUSTOMERS_FOR_INTERVAL`` (10) customers.
    """
    if not (isinstance(max_group, (int, np.integer)) and max_group >= 1):
        raise ValueError(f"max_group must be a positive integer, got {max_group!r}")
    x, t_x, T_ = _customer_histories(frequency, recency, T)
    labels = _row_labels(holdout_frequency)
    actual = _counts(holdout_frequency, "holdout_frequency", labels)
    _same_length({"frequency": x, "holdout_frequency": actual})
    length = _durations(holdout_length, "holdout_length", positive=True, n_customers=x.size)
    predicted = np.asarray(bgnbd.conditional_expected_purchases(length, x, t_x, T_), dtype=float)

    group = np.minimum(x, max_group).astype(int)
    z = stats.norm.ppf(0.975)
    rows = []
    for g in np.unique(group):
        members = group == g
        n = int(members.sum())
        mean = actual[members].mean()
        if n >= MIN_CUSTOMERS_FOR_INTERVAL:
            half_width = z * actual[members].std(ddof=1) / np.sqrt(n)
            lower, upper = mean - half_width, mean + half_width
        else:
            lower = upper = np.nan
        rows.append({"group": f">= {max_group}" if g == max_group else str(g), "customers": n,
                     "actual_mean": mean, "predicted_mean": predicted[members].mean(),
                     "actual_ci_lower": lower, "actual_ci_upper": upper})
    return pd.DataFrame(rows)
