"""apVisit spectra onto the rest-frame apStar grid, so the apStar analyses can take them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from starbatch.sdss.readers import SpectrumError, check_apstar_grid
from starbatch.sdss.spectrum import Spectrum, apstar_wavelength

C_KMS = 299792.458


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
