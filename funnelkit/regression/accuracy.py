"""Numerical accuracy of least squares: the log relative error, test designs with
known answers (Wampler, Longley, a collinear family) and :func:`accuracy_table`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from ._base import RankDeficientError, RegressionError
from .least_squares import ols

__all__ = [
    "MAX_LRE",
    "log_relative_error",
    "accuracy_table",
    "Design",
    "wampler",
    "wampler1",
    "longley",
    "collinear",
    "LONGLEY_DATA",
    "LONGLEY_CERTIFIED",
]

#: Largest LRE a double can show: -log10(eps/2) rounded down (~15.95).
MAX_LRE = 15.9

# --------------------------------------------------------------------------
# Accuracy: LRE and the test designs
# --------------------------------------------------------------------------
def log_relative_error(estimate, reference, *, max_digits: float = MAX_LRE) -> np.ndarray:
    r"""Log relative error, the number of correct significant digits.

    .. math:: \mathrm{LRE} = -\log_{10}\frac{|\hat x - x|}{|x|}
              \quad(x \ne 0), \qquad -\log_{10}|\hat x - x| \quad (x = 0),

    elementwise, clipped to ``[0, max_digits]`` (``max_digits`` when
    :math:`\hat x = x`; 0 when the error exceeds 100 %).  McCullough (1998).

    Parameters
    ----------
    estimate, reference : array_like
        Same shape (broadcastable).
    max_digits : float, default 15.9
        Cap; a double carries about 15.95 significant digits.

    Returns
    -------
    numpy.ndarray
        LRE in digits (float array of the broadcast shape).
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    err = np.abs(est - ref)
    denom = np.where(ref == 0, 1.0, np.abs(ref))
    with np.errstate(divide="ignore"):
        lre = -np.log10(err / denom)
    lre = np.where(err == 0, max_digits, lre)
    lre = np.where(np.isnan(est), 0.0, lre)
    return np.clip(lre, 0.0, max_digits)


