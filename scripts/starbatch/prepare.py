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
(``visit_to_apstar``), so every learned analysis sees one wavelength grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.polynomial import legendre

from .continuum import CHIPS, chip_of, chip_x
from .readers import SpectrumError, check_apstar_grid
from .spectrum import Spectrum, apstar_wavelength

CONT_DEGREE = 3
MIN_CONT_PIXELS = 30
C_KMS = 299792.458


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


def normalise_spectra(spectra, cont_mask: np.ndarray, degree: int = CONT_DEGREE) -> Prepared:
    """``normalise_many`` for Spectrum objects on the apStar grid."""
    return normalise_many(
        np.stack([s.flux for s in spectra]),
        np.stack([s.error for s in spectra]),
        np.stack([s.bad for s in spectra]),
        cont_mask,
        degree=degree,
    )


def visit_to_apstar(spectrum: Spectrum, vrad: float | None = None) -> Spectrum:
    """An apVisit spectrum (observed frame, vacuum) on the rest-frame apStar grid.

    The apVisit wavelengths are topocentric, so the Doppler shift to remove is the header
    VRAD (the observed radial velocity; VHELIO = VRAD + BC is the heliocentric one):
    lambda_rest = lambda_obs / (1 + VRAD / c). Flux and error are linearly interpolated
    (the visit pixels, ~0.17 A, are finer than the apStar ones, ~0.22 A; the interpolated
    error ignores the correlation this introduces). A grid pixel is bad when either visit
    neighbour is bad, when it falls outside the visit coverage, or in a chip gap."""
    if vrad is None:
        vrad = spectrum.meta.get("vrad")
    if vrad is None or not np.isfinite(vrad):
        raise SpectrumError(
            f"{spectrum.meta.get('path', 'visit spectrum')}: no VRAD in the header, "
            "cannot shift the visit to the rest frame"
        )
    wave = np.asarray(spectrum.wavelength, dtype=np.float64) / (1.0 + float(vrad) / C_KMS)
    target = apstar_wavelength()
    right = np.searchsorted(wave, target)
    inside = (right > 0) & (right < len(wave))
    right = np.clip(right, 1, len(wave) - 1)
    left = right - 1
    step = wave[right] - wave[left]
    t = (target - wave[left]) / step
    typical = np.median(np.diff(wave))
    bad_in = np.asarray(spectrum.bad, bool)
    bad = ~inside | bad_in[left] | bad_in[right] | (step > 2.5 * typical)
    flux_in = np.where(bad_in, 0.0, spectrum.flux)
    err_in = np.where(bad_in, 0.0, spectrum.error)
    flux = (1 - t) * flux_in[left] + t * flux_in[right]
    error = (1 - t) * err_in[left] + t * err_in[right]
    flux = np.where(bad, np.nan, flux)
    error = np.where(bad, np.inf, error)
    meta = dict(spectrum.meta, rest_frame_vrad=float(vrad), resampled="apStar grid")
    out = replace(spectrum, wavelength=target, flux=flux, error=error, bad=bad, meta=meta)
    return check_apstar_grid(out)
