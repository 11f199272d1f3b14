"""Pseudo-continuum normalisation of an apStar spectrum, chip by chip.

Why this method: APOGEE's three detectors have separate throughputs, so the
continuum is fitted per chip; a low-order Legendre polynomial through the good
pixels, iterated with asymmetric sigma clipping (drop pixels more than ``low``
sigma below the fit, i.e. absorption lines, and more than ``high`` sigma above it,
i.e. cosmics and sky residuals), follows the upper envelope of the spectrum like
ASPCAP's normalisation does, and is linear algebra only (fast, deterministic).

It is a *pseudo*-continuum: in a line-blanketed cool star it lies below the true
continuum, and clipping biases it upwards by a fraction of the noise. Our models
are normalised to the true continuum, so the pseudo-continuum alone would bias the
labels; gridfit therefore fits (low-order polynomial per chip) x model to the
normalised data, which absorbs that offset. This module only takes the large-scale
shape (instrument response, stellar SED) out so that polynomial can stay low order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

# APOGEE detector coverage, vacuum Angstrom (blue, green, red); outside = chip gaps.
CHIPS = ((15140.0, 15810.0), (15850.0, 16440.0), (16470.0, 16960.0))
MIN_CHIP_PIXELS = 50  # fewer good pixels than this: the chip's continuum is not fitted


@dataclass
class Normalised:
    flux: np.ndarray  # flux / continuum (NaN where no continuum)
    error: np.ndarray  # error / continuum; inf where bad
    bad: np.ndarray  # input bad | chip gaps | unfitted chip | non-finite input
    continuum: np.ndarray  # NaN where not fitted


def chip_of(wavelength: np.ndarray) -> np.ndarray:
    """Chip index (0, 1, 2) of each pixel; -1 in the gaps and beyond the ends."""
    chip = np.full(len(wavelength), -1, dtype=int)
    for i, (lo, hi) in enumerate(CHIPS):
        chip[(wavelength >= lo) & (wavelength <= hi)] = i
    return chip


def chip_x(wavelength: np.ndarray, i: int) -> np.ndarray:
    """Wavelength scaled to [-1, 1] across chip ``i`` (the Legendre domain)."""
    lo, hi = CHIPS[i]
    return (2.0 * wavelength - (lo + hi)) / (hi - lo)


def good_pixels(flux: np.ndarray, error: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Usable pixels: not flagged, finite flux, finite positive error."""
    with np.errstate(invalid="ignore"):
        return ~np.asarray(bad, bool) & np.isfinite(flux) & np.isfinite(error) & (error > 0)


def fit_continuum(
    wavelength: np.ndarray,
    flux: np.ndarray,
    error: np.ndarray,
    bad: np.ndarray,
    degree: int = 3,
    low: float = 1.0,
    high: float = 3.0,
    max_iter: int = 10,
) -> np.ndarray:
    """Per-chip iterative, upper-clipped, error-weighted Legendre fit; NaN outside
    chips and on chips with fewer than MIN_CHIP_PIXELS good pixels."""
    wavelength = np.asarray(wavelength, dtype=float)
    flux = np.asarray(flux, dtype=float)
    error = np.asarray(error, dtype=float)
    good = good_pixels(flux, error, bad)
    chip = chip_of(wavelength)
    continuum = np.full(len(flux), np.nan)
    for i in range(len(CHIPS)):
        in_chip = chip == i
        use = good & in_chip
        if use.sum() < MIN_CHIP_PIXELS:
            continue
        design = legendre.legvander(chip_x(wavelength[in_chip], i), degree)
        f, e, use_c = flux[in_chip], error[in_chip], use[in_chip]
        for _ in range(max_iter):
            w = 1.0 / e[use_c]
            coef = np.linalg.lstsq(design[use_c] * w[:, None], f[use_c] * w, rcond=None)[0]
            fit = design @ coef
            with np.errstate(invalid="ignore"):
                z = (f - fit) / e
            keep = good[in_chip] & (z > -low) & (z < high)
            # Stop when stable, or before clipping leaves too few pixels to fit.
            if np.array_equal(keep, use_c) or keep.sum() < MIN_CHIP_PIXELS:
                break
            use_c = keep
        continuum[in_chip] = fit
    return continuum


def normalise(
    wavelength: np.ndarray, flux: np.ndarray, error: np.ndarray, bad: np.ndarray, **kwargs
) -> Normalised:
    """Divide flux and error by fit_continuum; kwargs go to fit_continuum."""
    flux = np.asarray(flux, dtype=float)
    error = np.asarray(error, dtype=float)
    continuum = fit_continuum(wavelength, flux, error, bad, **kwargs)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(continuum) & (continuum > 0)
        out_bad = ~(good_pixels(flux, error, bad) & ok)
        norm_flux = np.where(ok, flux / continuum, np.nan)
        norm_error = np.where(out_bad, np.inf, error / continuum)
    return Normalised(flux=norm_flux, error=norm_error, bad=out_bad, continuum=continuum)
