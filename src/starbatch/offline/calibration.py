"""Model-error terms: what an analysis's noise-propagated uncertainties do not cover.

On a held-out synthetic set (seeded apart from training, validation and the accuracy
evaluation) the residuals d = estimate - truth and the noise errors sigma of one label
give the model error s: the smallest s >= 0 with robust_std(d / sqrt(sigma^2 + s^2)) = 1,
found by bisection (the spread falls monotonically with s). Pooled over S/N 20-200, so the
one term serves low S/N (noise-dominated) and high S/N (model-dominated) alike.

What the fits (gridfit, cannon) miss on spectra their model does not describe is
calibrated apart (``calibrate_excess``): on held-out *perturbed* spectra
(offline.augment.perturbed_star), the scale k per label of their correlated excess chi2
(methods.goodness.widening), found the same way. Clean spectra have no such excess, so
the two calibrations do not interfere. Training calibrates both terms of a cannon model
and stores them in its file (apogeenet has no excess scale: docs/analyses.md)."""

from __future__ import annotations

import logging

import numpy as np

from .stats import robust_std

log = logging.getLogger("starbatch")

CALIBRATION_SNR = (20, 50, 100, 200)
# The perturbed sets of the excess calibration: seeds apart from training (the model-error
# sets are its seed + 2000 + k), the robustness evaluation (4242) and the accuracy one (777).
EXCESS_SEED = 5000
# The fits, whose errors widen by their correlated excess; cannon's scale is in its model
# file, gridfit's a constant (methods/gridfit/fit.py).
WIDENING = ("gridfit", "cannon")


def model_error(residual, noise_error, iterations: int = 60) -> float:
    """s for one label (0 when the noise errors alone already cover the residuals)."""
    return unit_pull_scale(residual, noise_error, 1.0, iterations)


def unit_pull_scale(residual, base_error, unit_error, iterations: int = 60) -> float:
    """The smallest k >= 0 with robust_std(residual / hypot(base, k * unit)) = 1 (0 when
    the base errors already cover the residuals; inf when no k can, e.g. when rows
    without a unit part are already over-dispersed)."""
    d, e, u = np.broadcast_arrays(
        *(np.asarray(a, np.float64) for a in (residual, base_error, unit_error))
    )
    ok = np.isfinite(d) & np.isfinite(e) & np.isfinite(u)
    d, e, u = d[ok], e[ok], u[ok]
    if not len(d) or robust_std(d / e) <= 1.0:
        return 0.0
    lo, hi = 0.0, 1.0
    while robust_std(d / np.hypot(e, hi * u)) > 1.0:
        hi *= 2.0
        if hi > 1e12:
            return float("inf")
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if robust_std(d / np.hypot(e, mid * u)) > 1.0:
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
    truth, estimate, noise = [], [], []
    for labels, values, errors, _ in _held_out(name, emulator, n, seed)[2]:
        truth.append(labels), estimate.append(values), noise.append(errors)
    return model_errors(np.vstack(truth), np.vstack(estimate), np.vstack(noise))


def calibrate_excess(
    name: str, emulator, n: int = 100, seed: int = EXCESS_SEED, model=None
) -> np.ndarray:
    """(3,) the excess scale of fit ``name`` (WIDENING) from held-out perturbed sets at
    CALIBRATION_SNR (``n`` stars each, seeds ``seed + k``): its errors with the scale it
    applies now are taken apart into the noise error, its sqrt(chi2_red) widening, the
    correlated-excess part and the model-error term. ``model``: a loaded (or just
    trained) model of the analysis, else its shipped one."""
    from starbatch.methods.goodness import correlated_excess, widening

    from .augment import perturbed_star

    term, scale, sets = _held_out(name, emulator, n, seed, perturbed_star, model)
    residual, base, unit = [], [], []
    keys = ("chi2_red", "resid_corr", "n_pix")
    for labels, values, errors, results in sets:
        fit = np.array(
            [[r[k] for k in keys] if isinstance(r, dict) else [np.nan] * 3 for r in results]
        )
        noise = errors / widening(*fit.T, scale)
        residual.append(values - labels)
        base.append(np.hypot(noise * np.sqrt(np.maximum(fit[:, :1], 1.0)), term))
        unit.append(noise * np.sqrt(correlated_excess(*fit.T))[:, None])
    residual, base, unit = (np.vstack(a) for a in (residual, base, unit))
    return np.array([unit_pull_scale(residual[:, i], base[:, i], unit[:, i]) for i in range(3)])


