"""Derive the apStar-grid emulator from Doppler's cool-star Cannon model.

The source model (see starbatch/resources/emulator/README.md) predicts continuum-normalised flux at
0.1 A steps in AIR wavelengths with (almost) no instrumental broadening. APOGEE spectra are
in VACUUM on a log-linear grid at R ~ 22,500, so we: convert air -> vacuum, convolve with a
Gaussian LSF of constant resolving power, and resample onto ``apstar_wavelength()``.

The flux is linear in ``theta`` (flux = design @ theta.T), so smoothing and resampling each
theta column is exactly the same as smoothing and resampling every predicted spectrum.
"""

from __future__ import annotations

import json

import numpy as np
from scipy.ndimage import gaussian_filter1d

from starbatch.methods.emulator import LABEL_NAMES, design_matrix
from starbatch.sdss.spectrum import apstar_wavelength

APOGEE_RESOLUTION = 22500.0
# Model pixels kept beyond the apStar range so the LSF wings see real flux, not an edge.
MARGIN_ANGSTROM = 5.0
# Working log10-lambda step: finer than the model's 0.1 A (2.6e-6 dex at 17000 A).
FINE_DLOG10 = 1.0e-6
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def air_to_vacuum(wave_air: np.ndarray) -> np.ndarray:
    """Air -> vacuum wavelength (Angstrom), Ciddor (1996, Appl. Opt. 35, 1566) eq. 3 for
    standard air, the formula the IAU adopts and IDL astrolib ``airtovac`` uses.
    n depends on the vacuum wavenumber, so iterate: 3 rounds converge to < 1e-9 A."""
    wave_air = np.asarray(wave_air, dtype=np.float64)
    wave_vac = wave_air.copy()
    for _ in range(3):
        sigma2 = (1.0e4 / wave_vac) ** 2  # vacuum wavenumber squared, micron^-2
        n = 1.0 + 0.05792105 / (238.0185 - sigma2) + 0.00167917 / (57.362 - sigma2)
        wave_vac = wave_air * n
    return wave_vac


def smooth_and_resample(
    wave: np.ndarray, columns: np.ndarray, new_wave: np.ndarray, resolution: float
) -> np.ndarray:
    """Convolve ``columns`` (npix, ncol) sampled at increasing ``wave`` with a Gaussian of
    FWHM = lambda / resolution, then linearly interpolate onto ``new_wave``.

    Constant R is a constant width in log-lambda, so the convolution is done on a uniform
    log10 grid where one fixed-sigma kernel serves every wavelength."""
    columns = np.asarray(columns, dtype=np.float64)
    loglam = np.log10(wave)
    fine = np.arange(loglam[0], loglam[-1], FINE_DLOG10)
    sampled = np.stack([np.interp(fine, loglam, c) for c in columns.T], axis=1)
    sigma_pix = FWHM_TO_SIGMA / resolution / np.log(10.0) / FINE_DLOG10
    smoothed = gaussian_filter1d(sampled, sigma_pix, axis=0, mode="nearest", truncate=5.0)
    target = np.log10(new_wave)
    return np.stack([np.interp(target, fine, c) for c in smoothed.T], axis=1)


def derive(src: dict, resolution: float = APOGEE_RESOLUTION) -> dict:
    """Arrays of the apStar-grid emulator (the keys ``Emulator.load`` reads) from the
    arrays of the source model npz, in float64 (see ``as_float32`` for the stored form)."""
    wave_out = apstar_wavelength()
    wave_vac = air_to_vacuum(src["dispersion_air_angstrom"])
    keep = (wave_vac > wave_out[0] - MARGIN_ANGSTROM) & (wave_vac < wave_out[-1] + MARGIN_ANGSTROM)
    if wave_vac[keep][0] > wave_out[0] - 1.0 or wave_vac[keep][-1] < wave_out[-1] + 1.0:
        raise ValueError("source model does not cover the apStar wavelength range")
    # s2 (the model's intrinsic variance) gets the same smoothing, i.e. a local average:
    # an approximation, since smoothing correlated noise does not simply average variances.
    columns = np.column_stack([src["theta"][keep], src["s2"][keep]])
    out = smooth_and_resample(wave_vac[keep], columns, wave_out, resolution)
    labels = np.asarray(src["training_set_labels"], dtype=np.float64)
    lo, mid, hi = np.percentile(labels, [2.5, 50.0, 97.5], axis=0)
    source_names = [str(n).lower() for n in src["label_names"]]
    if tuple(source_names) != LABEL_NAMES:
        raise ValueError(f"unexpected source label names {source_names}")
    return {
        "theta": out[:, :-1],
        "s2": out[:, -1],
        "wavelength": wave_out,
        "fid": mid,
        "scale": hi - lo,
        "terms_json": np.array(str(src["terms_json"])),
        "label_names": np.array(LABEL_NAMES),
        "label_min": labels.min(axis=0),
        "label_max": labels.max(axis=0),
        "resolution": np.array(resolution),
    }


def as_float32(derived: dict) -> dict:
    """Store theta and s2 as float32: halves the committed file (~0.7 MB); the flux error
    this introduces is checked by ``float32_flux_error``."""
    return {
        **derived,
        "theta": derived["theta"].astype(np.float32),
        "s2": derived["s2"].astype(np.float32),
    }


def corner_labels(derived: dict, n: int = 5) -> np.ndarray:
    """An n^3 grid of labels spanning the training range, for error checks."""
    axes = [
        np.linspace(a, b, n)
        for a, b in zip(derived["label_min"], derived["label_max"], strict=True)
    ]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def float32_flux_error(derived: dict, theta64: np.ndarray) -> float:
    """Max |flux(float32 theta) - flux(float64 theta)| over a grid across the label range."""
    x = (corner_labels(derived) - derived["fid"]) / derived["scale"]
    design = design_matrix(x, json.loads(str(derived["terms_json"])))
    flux32 = design @ derived["theta"].astype(np.float64).T
    return float(np.max(np.abs(flux32 - design @ theta64.T)))
