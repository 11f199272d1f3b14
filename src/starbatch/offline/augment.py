"""How real spectra differ from the emulator's, applied to noise-free model flux on the
apStar grid: the training augmentation of apogeenet (``augmented_star``) and the held-out
perturbations of the robustness benchmark (``perturbed_star``). The two use different
families or ranges on purpose, so the benchmark measures what training never saw:

- continuum: training = Planck x quadratic wiggle x per-chip gain 0.9-1.1 x per-chip
  cubic (+-3%); benchmark = power law lambda^a (a -8..4) x 1-3 sinusoidal ripples
  (periods 80-400 A, 0.5-2%) x per-chip gain.
- line-spread function: training = Gaussian, R 20,000-25,000; benchmark = a Gaussian
  core + 10% in a wing twice as wide, R 18,500-20,000 or 25,000-26,500.
- radial velocity: training = residuals N(0, 0.5 km/s) clipped at 1 km/s; benchmark =
  offsets of 1-2 km/s of either sign.
- noise: training = independent Gaussian, S/N log-uniform 20-300; benchmark = Student-t
  (4 dof) smoothed over 3 pixels (correlated, heavy-tailed), same per-pixel sigma.
- bad pixels: training = 0-3% in runs of 1-8 pixels, chip-gap edges widened by 0-25
  pixels; benchmark = 1% single pixels, as the clean sets.
- telluric-like residuals: training = 0-10 unflagged narrow features of -4%..+2%;
  benchmark = none.
- line strengths: training = every line depth times a smooth random factor (rms 10%,
  structure on 10-200 A: what the emulator gets wrong on real stars, where gridfit needs
  a 45% line-depth floor); benchmark = none.

The emulator is at R = 22,500 (its Gaussian LSF). A wider LSF is a further Gaussian
convolution; a narrower one is the first-order deconvolution f - (d / s^2) (f - G_s * f)
with d = sigma_new^2 - sigma_model^2 < 0 (exact to first order in d; |d| < 1 pixel^2 here).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, shift

from starbatch.methods.continuum import CHIPS, chip_of, chip_x
from starbatch.methods.emulator import Emulator
from starbatch.sdss.spectrum import apstar_wavelength

from .synthetic import CHIP_GAPS, continuum_shape, gap_mask, observe

C_KMS = 299792.458
PIXEL_KMS = C_KMS * np.log(10.0) * 6e-6  # apStar pixel: 6e-6 dex = 4.14 km/s
MODEL_R = 22500.0


def sigma_pixels(resolution: float) -> float:
    """Gaussian LSF sigma in apStar pixels for resolving power R = lambda / FWHM."""
    return C_KMS / resolution / (2.0 * np.sqrt(2.0 * np.log(2.0))) / PIXEL_KMS


def change_lsf(flux: np.ndarray, sigma_new: float, sigma_model: float | None = None):
    """Model flux (npix,) at R_model re-broadened to a Gaussian LSF of ``sigma_new`` pixels."""
    sigma_model = sigma_pixels(MODEL_R) if sigma_model is None else sigma_model
    d = sigma_new**2 - sigma_model**2
    if d >= 0:
        return gaussian_filter1d(flux, np.sqrt(d), mode="nearest") if d > 1e-6 else flux
    return flux - d * (flux - gaussian_filter1d(flux, 1.0, mode="nearest"))


def shift_rv(flux: np.ndarray, v_kms: float) -> np.ndarray:
    """Doppler-shift flux on the log-lambda grid by ``v_kms`` (cubic spline)."""
    return shift(flux, v_kms / PIXEL_KMS, order=3, mode="nearest")


def _chip_polynomial(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Per chip: a gain 0.9-1.1 times a random cubic of +-``amplitude``."""
    wave = apstar_wavelength()
    chip = chip_of(wave)
    out = np.ones(len(wave))
    for i in range(len(CHIPS)):
        cols = chip == i
        x = chip_x(wave[cols], i)
        c = rng.uniform(-amplitude, amplitude, 3)
        out[cols] = rng.uniform(0.9, 1.1) * (1 + c[0] * x + c[1] * x**2 + c[2] * x**3)
    return out


def _runs(rng: np.random.Generator, fraction: float, npix: int) -> np.ndarray:
    """A mask with about ``fraction`` of pixels in runs of 1-8 pixels."""
    mask = np.zeros(npix, dtype=bool)
    n = int(fraction * npix / 4.5)
    for start, length in zip(rng.integers(0, npix, n), rng.integers(1, 9, n), strict=True):
        mask[start : start + length] = True
    return mask


