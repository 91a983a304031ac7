"""High-precision linear least squares with mpmath: the reference for accuracy tests.

Independent of ``funnelkit.regression``: the data (doubles, converted to
mpmath numbers exactly) are solved through the normal equations in 60-digit
arithmetic.  Squaring the condition number costs at most ~2*16 = 32 digits on
any design that is full rank in double precision, so about 28 correct digits
remain -- far beyond the ~16 a double can hold.  Results are rounded to
double once, at the end.
"""
from __future__ import annotations

import mpmath
import numpy as np

DPS = 60


def lstsq(X, y, weights=None, dps: int = DPS) -> dict[str, np.ndarray | float]:
    """Weighted least squares in ``dps``-digit arithmetic.

    Returns
    -------
    dict
        ``params`` and ``bse`` (classical standard errors
        ``sqrt(diag(s^2 (X'WX)^-1))``, ``s^2 = sum w e^2 / (n - p)``) as float64
        arrays, ``resid_std`` and ``rsquared`` (centred, the design must hold a
        constant column) as floats.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    with mpmath.workdps(dps):
        mf = mpmath.mpf
        Xm = [[mf(float(v)) for v in row] for row in X]
        ym = [mf(float(v)) for v in y]
        wm = [mf(float(v)) for v in w]
        A = mpmath.matrix(p, p)
        b = mpmath.matrix(p, 1)
        for j in range(p):
            for k in range(j, p):
                s = mpmath.fsum(wm[i] * Xm[i][j] * Xm[i][k] for i in range(n))
                A[j, k] = s
                A[k, j] = s
            b[j] = mpmath.fsum(wm[i] * Xm[i][j] * ym[i] for i in range(n))
        beta = mpmath.lu_solve(A, b)
        Ainv = mpmath.inverse(A)
        resid = [ym[i] - mpmath.fsum(Xm[i][j] * beta[j] for j in range(p)) for i in range(n)]
        ssr = mpmath.fsum(wm[i] * resid[i] ** 2 for i in range(n))
        s2 = ssr / (n - p)
        wsum = mpmath.fsum(wm)
        ybar = mpmath.fsum(wm[i] * ym[i] for i in range(n)) / wsum
        tss = mpmath.fsum(wm[i] * (ym[i] - ybar) ** 2 for i in range(n))
        return {
            "params": np.array([float(beta[j]) for j in range(p)]),
            "bse": np.array([float(mpmath.sqrt(s2 * Ainv[j, j])) for j in range(p)]),
            "resid_std": float(mpmath.sqrt(s2)),
            "rsquared": float(1 - ssr / tss),
        }