@dataclass(frozen=True)
class Design:
    """A least-squares test problem with a known answer.

    Attributes
    ----------
    name : str
    X : numpy.ndarray of shape (n, p)
        The design, constant column included.
    y : numpy.ndarray of shape (n,)
    names : tuple of str
    certified : numpy.ndarray of shape (p,)
        The exact or certified coefficients.
    source : str
        Where the answer comes from.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    certified: np.ndarray
    source: str


def wampler(degree: int = 5) -> Design:
    r"""Wampler-style polynomial: :math:`y = \sum_{k=0}^{d} x^k`, x = 0, 1, ..., 20.

    The design has columns :math:`1, x, \dots, x^d`; the exact coefficients
    are all 1 and the residuals exactly 0 (all values are integers below
    :math:`2^{53}`, hence exact in double precision, for ``degree <= 12``).
    ``degree=5`` is NIST StRD *Wampler1* (lower difficulty).

    Raises
    ------
    RegressionError
        ``degree`` outside 1..12.
    """
    degree = int(degree)
    if not 1 <= degree <= 12:
        raise RegressionError(f"degree must be in 1..12 (exact in double precision), got {degree}")
    x = np.arange(21.0)
    X = np.vander(x, degree + 1, increasing=True)
    y = X.sum(axis=1)
    names = ("const",) + tuple(f"x^{k}" for k in range(1, degree + 1))
    name = "Wampler1" if degree == 5 else f"Wampler-style degree {degree}"
    return Design(
        name=name, X=X, y=y, names=names, certified=np.ones(degree + 1),
        source=(
            "exact by construction; degree 5 is NIST StRD Wampler1 (Wampler 1970), "
            "https://www.itl.nist.gov/div898/strd/lls/data/Wampler1.shtml"
        ),
    )


def wampler1() -> Design:
    """NIST StRD Wampler1: :func:`wampler` with degree 5 (certified coefficients all 1)."""
    return wampler(5)


#: Longley (1967) data as distributed by NIST StRD
#: (https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml).
#: Columns: y = total employment, x1 = GNP deflator, x2 = GNP, x3 = unemployed,
#: x4 = armed forces, x5 = population (>= 14 years), x6 = year; 1947-1962.
LONGLEY_DATA = np.array(
    [
        [60323, 83.0, 234289, 2356, 1590, 107608, 1947],
        [61122, 88.5, 259426, 2325, 1456, 108632, 1948],
        [60171, 88.2, 258054, 3682, 1616, 109773, 1949],
        [61187, 89.5, 284599, 3351, 1650, 110929, 1950],
        [63221, 96.2, 328975, 2099, 3099, 112075, 1951],
        [63639, 98.1, 346999, 1932, 3594, 113270, 1952],
        [64989, 99.0, 365385, 1870, 3547, 115094, 1953],
        [63761, 100.0, 363112, 3578, 3350, 116219, 1954],
        [66019, 101.2, 397469, 2904, 3048, 117388, 1955],
        [67857, 104.6, 419180, 2822, 2857, 118734, 1956],
        [68169, 108.4, 442769, 2936, 2798, 120445, 1957],
        [66513, 110.8, 444546, 4681, 2637, 121950, 1958],
        [68655, 112.6, 482704, 3813, 2552, 123366, 1959],
        [69564, 114.2, 502601, 3931, 2514, 125368, 1960],
        [69331, 115.7, 518173, 4806, 2572, 127852, 1961],
        [70551, 116.9, 554894, 4007, 2827, 130081, 1962],
    ],
    dtype=np.float64,
)

#: NIST certified coefficients for Longley (const, x1, ..., x6), 15 digits.
LONGLEY_CERTIFIED = np.array(
    [
        -3482258.63459582,
        15.0618722713733,
        -0.358191792925910e-01,
        -2.02022980381683,
        -1.03322686717359,
        -0.511041056535807e-01,
        1829.15146461355,
    ]
)


def longley() -> Design:
    """NIST StRD Longley: employment on six macro series, 16 x 7 with constant.

    Returns
    -------
    Design
        ``certified`` holds NIST's certified values (15 significant digits).

    References
    ----------
    Longley, J.W. (1967) An appraisal of least squares programs for the
    electronic computer from the point of view of the user. JASA 62, 819-841.
    NIST StRD, https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml
    """
    X = np.hstack([np.ones((16, 1)), LONGLEY_DATA[:, 1:]])
    names = ("const", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR")
    return Design(
        name="Longley", X=X, y=LONGLEY_DATA[:, 0].copy(), names=names, certified=LONGLEY_CERTIFIED.copy(),
        source="NIST StRD Longley (Longley 1967), certified values",
    )


def collinear(log10_kappa: float = 7.0, *, n: int = 50, seed: int = 0) -> Design:
    r"""A synthetic nearly collinear design with an exactly known answer.

    Columns: constant, :math:`x_1`, :math:`x_2 = x_1 + \delta z` and
    :math:`x_3`, with :math:`x_1, x_3` uniform on the grid
    :math:`1.25 + 2^{-44}\mathbb{Z}` in [1.25, 1.75), :math:`z_i = \pm1` at
    random and :math:`\delta = 2^{-k}`; :math:`y = 1 + x_1 + x_2 + x_3`.
    Every value (y included) is a dyadic rational with fewer than 53
    significant bits, hence exact in double precision, so the exact
    least-squares solution is (1, 1, 1, 1) with zero residual.  The products
    in :math:`X'X` need about 90 bits, so forming the normal equations rounds
    as it does on real data.  k (at most 44) is chosen so that
    :math:`\kappa_2` of the column-scaled design is close to
    :math:`10^{\text{log10\_kappa}}` (within a factor of about 2).

    Parameters
    ----------
    log10_kappa : float, default 7.0
        Target :math:`\log_{10}` condition number of the column-scaled
        design, between 1 and 13.
    n : int, default 50
    seed : int, default 0
    """
    if not 1.0 <= log10_kappa <= 13.0:
        raise RegressionError(f"log10_kappa must be in [1, 13], got {log10_kappa}")
    rng = np.random.default_rng(seed)
    grid = 2.0**-44
    x1 = 1.25 + np.floor(rng.random(n) * (0.5 / grid)) * grid
    x3 = 1.25 + np.floor(rng.random(n) * (0.5 / grid)) * grid
    z = rng.choice([-1.0, 1.0], size=n)

    def build(k):
        return np.column_stack([np.ones(n), x1, x1 + z * 2.0**-k, x3])

    def kappa(X):
        sv = linalg.svdvals(X / np.linalg.norm(X, axis=0))
        return sv[0] / sv[-1]

    k0 = 4
    k = k0 + int(round((log10_kappa - math.log10(kappa(build(k0)))) / math.log10(2.0)))
    k = max(0, min(k, 44))
    X = build(k)
    y = X.sum(axis=1)
    return Design(
        name=f"collinear (delta=2^-{k})", X=X, y=y, names=("const", "x1", "x2", "x3"), certified=np.ones(4),
        source="synthetic, exact by construction (dyadic values, zero residual)",
    )


def _default_designs() -> list[Design]:
    return [wampler1(), wampler(7), longley(), collinear(7.0)]


def accuracy_table(designs: Sequence[Design] | None = None, methods: Sequence[str] = ("normal", "qr")) -> pd.DataFrame:
    r"""Correct digits of each least-squares method on designs with known answers.

    For each design and method, the minimum over coefficients of
    :func:`log_relative_error` of :func:`ols`'s estimate against
    ``design.certified``.  A method that fails (Cholesky breakdown of
    :math:`X'X`) scores 0 digits.

    Parameters
    ----------
    designs : sequence of Design, optional
        Default: Wampler1, the degree-7 Wampler-style polynomial, Longley and
        ``collinear(7.0)``.
    methods : sequence of {"normal", "qr"}, default ("normal", "qr")
        ``"qr"`` is the default QR solve (one refinement step); the column
        ``lre_qr_plain`` (no refinement) is always added.

    Returns
    -------
    pandas.DataFrame
        Indexed by design name; columns ``n``, ``p``, ``log10_cond``
        (:math:`\log_{10}\kappa_2` of the column-scaled design),
        ``log10_cond_raw`` (of the raw design), ``lre_<method>`` per method and
        ``lre_qr_plain``.  Rule of thumb: ``lre_qr`` :math:`\approx 15.95 -
        \log_{10}\kappa` and ``lre_normal`` :math:`\approx 15.95 -
        2\log_{10}\kappa` (with componentwise losses beyond the normwise
        :math:`\kappa` for badly graded columns such as polynomials).
    """
    if designs is None:
        designs = _default_designs()
    rows = []
    for d in designs:
        Xs = d.X / np.linalg.norm(d.X, axis=0)
        row = {
            "n": d.X.shape[0],
            "p": d.X.shape[1],
            "log10_cond": math.log10(np.linalg.cond(Xs)),
            "log10_cond_raw": math.log10(np.linalg.cond(d.X)),
        }
        runs = [(m, m, None) for m in methods] + [("qr_plain", "qr", 0)]
        for label, m, refine in runs:
            try:
                est = ols(d.X, d.y, method=m, names=list(d.names), refine=refine).params.to_numpy()
                row[f"lre_{label}"] = float(np.min(log_relative_error(est, d.certified)))
            except RankDeficientError:
                row[f"lre_{label}"] = 0.0
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([d.name for d in designs], name="design"))
    return table.astype({"n": int, "p": int})
