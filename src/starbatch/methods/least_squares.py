"""Box-bounded nonlinear least squares for a handful of parameters (gridfit's <= 3 labels).

scipy.optimize.least_squares did this before; importing scipy.optimize costs ~0.45 s (its
package loads linprog, fft and parses hundreds of docstrings), which every gridfit batch
paid, and a fit of three labels needs none of it. This is Levenberg-Marquardt with a
forward-difference Jacobian (scipy's '2-point' step), steps projected onto the box and
parameters held at a bound while the gradient pushes them out; it stops when a step
changes the cost by less than ``ftol`` relative or the parameters by less than ``xtol``,
scipy's defaults. tests/unit/test_least_squares.py compares it with scipy's TRF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = np.finfo(np.float64).eps
TOL = 1e-8  # ftol and xtol, as scipy's defaults
MAX_DAMPING = 1e10  # a step this damped is no step: the minimum is reached


@dataclass
class Result:
    x: np.ndarray
    cost: float  # 0.5 * sum(residual ** 2), as scipy reports it
    jac: np.ndarray  # (n_residuals, n_params) at x
    nfev: int
    fun: np.ndarray  # the residuals at x


def _jacobian(fun, x, r, lo, hi) -> tuple[np.ndarray, int]:
    """Forward differences, stepping away from a bound the step would cross."""
    h = np.sqrt(EPS) * np.maximum(1.0, np.abs(x))
    h = np.where(x + h > hi, -h, h)
    jac = np.empty((len(r), len(x)))
    for k in range(len(x)):
        xk = x.copy()
        xk[k] += h[k]
        jac[:, k] = (fun(xk) - r) / (xk[k] - x[k])
    return jac, len(x)


def least_squares_box(
    fun: Callable[[np.ndarray], np.ndarray],
    x0,
    lo,
    hi,
    max_nfev: int = 100,
) -> Result:
    """Minimise 0.5 * ||fun(x)||^2 for lo <= x <= hi, starting at x0 (clipped)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    r = fun(x)
    cost = 0.5 * float(r @ r)
    jac, nfev = _jacobian(fun, x, r, lo, hi)
    nfev += 1
    damping = 1e-3
    while nfev < max_nfev and damping < MAX_DAMPING:
        g = jac.T @ r
        a = jac.T @ jac
        # a parameter on a bound whose descent direction leaves the box stays there
        free = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
        if not free.any():
            break
        step = np.zeros_like(x)
        af = a[np.ix_(free, free)]
        af = af + np.diag(damping * np.maximum(np.diag(af), 1e-300))
        try:
            step[free] = np.linalg.solve(af, -g[free])
        except np.linalg.LinAlgError:
            damping *= 10
            continue
        trial = np.clip(x + step, lo, hi)
        r_trial = fun(trial)
        nfev += 1
        cost_trial = 0.5 * float(r_trial @ r_trial)
        if not cost_trial < cost:
            damping *= 10
            continue
        moved = np.linalg.norm(trial - x)
        reduction = cost - cost_trial
        x, r, cost = trial, r_trial, cost_trial
        jac, n = _jacobian(fun, x, r, lo, hi)
        nfev += n
        damping = max(damping / 10, 1e-12)
        if reduction < TOL * cost or moved < TOL * (TOL + np.linalg.norm(x)):
            break
    return Result(x=x, cost=cost, jac=jac, nfev=nfev, fun=r)
