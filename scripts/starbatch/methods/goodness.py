"""Goodness of fit with a model-error floor, shared by the label analyses (POOR_FIT).

A chi-square against the noise alone says "not the emulator" for every real star at
high S/N: the emulator's line depths are a few per cent off (reduced chi-square ~45 for
the DR17 M giant at S/N 154, ~10 for the K dwarf, while the labels agree with DR17). The
model's error sits in its line strengths (atomic data, microturbulence), not in where the
lines are or in the continuum, so the variance of a pixel is

    sigma^2 + CONTINUUM_FLOOR^2 + (floor * (1 - model))^2,

with ``floor`` the fractional line-depth error (the analyses' task parameter
``fit_floor``; its default and the line threshold live with the analyses,
starbatch.analyses.labels). A star the
model describes up to its line strengths then has fit_chi2 ~ 1-5; lines the model does not
have (a hot star's Brackett lines), an artefact in the continuum or a wrong wavelength
solution are not covered by the floor and still give large values.

A featureless spectrum is fitted "well" by the weakest-lined model, so the second test is
that the fit explains stellar lines at all: line_snr = sqrt(chi2(line-free continuum) -
chi2(model)), both against the noise alone; below ``min_line_snr`` the labels are
unconstrained.
"""

from __future__ import annotations

import numpy as np

CONTINUUM_FLOOR = 0.005  # continuum placement / flat-field error per pixel (fraction)


def fit_quality(
    flux: np.ndarray,
    variance: np.ndarray,
    model: np.ndarray,
    continuum: np.ndarray,
    good: np.ndarray,
    floor: float,
    n_par: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(fit_chi2, line_snr) per spectrum for normalised data (n, npix): ``model`` is the
    best-fit model times its continuum, ``continuum`` the best line-free continuum alone
    and ``variance`` the noise variance; only ``good`` pixels count."""
    flux, variance, model, continuum = (
        np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (flux, variance, model, continuum)
    )
    good = np.atleast_2d(good) & np.isfinite(variance) & (variance > 0)
    var = np.where(good, variance, 1.0)
    depth = 1.0 - np.where(good, model / np.where(continuum > 0, continuum, 1.0), 1.0)
    r2 = np.where(good, (flux - model) ** 2, 0.0)
    total = var + CONTINUUM_FLOOR**2 + (floor * depth) ** 2
    dof = np.maximum(good.sum(axis=1) - n_par, 1)
    fit_chi2 = np.sum(r2 / total, axis=1) / dof
    gain = np.sum(np.where(good, (flux - continuum) ** 2, 0.0) / var - r2 / var, axis=1)
    return fit_chi2, np.sqrt(np.maximum(gain, 0.0))


def poor_fit(fit_chi2, line_snr, max_chi2_red: float, min_line_snr: float) -> np.ndarray:
    """True where the model does not describe the spectrum (see the module docstring)."""
    return (np.asarray(fit_chi2) > max_chi2_red) | (np.asarray(line_snr) < min_line_snr)
