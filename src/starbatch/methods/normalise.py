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
4. Optionally (``flatten_locally``, apogeenet from v2): the normalised flux is divided by
   its running mean over the continuum pixels of the same chip (a triangular window of
   ~4 x LOCAL_HALF pixels, ~45 A). A cubic per chip follows only the large-scale shape; a
   flux-calibration ripple, a different instrument response or a chip-edge roll-off
   survive it and a learned model reads them as line depths. The running mean removes
   every continuum variation smoother than the window, whatever made it, and, like the
   cubic, it is linear in the flux, so noise does not bias it (a running median or an
   upper percentile would move with S/N: ~0.5 sigma of the noise, as clipping does).

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
LOCAL_HALF = 50  # half-width of each of the two box passes of the running mean (pixels)
MIN_LOCAL_PIXELS = 8  # fewer good continuum pixels in a window: no local correction there


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


def _box(a: np.ndarray, half: int) -> np.ndarray:
    """Running sum over 2 * half + 1 columns (zero beyond the ends), via a cumulative sum."""
    c = np.cumsum(np.pad(a, ((0, 0), (half + 1, half))), axis=1)
    return c[:, 2 * half + 1 :] - c[:, : -(2 * half + 1)]


def flatten_locally(
    p: Prepared, cont_mask: np.ndarray, half: int = LOCAL_HALF, wavelength: np.ndarray | None = None
) -> Prepared:
    """Divide normalised spectra by their running mean over good continuum pixels, chip by
    chip (step 4 of the module docstring). Two box passes make a triangular kernel; where a
    window holds fewer than MIN_LOCAL_PIXELS continuum pixels the flux is left as it is."""
    wavelength = apstar_wavelength() if wavelength is None else np.asarray(wavelength)
    chip = chip_of(wavelength)
    use = ~p.bad & np.asarray(cont_mask, bool)[None, :]
    local = np.ones(p.flux.shape)
    for i in range(len(CHIPS)):
        cols = np.flatnonzero(chip == i)
        w = use[:, cols].astype(np.float64)
        den = _box(_box(w, half), half)
        num = _box(_box(w * p.flux[:, cols], half), half)
        # den counts weighted pixels (the kernel peaks at 2 * half + 1); a few is enough.
        enough = _box(w, 2 * half) >= MIN_LOCAL_PIXELS
        with np.errstate(invalid="ignore", divide="ignore"):
            local[:, cols] = np.where(enough & (den > 0), num / np.where(den > 0, den, 1), 1.0)
    local = np.where(local > 0.2, local, 1.0)
    flux = np.where(p.bad, 1.0, p.flux / local)
    error = np.where(p.bad, np.inf, p.error / local)
    return Prepared(flux=flux, error=error, bad=p.bad)
