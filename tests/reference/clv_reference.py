"""Independent references for ``funnelkit.retention.clv``: mpmath integrals and a simulator.

Nothing here reuses the package's closed forms. The likelihoods are the individual-level
likelihoods of the models integrated numerically over the mixing distributions; the
expectations are integrals over the posterior; the simulator draws the BG/NBD process
itself. Parameterisations: lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b),
transaction value ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

# ---------------------------------------------------------------------------
# Integrals over the mixing distributions (mpmath)
#
# mpmath's quad stops on an *absolute* tolerance (10^-dps), so every integrand below is
# scaled to be of order 1 (constants are taken out in logs), and substitutions remove the
# endpoint singularities of the Gamma and Beta densities with shapes below 1, which
# otherwise cost tanh-sinh most of its digits.
# ---------------------------------------------------------------------------


def _bell_breaks(k):
    """Limits and breakpoints for the integrand exp(k (1 + s - e^s)) over s (peak 1 at s = 0)."""
    cutoff = (mp.mp.dps + 10) * mp.log(10)  # beyond: below 10^-(dps+10) of the peak
    lower = -cutoff / k - 1  # there k (1 + s - e^s) <= k (1 + s) = -cutoff
    upper = max(mp.mpf(2), mp.log(2 * cutoff / k + 2))  # there k (e^s - 1 - s) >= cutoff
    width = min(mp.mpf(1), 1 / mp.sqrt(k))  # of the peak, for large k
    inner = {mp.mpf(0)}
    inner |= {sign * width * 2**i for i in range(7) for sign in (-1, 1)}
    inner |= {-(mp.mpf(2) ** i) / k for i in range(9)}  # the slow left tail e^(k s) for small k
    return [lower, *sorted(point for point in inner if lower < point < upper), upper]


def log_gamma_mixture_integral(shape, rate, power, decay):
    """ln of the integral over lambda ~ Gamma(shape, rate) of lambda^power e^(-decay lambda).

    The integrand is rate^shape / Gamma(shape) lambda^(k-1) e^(-c lambda) with k = shape +
    power, c = rate + decay. Substituting lambda = (k/c) e^s gives
    (k/c)^k e^(-k) * integral of exp(k (1 + s - e^s)) ds, whose integrand peaks at 1 at s = 0
    and is smooth however small the shape.
    """
    k, c = shape + power, rate + decay
    integral = mp.quad(lambda s: mp.exp(k * (1 + s - mp.exp(s))), _bell_breaks(k))
    return shape * mp.log(rate) - mp.loggamma(shape) + k * mp.log(k / c) - k + mp.log(integral)


def beta_expectation(a, b, f):
    """Integral over p ~ Beta(a, b) of f(p), numerically (f of order 1).

    On [0, 1/2] the substitution w = p^a and on [1/2, 1] v = (1-p)^b make the integrand
    smooth where p^(a-1) or (1-p)^(b-1) is singular.
    """
    half = mp.mpf(1) / 2
    lower = mp.quad(lambda w: f(w ** (1 / a)) * (1 - w ** (1 / a)) ** (b - 1), [0, half**a]) / a
    upper = mp.quad(lambda v: f(1 - v ** (1 / b)) * (1 - v ** (1 / b)) ** (a - 1), [0, half**b]) / b
    return (lower + upper) / mp.beta(a, b)


# ---------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------


def _mp_params(params):
    return tuple(mp.mpf(float(v)) for v in params)


def _log_alive_weight(r, alpha, a, b, x, T):
    """ln of the integral of (1-p)^x lambda^x e^(-lambda T): alive at T with x repeat purchases."""
    return log_gamma_mixture_integral(r, alpha, x, T) + mp.log(beta_expectation(a, b, lambda p: (1 - p) ** x))


def _log_evidence(r, alpha, a, b, x, t_x, T):
    """ln of the integral of the individual likelihood (FHL 2005 eq. 3) over g(lambda) f(p).

    The individual likelihood (1-p)^x lambda^x e^(-lambda T) + [x > 0] p (1-p)^(x-1)
    lambda^x e^(-lambda t_x) is a sum of two products of a function of lambda and a function
    of p: by Fubini its double integral is a sum of products of one-dimensional integrals
    (a two-dimensional quadrature gives the same digits far more slowly).
    """
    alive = _log_alive_weight(r, alpha, a, b, x, T)
    if x == 0:
        return alive
    dropped = (log_gamma_mixture_integral(r, alpha, x, t_x)
               + mp.log(beta_expectation(a, b, lambda p: p * (1 - p) ** (x - 1))))
    return mp.log(mp.exp(alive) + mp.exp(dropped))


def bgnbd_loglik_by_integration(params, x, t_x, T, dps=30):
    """ln L(r, alpha, a, b | x, t_x, T) by numerical integration of the individual likelihood."""
    with mp.workdps(dps):
        r, alpha, a, b = _mp_params(params)
        return float(_log_evidence(r, alpha, a, b, x, mp.mpf(float(t_x)), mp.mpf(float(T))))


def bgnbd_loglik_closed_form_mp(params, x, t_x, T):
    """FHL 2005 eq. 6 written in mpmath (to differentiate with mpmath.diff at high precision)."""
    r, alpha, a, b = params
    a1 = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha)
    a2 = mp.loggamma(a + b) + mp.loggamma(b + x) - mp.loggamma(b) - mp.loggamma(a + b + x)
    a3 = (alpha + T) ** (-(r + x))
    a4 = a / (b + x - 1) * (alpha + t_x) ** (-(r + x)) if x > 0 else 0
    return a1 + a2 + mp.log(a3 + a4)


def _log_future_purchases(r, alpha, a, b, x, T, t):
    """ln of the integral of (1-p)^x lambda^x e^(-lambda T) (1 - e^(-lambda p t)) / p.

    An active customer's purchases in (T, T+t] are those of a new customer,
    (1 - e^(-lambda p t)) / p (FHL 2005 eq. 7; the process is memoryless). The lambda
    integral is the elementary Gamma integral, taken in closed form,
    Gamma(k) alpha^r / Gamma(r) c^-k (1 - (1 + p t / c)^-k) / p with k = r + x, c = alpha + T,
    and the p integral (whence the hypergeometric function of the closed forms) numerically.
    """
    k, c = r + x, alpha + T

    def per_p(p):
        if p == 0:  # the limit, where the substitution of beta_expectation underflows
            return (1 - p) ** x * k * t / c
        return (1 - p) ** x * -mp.expm1(-k * mp.log1p(p * t / c)) / p

    log_constant = mp.loggamma(k) - mp.loggamma(r) + r * mp.log(alpha) - k * mp.log(c)
    return log_constant + mp.log(beta_expectation(a, b, per_p))


def bgnbd_expected_new_by_integration(params, t, dps=20):
    """E[X(t)] for a new customer: (1 - e^(-lambda p t)) / p integrated over g(lambda) f(p)."""
    with mp.workdps(dps):
        r, alpha, a, b = _mp_params(params)
        return float(mp.exp(_log_future_purchases(r, alpha, a, b, 0, 0, mp.mpf(float(t)))))


def bgnbd_posterior_by_integration(params, t, x, t_x, T, dps=20):
    """P(alive at T | x, t_x, T) and E[Y(t) | x, t_x, T] as ratios of integrals over the prior.

    The weight of (lambda, p) given the data is the individual likelihood; its part where
    the customer is alive at T is (1-p)^x lambda^x e^(-lambda T).
    """
    with mp.workdps(dps):
        r, alpha, a, b = _mp_params(params)
        t, t_x, T = (mp.mpf(float(v)) for v in (t, t_x, T))
        evidence = _log_evidence(r, alpha, a, b, x, t_x, T)
        alive = _log_alive_weight(r, alpha, a, b, x, T)
        future = _log_future_purchases(r, alpha, a, b, x, T, t)
        return float(mp.exp(alive - evidence)), float(mp.exp(future - evidence))


# ---------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------


def gg_loglik_by_integration(params, x, m, dps=30):
    """ln of the integral over nu ~ Gamma(q, v) of the Gamma(p x, nu x) density of the mean m.

    That density, (nu x)^(p x) m^(p x - 1) e^(-nu x m) / Gamma(p x), is a power of nu times
    an exponential in nu, integrated numerically against the Gamma(q, v) density.
    """
    with mp.workdps(dps):
        p, q, v = _mp_params(params)
        x, m = mp.mpf(float(x)), mp.mpf(float(m))
        power = p * x
        return float(power * mp.log(x) + (power - 1) * mp.log(m) - mp.loggamma(power)
                     + log_gamma_mixture_integral(q, v, power, x * m))


def gg_loglik_closed_form_mp(params, x, m):
    """Fader & Hardie (2013) eq. 5 in mpmath."""
    p, q, v = params
    return (mp.loggamma(p * x + q) - mp.loggamma(p * x) - mp.loggamma(q) + q * mp.log(v)
            + p * x * mp.log(x) + (p * x - 1) * mp.log(m) - (p * x + q) * mp.log(v + x * m))


# ---------------------------------------------------------------------------
# Simulator of the BG/NBD process
# ---------------------------------------------------------------------------


def simulate_bgnbd(params, T, rng: np.random.Generator, holdout: float = 0.0):
    """Draw customers from BG/NBD, exactly (no time grid).

    Each customer gets lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b), and J ~ Geometric(p)
    on {1, 2, ...}: the repeat purchase after which they drop out. Purchases (while alive)
    are the arrivals of a Poisson(lambda) process on (0, T + holdout]. Given N arrivals in
    (0, T + holdout], the number M of them in (0, T] is Binomial(N, T / (T + holdout)) and,
    given M, the arrival times in (0, T] are M sorted uniforms, so the time of the x-th is
    T * Beta(x, M - x + 1).

    Parameters
    ----------
    params : (r, alpha, a, b)
    T : array_like
        Calibration length per customer (> 0); its length is the number of customers.
    rng : numpy.random.Generator
    holdout : float
        Length of the holdout period after T (0: none).

    Returns
    -------
    frequency, recency, holdout_frequency : numpy.ndarray
    """
    r, alpha, a, b = params
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    last_purchase = rng.geometric(p)  # purchases made before dropping out (>= 1)
    arrivals = rng.poisson(lam * (T + holdout))
    in_calibration = rng.binomial(arrivals, T / (T + holdout))
    frequency = np.minimum(last_purchase, in_calibration)
    holdout_frequency = np.minimum(last_purchase, arrivals) - frequency
    repeat = frequency > 0
    recency = np.zeros(n)
    recency[repeat] = T[repeat] * rng.beta(frequency[repeat], in_calibration[repeat] - frequency[repeat] + 1)
    return frequency.astype(float), recency, holdout_frequency.astype(float)
