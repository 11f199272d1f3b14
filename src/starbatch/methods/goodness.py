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
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fit_chi2, line_snr) per spectrum for normalised data (n, npix): ``model`` is the
    best-fit model times its continuum, ``continuum`` the best line-free continuum alone
    and ``variance`` the variance fit_chi2 adds the floor to; line_snr is against the
    ``noise`` variance alone (default ``variance``: a model's own scatter added there
    would call the weak lines of a metal-poor star insignificant). Only ``good`` pixels
    count."""
    flux, variance, model, continuum = (
        np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (flux, variance, model, continuum)
    )
    good = np.atleast_2d(good) & np.isfinite(variance) & (variance > 0)
    var = np.where(good, variance, 1.0)
    noise_var = var if noise is None else np.where(good, np.atleast_2d(noise), 1.0)
    depth = 1.0 - np.where(good, model / np.where(continuum > 0, continuum, 1.0), 1.0)
    r2 = np.where(good, (flux - model) ** 2, 0.0)
    total = var + CONTINUUM_FLOOR**2 + (floor * depth) ** 2
    dof = np.maximum(good.sum(axis=1) - n_par, 1)
    fit_chi2 = np.sum(r2 / total, axis=1) / dof
    gain = np.sum(np.where(good, (flux - continuum) ** 2 - r2, 0.0) / noise_var, axis=1)
    return fit_chi2, np.sqrt(np.maximum(gain, 0.0))


def poor_fit(fit_chi2, line_snr, max_chi2_red: float, min_line_snr: float) -> np.ndarray:
    """True where the model does not describe the spectrum (see the module docstring)."""
    return (np.asarray(fit_chi2) > max_chi2_red) | (np.asarray(line_snr) < min_line_snr)


# Correlated excess below this many of its noise sigmas is taken as noise (widening).
EXCESS_NSIGMA = 2.0


def neighbour_correlation(z: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(n,) mean product of whitened residuals ``z`` (n, npix) of neighbouring pixels that
    are both ``good``: ~0 for noise alone, about chi2_red - 1 for a misfit that is smooth
    over a few pixels (a line the model gets wrong)."""
    zg = np.where(good, z, 0.0)  # a pair with a bad pixel adds 0
    pairs = (good[:, 1:] & good[:, :-1]).sum(axis=1)
    return (zg[:, 1:] * zg[:, :-1]).sum(axis=1) / np.maximum(pairs, 1)


def correlated_excess(chi2_red, resid_corr, n_pix) -> np.ndarray:
    """The part of chi2_red - 1 that neighbouring pixels share, less EXCESS_NSIGMA times
    max(1, chi2_red) sqrt(2 / n_pix), never below 0. For white residuals of variance
    chi2_red that is chi2_red's own noise at chi2_red = 1 and sqrt(2) times resid_corr's
    (~N(0, chi2_red^2 / n_pix)) at any chi2_red: noise alone stays under it."""
    chi2_red = np.asarray(chi2_red, dtype=np.float64)
    noise = np.maximum(chi2_red, 1.0) * np.sqrt(2.0 / np.asarray(n_pix))
    excess = np.minimum(chi2_red - 1.0, resid_corr)
    return np.maximum(excess - EXCESS_NSIGMA * noise, 0.0)


def widening(chi2_red, resid_corr, n_pix, scale) -> np.ndarray:
    """Factors (..., 3) on a fit's noise errors: sqrt(max(1, chi2_red) + scale^2 * excess).
    Excess chi2 that is white (noise underestimated) widens by sqrt(chi2_red), as usual;
    excess that neighbouring pixels share (correlated_excess: a model wrong in its LSF,
    continuum or line strengths) moves labels far more than white noise of the same
    chi2, by ``scale`` per label (calibrated: offline.calibration.calibrate_excess)."""
    chi2_red = np.asarray(chi2_red, dtype=np.float64)[..., None]
    excess = correlated_excess(chi2_red[..., 0], resid_corr, n_pix)[..., None]
    return np.sqrt(np.maximum(chi2_red, 1.0) + np.square(scale) * excess)


def noise_correlation(resid: np.ndarray, error: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(n,) how much more noise an average over many pixels of spectra (n, npix) has than
    white noise of the same per-pixel ``error`` gives: sqrt(1 + 2 rho_1 + 2 rho_2), at least
    1, from the neighbour correlations rho_k of the residuals ``resid`` of a fit. Resampled
    spectra (an apStar is its visits interpolated onto one grid) have such noise, and
    noise draws or errors made per pixel do not see it.

    rho_k comes from the differences of pixels k apart, E[(r_i - r_i+k)^2] = s_i^2 +
    s_i+k^2 - 2 rho_k s_i s_i+k, less EXCESS_NSIGMA times its noise for white residuals
    (sqrt(2 / pairs)) and clipped to [0, 1], so white noise gives 1. A misfit smooth over a
    few pixels adds to the differences and pulls rho_k down, towards no correction: the
    factor is left to what noise does, the misfit to the terms that cover it."""
    good = good & np.isfinite(error) & (error > 0)
    r = np.where(good, resid, 0.0)
    s = np.where(good, error, 1.0)
    total = np.ones(len(r))
    for lag in (1, 2):
        pair = good[:, lag:] & good[:, :-lag]
        a, b = s[:, lag:], s[:, :-lag]
        rho = np.where(pair, (a**2 + b**2 - (r[:, lag:] - r[:, :-lag]) ** 2) / (2 * a * b), 0.0)
        pairs = np.maximum(pair.sum(axis=1), 1)
        rho = rho.sum(axis=1) / pairs - EXCESS_NSIGMA * np.sqrt(2.0 / pairs)
        total += 2 * np.clip(rho, 0.0, 1.0)
    return np.sqrt(total)