def trained_excess_scale(name: str, emulator, n: int, model) -> np.ndarray:
    """calibrate_excess for ``model``, being trained. A label no scale brings to unit
    pulls (inf: too few or too odd calibration spectra) gets 0, so the file holds a
    usable number, and a warning says so."""
    scale = calibrate_excess(name, emulator, n, model=model)
    if not np.all(np.isfinite(scale)):
        log.warning("%s: no excess scale reaches unit pulls for %s: 0", name, scale)
    return np.where(np.isfinite(scale), scale, 0.0)


def store_excess_scale(emulator, n: int = 100) -> np.ndarray:
    """Calibrate cannon's excess scale (calibrate_excess) and write it into the model
    file it loads (the project's resources/models/ one if there is one, else the shipped
    one) and its scores JSON: what training does at its end, for a model file made
    before it did. Everything else in the file stays as it was."""
    import json
    from pathlib import Path

    from starbatch.analyses.registry import BUILTIN
    from starbatch.engine.atomic import write_json
    from starbatch.engine.provenance import file_sha256

    from .evaluation import default_params

    cls = BUILTIN["cannon"]
    params = default_params(cls)
    path = Path(cls.model_files(params)[0])
    model = cls().load(params)
    model.excess_scale = trained_excess_scale("cannon", emulator, n, model)
    model.save(path)
    scores = path.with_name(path.name.removesuffix(".npz") + ".scores.json")
    doc = json.loads(scores.read_text())
    doc["excess_scale"] = [round(float(v), 3) for v in model.excess_scale]
    doc["sha256"] = file_sha256(path)
    write_json(scores, doc)
    return model.excess_scale


def _held_out(name: str, emulator, n: int, seed: int, star=None, model=None) -> tuple:
    """Analysis ``name`` with default parameters (and ``model``, default its shipped
    one) on held-out sets, one per S/N of CALIBRATION_SNR (seed ``seed + k``; ``star``
    makes the spectra, default clean): (the model-error term and the excess scale it
    applies now, [(truth, estimates, errors less that term, result rows) per S/N])."""
    from starbatch.analyses.registry import BUILTIN

    from .evaluation import default_params, estimates, make_tasks, run
    from .training_set import make_random_set

    cls = BUILTIN[name]
    params = default_params(cls)
    analysis = cls()
    model = analysis.load(params) if model is None else model
    term, scale = _applied(name, model)
    kind = {} if star is None else {"star": star}
    sets = []
    for k, snr in enumerate(CALIBRATION_SNR):
        data = make_random_set(emulator, n, snr, seed + k, **kind)
        results = run(analysis, model, make_tasks(data.spectra(), params), cls.chunk_size)
        values, errors, _ = estimates(results)
        noise = np.sqrt(np.maximum(errors**2 - term**2, 0.0))
        sets.append((data.labels, values, noise, results))
    return term, scale, sets


def _applied(name: str, model) -> tuple[np.ndarray, np.ndarray]:
    """(model-error term, excess scale) that analysis ``name`` applies with ``model``
    (gridfit's are constants; a learned model carries its own; apogeenet has no scale)."""
    if name == "gridfit":
        from starbatch.methods.gridfit.fit import EXCESS_SCALE, MODEL_ERROR

        return np.asarray(MODEL_ERROR, np.float64), np.asarray(EXCESS_SCALE, np.float64)
    scale = getattr(model, "excess_scale", np.zeros(3))
    return np.asarray(model.model_error, np.float64), np.asarray(scale, np.float64)
