"""Spectra the models cannot describe, for testing and measuring POOR_FIT: a hot star
beyond the grid (Brackett lines only), a featureless continuum, an unflagged artefact and
a wrong wavelength solution, beside a giant the models do describe; all at S/N 200."""

from __future__ import annotations

import numpy as np

from starbatch.methods.emulator import Emulator
from starbatch.sdss.readers import bad_pixels
from starbatch.sdss.spectrum import Spectrum, apstar_wavelength

from .augment import shift_rv
from .synthetic import continuum_shape, observe

# Brackett series (vacuum A) in the APOGEE band: a hot star's only strong lines.
BRACKETT = (15196, 15265, 15345, 15443, 15561, 15705, 15885, 16114, 16412, 16811)


def _spectrum(model, rng, snr, teff):
    flux, error, mask = observe(model, continuum_shape(teff, rng), snr, rng)
    bad = bad_pixels(flux, error, mask)
    return Spectrum(apstar_wavelength(), flux, np.where(bad, np.inf, error), bad, {})


def out_of_model_spectra(emulator: Emulator, seed: int = 12, snr: float = 200.0) -> dict:
    """{name: Spectrum}: "giant" (inside the model) and four spectra outside it."""
    rng = np.random.default_rng(seed)
    wave = apstar_wavelength()
    giant = emulator.flux([4700.0, 2.5, 0.0])
    hot = np.ones_like(wave)
    for line in BRACKETT:  # ~10,000 K: broad hydrogen lines, no metal lines
        hot -= 0.35 / (1 + ((wave - line) / 6.0) ** 2)
    artefact = giant.copy()
    artefact[1000:1400] *= 1.2  # unflagged persistence-like excess over 90 A
    return {
        "giant": _spectrum(giant, rng, snr, 4700.0),
        "hot star beyond the grid": _spectrum(hot, rng, snr, 10000.0),
        "featureless continuum": _spectrum(np.ones_like(wave), rng, snr, 4700.0),
        "strong artefact": _spectrum(artefact, rng, snr, 4700.0),
        "wrong wavelength solution": _spectrum(shift_rv(giant, 30.0), rng, snr, 4700.0),
    }
