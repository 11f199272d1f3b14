"""Is this a cool star at all? A test that uses no stellar model, for the flag NOT_COOL_STAR.

Every label analysis describes cool stars (3500-7000 K). A learned model asked about a
hot star answers with some cool star, and its goodness of fit is judged against a cool
model too, so a hot star whose broad hydrogen lines that model can partly imitate passes
(docs/evaluation.md). What tells them apart without any model is what the H band of a hot
star looks like: the Brackett series (n = 11-20 -> 4) strong and broad, and almost no metal
lines, while a cool star with Brackett lines that strong (an F star) also has its metal
lines. So, per spectrum (pixels the reader calls bad get no weight):

1. one linear weighted least-squares fit of a cubic per chip plus ``depth`` times a fixed
   Brackett template (Lorentzian-cored profiles ~8 A wide at Br11, depth falling as
   n^-1.5 and width growing as n towards the series limit; 1 at Br11's centre), times the
   chip's median level: ``depth`` is the Br11 depth the spectrum has (noise error from
   the fit);
2. the narrow-line content: the residuals of that fit, high-pass filtered (less a 9-pixel
   running mean: metal lines are 2-4 pixels wide, the Brackett wings ~40), their
   variance less the noise's, as an rms ``metal_rms`` (fraction of the continuum);
3. NOT_COOL_STAR when the metal lines are weak beside the Brackett lines (``metal_rms`` <
   METAL_PER_DEPTH x |depth|) and those are deep (``depth`` > MIN_DEPTH) or in emission
   (``depth`` < -MIN_EMISSION), and significant: no star the models cover looks like
   either. (A cool M giant's CO bands and line blanket make ``depth`` negative too, but
   its metal lines are strong.)

Where the thresholds come from (docs/evaluation.md): on noise-free emulator spectra of
6000 stars over the valid range and beyond it (giants 3600-5500 K within 0.5 dex of the
branch, dwarfs 4000-7000 K, [Fe/H] -2.5..+0.5) ``metal_rms / depth`` is at least 0.033
(7000 K, [Fe/H] -2.3), ``depth`` between -0.032 and 0.108; on the independent set's hot
stars (made by other code, S/N 50-200) ``metal_rms / depth`` is at most 0.019 and
``depth`` at least 0.069, and its emission-line stars have ``depth`` -0.16 to -0.35. The
noise taken out of ``metal_rms`` assumes independent pixels: on a resampled visit at low
S/N (the real F star's, S/N 45) it comes out 0, so such a spectrum rests on MIN_DEPTH
alone (that visit: ``depth`` 0.046); the real stacks give 0.02-0.07."""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

from starbatch.sdss.spectrum import apstar_wavelength

from .continuum import CHIPS, chip_of, chip_x
from .goodness import noise_correlation

# Vacuum wavelengths (A) of the Brackett lines n -> 4 in the APOGEE band.
BRACKETT = {
    11: 16811.1,
    12: 16411.7,
    13: 16113.7,
    14: 15884.9,
    15: 15704.9,
    16: 15560.7,
    17: 15443.1,
    18: 15345.0,
    19: 15264.7,
    20: 15196.0,
}
BR11_WIDTH = 8.0  # half width at half maximum of the template's Br11 (A)
HIGH_PASS = 9  # pixels of the running mean the narrow-line residuals are taken against
POLY_DEGREE = 3
# Decision thresholds (docs/evaluation.md gives what they were set on).
MIN_DEPTH = 0.06
MIN_DEPTH_SNR = 5.0
METAL_PER_DEPTH = 0.025
MIN_EMISSION = 0.08


def brackett_template(wavelength: np.ndarray | None = None) -> np.ndarray:
    """(npix,) the absorption (1 - flux) of the template at unit Br11 depth."""
    wave = apstar_wavelength() if wavelength is None else wavelength
    out = np.zeros(len(wave))
    for n, centre in BRACKETT.items():
        x = (wave - centre) / (BR11_WIDTH * n / 11.0)
        out += (11.0 / n) ** 1.5 * (0.8 / (1.0 + x**2) + 0.2 * np.exp(-0.5 * (x / 0.5) ** 2))
    return out