def _widened_gaps(rng: np.random.Generator, npix: int) -> np.ndarray:
    """Chip gaps with each inner edge moved outwards by 0-25 pixels (real gaps move with
    the star's RV and the detector edges are often masked)."""
    gaps = gap_mask(npix)
    for lo, hi in CHIP_GAPS:
        gaps[max(lo - rng.integers(0, 26), 0) : lo] = True
        gaps[hi + 1 : hi + 1 + rng.integers(0, 26)] = True
    return gaps


def _tellurics(rng: np.random.Generator, npix: int) -> np.ndarray:
    """A multiplicative pattern of 0-10 narrow unflagged features (-4%..+2%)."""
    out = np.ones(npix)
    x = np.arange(npix)
    for _ in range(rng.integers(0, 11)):
        centre, width = rng.uniform(0, npix), rng.uniform(1.0, 3.0)
        out += rng.uniform(-0.04, 0.02) * np.exp(-0.5 * ((x - centre) / width) ** 2)
    return out


def _line_strengths(rng: np.random.Generator, rms: float = 0.1) -> np.ndarray:
    """A smooth random factor for line depths: 20 sinusoids with periods 10-200 A."""
    wave = apstar_wavelength()
    field = np.zeros(len(wave))
    for _ in range(20):
        period = np.exp(rng.uniform(np.log(10.0), np.log(200.0)))
        field += np.sin(2 * np.pi * wave / period + rng.uniform(0, 2 * np.pi))
    return np.exp(rms * field / np.sqrt(10.0))  # 20 unit sinusoids: variance 10


def augmented_star(emulator: Emulator, labels, snr: float, rng: np.random.Generator):
    """(flux, error, bitmask) of one training spectrum with the augmentation above."""
    model = emulator.flux(np.asarray(labels, dtype=np.float64))
    model = 1.0 - (1.0 - model) * _line_strengths(rng)
    model = change_lsf(model, sigma_pixels(rng.uniform(20000.0, 25000.0)))
    model = shift_rv(model, float(np.clip(rng.normal(0.0, 0.5), -1.0, 1.0)))
    model = model * _tellurics(rng, len(model))
    cont = continuum_shape(labels[0], rng) * _chip_polynomial(rng, 0.03)
    bad = _runs(rng, rng.uniform(0.0, 0.03), len(model))
    return observe(model, cont, snr, rng, 0.0, bad=bad, gaps=_widened_gaps(rng, len(model)))


def _ripple(rng: np.random.Generator) -> np.ndarray:
    """Power law times 1-3 sinusoidal ripples times a per-chip gain (no cubic part)."""
    wave = apstar_wavelength()
    out = (wave / 16000.0) ** rng.uniform(-8.0, 4.0)
    for _ in range(rng.integers(1, 4)):
        period, amp = rng.uniform(80.0, 400.0), rng.uniform(0.005, 0.02)
        out = out * (1 + amp * np.sin(2 * np.pi * wave / period + rng.uniform(0, 2 * np.pi)))
    chip = chip_of(wave)
    gains = rng.uniform(0.9, 1.1, len(CHIPS))
    return out * np.where(chip >= 0, gains[np.clip(chip, 0, None)], 1.0)


def _wing_lsf(flux: np.ndarray, resolution: float) -> np.ndarray:
    """A non-Gaussian LSF of the same second moment as a Gaussian at ``resolution``: 90% in
    a core, 10% in a wing twice as wide."""
    total = sigma_pixels(resolution)
    core = total / np.sqrt(0.9 + 0.1 * 4.0)
    return 0.9 * change_lsf(flux, core) + 0.1 * change_lsf(flux, 2.0 * core)


def correlated_t_noise(shape, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Student-t (4 dof) noise smoothed over 3 pixels."""
    t = rng.standard_t(4.0, shape) / np.sqrt(2.0)
    kernel = np.array([0.25, 0.5, 0.25]) / np.sqrt(0.375)
    return np.convolve(t, kernel, mode="same")


def perturbed_star(emulator: Emulator, labels, snr: float, rng: np.random.Generator):
    """(flux, error, bitmask) of one benchmark spectrum with the held-out perturbations."""
    model = emulator.flux(np.asarray(labels, dtype=np.float64))
    resolution = rng.choice([rng.uniform(18500.0, 20000.0), rng.uniform(25000.0, 26500.0)])
    model = _wing_lsf(model, resolution)
    model = shift_rv(model, rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 2.0))
    cont = _ripple(rng) * 10.0 ** rng.uniform(2.0, 3.0)
    return observe(model, cont, snr, rng, 0.01, noise=correlated_t_noise)
