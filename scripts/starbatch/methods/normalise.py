"""Input preparation shared by the learned analyses (apogeenet, cannon) and their training.

Both are trained on synthetic spectra from the emulator and applied to real ones, so the
same preparation must run on both sides, and it must not depend on the noise level:

1. Bad pixels are the reader's ``bad`` (masked APOGEE_PIXMASK bits, NaN, chip gaps,
   non-positive error); they get zero weight everywhere below.
2. Continuum: per chip, a weighted least-squares Legendre polynomial (degree
   ``CONT_DEGREE``) through a fixed set of *continuum pixels* (pixels whose model flux is
   within a few per cent of the continuum for 95% of realistic stars; chosen once from the
   emulator at training time and stored with each model). No sigma clipping: the fit is
   linear in the flux, so noise does not bias it (clipping does, by ~0.5 sigma, which would
   make the labels depend on S/N). A chip with fewer than ``MIN_CONT_PIXELS`` good
   continuum pixels is not normalised and all its pixels count as bad.
3. The normalised flux and error are flux / continuum and error / continuum.

apVisit spectra are first moved to the rest frame and resampled onto the apStar grid
(starbatch.methods.resample), so every learned analysis sees one wavelength grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

from starbatch.sdss.spectrum import apstar_wavelength

from .continuum import CHIPS, chip_of, chip_x

CONT_DEGREE = 3
MIN_CONT_PIXELS = 30


@dataclass
class Prepared:
    """Normalised spectra, one row each: flux and error / continuum; bad pixels have
    flux 1 (the continuum) and error inf."""

    flux: np.ndarray  # (n, npix) float64
    error: np.ndarray  # (n, npix) float64, inf where bad
    bad: np.ndarray  # (n, npix) bool

    @property
    def ivar(self) -> np.ndarray:
        return np.where(self.bad, 0.0, 1.0 / np.where(self.bad, 1.0, self.error) ** 2)


def continuum_pixels(model_flux: np.ndarray, percentile: float = 5.0, threshold: float = 0.96):
    """Pixels whose normalised model flux is >= ``threshold`` for all but ``percentile`` %
    of the spectra ``model_flux`` (n, npix): near-continuum pixels for nearly every star."""
    return np.percentile(np.asarray(model_flux), percentile, axis=0) >= threshold


def _bases(wavelength: np.ndarray, degree: int) -> list[tuple[np.ndarray, np.ndarray]]:
    chip = chip_of(wavelength)
    out = []
    for i in range(len(CHIPS)):
        cols = np.flatnonzero(chip == i)
        out.append((cols, legendre.legvander(chip_x(wavelength[cols], i), degree)))
    return out


def normalise_many(
    flux: np.ndarray,
    error: np.ndarray,
    bad: np.ndarray,
    cont_mask: np.ndarray,
    wavelength: np.ndarray | None = None,
    degree: int = CONT_DEGREE,
) -> Prepared:
    """Continuum-normalise (n, npix) spectra at once (batched normal equations per chip)."""
    wavelength = apstar_wavelength() if wavelength is None else np.asarray(wavelength)
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    error = np.atleast_2d(np.asarray(error, dtype=np.float64))
    bad = np.atleast_2d(np.asarray(bad, dtype=bool))
    with np.errstate(invalid="ignore"):
        bad = bad | ~np.isfinite(flux) | ~np.isfinite(error) | ~(error > 0)
    safe_err = np.where(bad, 1.0, error)
    safe_flux = np.where(bad, 0.0, flux)
    continuum = np.full(flux.shape, np.nan)
    for cols, basis in _bases(wavelength, degree):
        use = ~bad[:, cols] & np.asarray(cont_mask, bool)[cols]
        w = np.where(use, 1.0 / safe_err[:, cols] ** 2, 0.0)
        # Weights are relative: scale each spectrum's to mean 1 for conditioning.
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300) * max(basis.shape[0], 1)
        k = basis.shape[1]
        outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(cols), k * k)
        a = (w @ outer).reshape(-1, k, k)
        b = (w * safe_flux[:, cols]) @ basis
        enough = use.sum(axis=1) >= MIN_CONT_PIXELS
        a[~enough] = np.eye(basis.shape[1])
        coef = np.linalg.solve(a, b[..., None])[..., 0]
        fit = coef @ basis.T
        fit[~enough] = np.nan
        continuum[:, cols] = fit
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(continuum) & (continuum > 0)
        out_bad = bad | ~ok
        norm_flux = np.where(out_bad, 1.0, safe_flux / np.where(ok, continuum, 1.0))
        norm_err = np.where(out_bad, np.inf, safe_err / np.where(ok, continuum, 1.0))
    return Prepared(flux=norm_flux, error=norm_err, bad=out_bad)