def _design(wavelength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chip of each pixel, design matrix (npix, 3 x (degree + 1) + 1)): a polynomial per
    chip and the Brackett template (to be scaled by each chip's level)."""
    chip = chip_of(wavelength)
    k = POLY_DEGREE + 1
    x = np.zeros((len(wavelength), 3 * k + 1))
    for i in range(len(CHIPS)):
        cols = chip == i
        x[cols, i * k : (i + 1) * k] = legendre.legvander(chip_x(wavelength[cols], i), POLY_DEGREE)
    x[:, -1] = -brackett_template(wavelength)
    return chip, x


def hydrogen_lines(
    flux: np.ndarray, error: np.ndarray, bad: np.ndarray, wavelength: np.ndarray | None = None
) -> dict:
    """Per spectrum (rows of ``flux``, ``error``, ``bad``; any flux scale): ``depth``
    (Br11 depth, negative for emission), ``depth_err`` and ``metal_rms``."""
    wave = apstar_wavelength() if wavelength is None else wavelength
    flux, error, bad = (np.atleast_2d(a) for a in (flux, error, bad))
    chip, x = _design(wave)
    good = ~bad & (chip >= 0) & np.isfinite(flux) & np.isfinite(error) & (error > 0)
    n = len(flux)
    depth, depth_err, metal = (np.full(n, np.nan) for _ in range(3))
    for s in range(n):
        g = good[s]
        if g.sum() < 300:
            continue
        level = np.zeros(len(wave))
        for i in range(len(CHIPS)):
            on = g & (chip == i)
            level[chip == i] = np.median(flux[s, on]) if on.any() else 0.0
        xs = x.copy()
        xs[:, -1] *= level
        used = np.flatnonzero(np.any(xs[g] != 0, axis=0))  # chips with no pixels drop out
        w = 1.0 / error[s, g] ** 2
        a = (xs[g][:, used] * w[:, None]).T @ xs[g][:, used]
        b = (xs[g][:, used] * w[:, None]).T @ flux[s, g]
        try:
            cov = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            continue
        coef = cov @ b
        depth[s], depth_err[s] = coef[-1], np.sqrt(cov[-1, -1])
        model = xs[:, used] @ coef
        scale = np.where(level > 0, level, 1.0)
        r = np.where(g, (flux[s] - model) / scale, 0.0)
        var = np.where(g, (error[s] / scale) ** 2, 0.0)
        corr = noise_correlation(r[None], np.sqrt(var)[None], g[None])[0] ** 2
        metal[s] = _narrow_rms(r, var, g, corr)
    return {"depth": depth, "depth_err": depth_err, "metal_rms": metal}


def _narrow_rms(r: np.ndarray, var: np.ndarray, good: np.ndarray, corr: float = 1.0) -> float:
    """rms of the residuals' structure narrower than HIGH_PASS pixels, noise taken out:
    hp = r less its running mean over m good pixels, whose noise variance is var (1 - 2c /
    m) + c (sum of var in the window) / m^2, c = 1 + 2 rho_1 + 2 rho_2 the noise's
    correlation between neighbours (1: white; ~2.7 for a 3-pixel smoothing, which would
    otherwise take 20% too much noise out and hide a metal-poor star's weak lines); the
    mean of hp^2 less that, weighted by the inverse noise variance (pixels with inflated
    errors, such as sky lines, would otherwise swamp it)."""
    kernel = np.ones(HIGH_PASS)
    m = np.maximum(np.convolve(good.astype(float), kernel, mode="same"), 1)
    ok = good & (m >= HIGH_PASS - 2)
    hp = r - np.convolve(r, kernel, mode="same") / m
    noise = var * (1 - 2 * corr / m) + corr * np.convolve(var, kernel, mode="same") / m**2
    if not ok.any():
        return float("nan")
    w = 1.0 / noise[ok]
    excess = np.sum(w * (hp[ok] ** 2 - noise[ok])) / np.sum(w)
    return float(np.sqrt(max(excess, 0.0)))


def not_cool_star(depth, depth_err, metal_rms) -> np.ndarray:
    """True where the spectrum is no cool star's (see the module docstring)."""
    depth, depth_err, metal_rms = (
        np.asarray(a, dtype=np.float64) for a in (depth, depth_err, metal_rms)
    )
    significant = np.abs(depth) > MIN_DEPTH_SNR * depth_err
    weak_metals = metal_rms < METAL_PER_DEPTH * np.abs(depth)
    return significant & weak_metals & ((depth > MIN_DEPTH) | (depth < -MIN_EMISSION))
