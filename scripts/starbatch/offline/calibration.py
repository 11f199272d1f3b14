"""Model-error terms: what an analysis's noise-propagated uncertainties do not cover.

On a held-out synthetic set (seeded apart from training, validation and the accuracy
evaluation) the residuals d = estimate - truth and the noise errors sigma of one label
give the model error s: the smallest s >= 0 with robust_std(d / sqrt(sigma^2 + s^2)) = 1,
found by bisection (the spread falls monotonically with s). Pooled over S/N 20-200, so the
one term serves low S/N (noise-dominated) and high S/N (model-dominated) alike."""

from __future__ import annotations

import numpy as np

from .stats import robust_std

CALIBRATION_SNR = (20, 50, 100, 200)


def model_error(residual, noise_error, iterations: int = 60) -> float:
    """s for one label (0 when the noise errors alone already cover the residuals)."""
    d = np.asarray(residual, dtype=np.float64)
    e = np.asarray(noise_error, dtype=np.float64)
    ok = np.isfinite(d) & np.isfinite(e)
    d, e = d[ok], e[ok]
    if not len(d) or robust_std(d / e) <= 1.0:
        return 0.0
    lo, hi = 0.0, 10.0 * robust_std(d) + 1e-12
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if robust_std(d / np.hypot(e, mid)) > 1.0:
            lo = mid
        else:
            hi = mid
    return float(hi)


def model_errors(truth, estimate, noise_errors) -> np.ndarray:
    """(3,) model errors, one per label column."""
    truth, estimate, noise_errors = (
        np.asarray(a, dtype=np.float64) for a in (truth, estimate, noise_errors)
    )
    return np.array(
        [
            model_error(estimate[:, i] - truth[:, i], noise_errors[:, i])
            for i in range(truth.shape[1])
        ]
    )


def calibrate_analysis(name: str, emulator, n: int = 100, seed: int = 3000) -> np.ndarray:
    """(3,) model error of analysis ``name`` from held-out clean sets at CALIBRATION_SNR
    (``n`` stars each, seeds ``seed + k``), through its Analysis class. The term the
    analysis adds now is taken out of its errors first, so the result replaces it."""
    from starbatch.analyses.registry import BUILTIN

    from .evaluation import default_params, estimates, make_tasks, run
    from .training_set import make_random_set

    cls = BUILTIN[name]
    params = default_params(cls)
    analysis = cls()
    model = analysis.load(params)
    current = _current_term(name, model)
    truth, estimate, noise = [], [], []
    for k, snr in enumerate(CALIBRATION_SNR):
        data = make_random_set(emulator, n, snr, seed + k)
        tasks = make_tasks(data.spectra(), params)
        values, errors, _ = estimates(run(analysis, model, tasks, cls.chunk_size))
        truth.append(data.labels), estimate.append(values)
        noise.append(np.sqrt(np.maximum(errors**2 - current**2, 0.0)))
    return model_errors(np.vstack(truth), np.vstack(estimate), np.vstack(noise))


def _current_term(name: str, model) -> np.ndarray:
    if name == "gridfit":
        from starbatch.methods.gridfit.fit import MODEL_ERROR

        return np.asarray(MODEL_ERROR, dtype=np.float64)
    return np.asarray(model.model_error, dtype=np.float64)
