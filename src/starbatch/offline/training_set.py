"""Synthetic training and validation sets from the emulator (for apogeenet and cannon).

Labels are drawn from the realistic prior (``synthetic.draw_labels``: DR17 red giants plus
dwarfs), minus the emulator's untrained hot-giant corner (``grid.in_trained_region``);
spectra are ``synthetic.make_synthetic_star`` (emulator x random continuum + noise, chip
gaps, bad pixels flagged in the bitmask), with bad pixels defined exactly as the reader
defines them for real files. Everything is seeded: the same arguments give the same set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from starbatch.methods.emulator import Emulator
from starbatch.methods.gridfit.grid import in_trained_region
from starbatch.methods.normalise import CONT_DEGREE, Prepared, normalise_many
from starbatch.sdss.readers import bad_pixels
from starbatch.sdss.spectrum import Spectrum, apstar_wavelength

from .synthetic import draw_labels, draw_valid_labels, make_synthetic_star


@dataclass
class SyntheticSet:
    labels: np.ndarray  # (n, 3) Teff, logg, [Fe/H]
    snr: np.ndarray  # (n,) median S/N per pixel
    flux: np.ndarray  # (n, npix) float32, NaN in the chip gaps
    error: np.ndarray  # (n, npix) float32, inf where bad
    bad: np.ndarray  # (n, npix) bool

    def __len__(self) -> int:
        return len(self.labels)

    def spectra(self) -> list[Spectrum]:
        wave = apstar_wavelength()
        return [
            Spectrum(
                wave,
                self.flux[i].astype(np.float64),
                self.error[i].astype(np.float64),
                self.bad[i].copy(),
                {"snr": float(self.snr[i]), "kind": "synthetic"},
            )
            for i in range(len(self))
        ]


def draw_trained_labels(
    emulator: Emulator, n: int, rng: np.random.Generator, prior: dict | None = None
) -> np.ndarray:
    """(n, 3) labels from the realistic prior (``prior``: draw_labels options, e.g. more
    or hotter dwarfs), inside the emulator's trained region. ``prior["uniform_fraction"]``
    of them (0 by default) come from ``draw_valid_labels`` instead: uniform over the
    declared valid range, so the prior weights training but is not its only source."""
    prior = dict(prior or {})
    uniform = float(prior.pop("uniform_fraction", 0.0))
    out = np.empty((0, 3))
    lo, hi = emulator.label_min, emulator.label_max
    while len(out) < n:
        m = n - len(out)
        k = int(rng.binomial(m, uniform)) if uniform > 0 else 0
        draw = draw_labels(m - k, rng, label_min=lo, label_max=hi, **prior)
        if k:
            valid = draw_valid_labels(k, rng)
            draw = np.vstack([draw, valid[np.all((valid >= lo) & (valid <= hi), axis=1)]])
        out = np.vstack([out, draw[in_trained_region(draw, lo, hi)]])
    return out[:n]


def snr_values(snr, n: int, rng: np.random.Generator) -> np.ndarray:
    """A scalar: every star; [lo, hi]: log-uniform between them; a length-n list: as is."""
    snr = np.atleast_1d(np.asarray(snr, dtype=np.float64))
    if snr.size == 1:
        return np.full(n, snr[0])
    if snr.size == 2 and n != 2:
        return np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]), n))
    if snr.size != n:
        raise ValueError(f"snr must be a scalar, [lo, hi] or {n} values; got {snr.size}")
    return snr


def make_set(
    emulator: Emulator,
    labels: np.ndarray,
    snr,
    rng: np.random.Generator,
    star=make_synthetic_star,
) -> SyntheticSet:
    """Synthetic apStar stacks for ``labels`` (n, 3) at ``snr`` (see snr_values), each
    made by ``star(emulator, labels, snr, rng)`` (clean by default; see offline.augment)."""
    labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
    n = len(labels)
    snrs = snr_values(snr, n, rng)
    npix = len(emulator.wavelength)
    flux = np.empty((n, npix), dtype=np.float32)
    error = np.empty((n, npix), dtype=np.float32)
    bad = np.empty((n, npix), dtype=bool)
    for i in range(n):
        f, e, m = star(emulator, labels[i], snrs[i], rng)
        bad[i] = bad_pixels(f, e, m)
        flux[i] = f
        error[i] = np.where(bad[i], np.inf, e)
    return SyntheticSet(labels=labels, snr=snrs, flux=flux, error=error, bad=bad)


def make_random_set(
    emulator: Emulator, n: int, snr, seed: int, star=make_synthetic_star, prior=None
) -> SyntheticSet:
    """``n`` stars with labels from the prior, seeded: labels and spectra from one stream."""
    rng = np.random.default_rng(seed)
    labels = draw_trained_labels(emulator, n, rng, prior)
    return make_set(emulator, labels, snr, rng, star)


def prior_model_flux(emulator: Emulator, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Noise-free normalised model flux (n, npix) for labels from the prior (used to pick
    continuum pixels)."""
    return emulator.flux(draw_trained_labels(emulator, n, np.random.default_rng(seed)))


def prepared_chunks(
    emulator: Emulator,
    n: int,
    snr,
    seed: int,
    cont_mask: np.ndarray,
    chunk: int | None = 500,
    star=make_synthetic_star,
    prepare=None,
    prior: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, Iterator[Prepared]]:
    """(labels, snr, normalised chunks) of a seeded synthetic set, prepared as the learned
    analyses prepare real spectra (``prepare(flux, error, bad, cont_mask)``, default the
    per-chip continuum); ``chunk`` spectra at a time bound memory (None: one piece)."""
    data = make_random_set(emulator, n, snr, seed, star, prior)
    step = chunk or max(n, 1)

    def chunks() -> Iterator[Prepared]:
        for start in range(0, n, step):
            sl = slice(start, start + step)
            flux, error, bad = data.flux[sl], data.error[sl], data.bad[sl]
            if prepare is None:
                yield normalise_many(flux, error, bad, cont_mask, degree=CONT_DEGREE)
            else:
                yield prepare(flux, error, bad, cont_mask)

    return data.labels, data.snr, chunks()
