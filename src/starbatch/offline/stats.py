"""Label statistics shared by training validation and the accuracy evaluation.

Every statistic ignores non-finite values (a failed fit is NaN), and says how many
values it used."""

from __future__ import annotations

import numpy as np

from starbatch.methods.emulator import LABEL_NAMES


def robust_std(x) -> float:
    """1.4826 x the median absolute deviation: the standard deviation for a Gaussian,
    unmoved by a few outliers. NaN when nothing is finite."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def label_stats(truth, estimate, errors=None) -> dict:
    """Per label: bias = median(estimate - truth), scatter = robust std, rms, n finite;
    with ``errors``, also the median error and pull = robust std of the residual over the
    error (1 when the uncertainties are right)."""
    out = {}
    for i, name in enumerate(LABEL_NAMES):
        d = np.asarray(estimate, dtype=np.float64)[:, i] - np.asarray(truth)[:, i]
        ok = np.isfinite(d)
        out[name] = {
            "bias": round(float(np.median(d[ok])), 4) if ok.any() else None,
            "scatter": round(robust_std(d), 4),
            "rms": round(float(np.sqrt(np.mean(d[ok] ** 2))), 4) if ok.any() else None,
            "n": int(ok.sum()),
        }
        if errors is not None:
            err = np.asarray(errors, dtype=np.float64)[:, i]
            finite = np.isfinite(err)
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = d / err
            median = float(np.median(err[finite])) if finite.any() else float("nan")
            out[name]["median_err"] = round(median, 4)
            out[name]["pull"] = round(robust_std(pull), 3)
    return out
