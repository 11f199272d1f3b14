"""The emulator's best fit near given labels, for analyses that have no chi-square of
their own (apogeenet): whether the labels they report are where the physical model fits
the spectrum best.

The model is the emulator's flux normalised per chip as ``normalise.normalise_many``
normalises a noiseless spectrum (equal weights on the continuum pixels). That continuum is
a fixed linear projection of the flux, and the flux is linear in the emulator's design
row, so the normalised model is a ratio of two linear maps of the design row,
``(d @ theta.T) / (d @ cont_theta.T)``, with an analytic Jacobian: a damped Gauss-Newton
step for a whole chunk of spectra costs a few matrix products.

The fit minimises the chi-square with the model-error floor of
``goodness.fit_quality``, its variance held at the starting labels' model (so each step
is a weighted least-squares step); the caller scores the result with ``fit_quality``.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

from starbatch.sdss.spectrum import apstar_wavelength

from .continuum import CHIPS, chip_of, chip_x
from .emulator import Emulator
from .goodness import CONTINUUM_FLOOR
from .normalise import CONT_DEGREE, MIN_CONT_PIXELS

MAX_STEPS = 8
DAMPING = 1e-3  # Levenberg-Marquardt: x diag(J^T W J); x10 on a rejected step, /10 on a kept one


def design_and_jacobian(x: np.ndarray, terms: list) -> tuple[np.ndarray, np.ndarray]:
    """Design rows [1, term_1(x), ...] (n, 1 + nterms) and their derivatives with respect
    to the scaled labels (n, nlabels, 1 + nterms)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n, nlab = x.shape
    design = np.ones((n, 1 + len(terms)))
    jac = np.zeros((n, nlab, 1 + len(terms)))
    for t, term in enumerate(terms, start=1):
        factors = [(int(i), int(p)) for i, p in term]
        for i, p in factors:
            design[:, t] *= x[:, i] ** p
        for k in {i for i, _ in factors}:
            d = np.ones(n)
            for i, p in factors:
                d = d * (p * x[:, i] ** (p - 1) if i == k else x[:, i] ** p)
            jac[:, k, t] = d
    return design, jac


class NormalisedEmulator:
    """The emulator's per-chip normalised flux (as normalise_many gives it for a noiseless
    model spectrum, degree ``degree``) and its Jacobian in the labels."""

    def __init__(self, emulator: Emulator, cont_mask: np.ndarray, degree: int = CONT_DEGREE):
        self.emulator = emulator
        wavelength = apstar_wavelength()
        chip = chip_of(wavelength)
        self.cont_mask = cont_mask = np.asarray(cont_mask, bool)
        # Per chip, the continuum is the equal-weight least-squares Legendre fit through
        # the continuum pixels: linear in the flux, so in the design row too.
        self.theta = emulator.theta  # (npix, 1 + nterms)
        # A chip that cannot be normalised gets flux 1 and no derivative (not NaN, which
        # would spread through the normal equations); ``valid`` marks it bad.
        self.cont_theta = self.theta.copy()
        self.valid = np.zeros(len(wavelength), bool)
        for i in range(len(CHIPS)):
            cols = np.flatnonzero(chip == i)
            use = cols[cont_mask[cols]]
            if len(use) < MIN_CONT_PIXELS:
                continue  # normalise_many leaves such a chip bad
            basis = legendre.legvander(chip_x(wavelength[cols], i), degree)
            coef = np.linalg.lstsq(basis[cont_mask[cols]], self.theta[use], rcond=None)[0]
            self.cont_theta[cols] = basis @ coef
            self.valid[cols] = True

    def _scaled(self, labels):
        lo, hi = self.emulator.label_min, self.emulator.label_max
        return self.emulator.scaled(np.clip(labels, lo, hi))

    def flux(self, labels: np.ndarray) -> np.ndarray:
        """Normalised model flux (n, npix) at ``labels`` (n, 3), clipped into the range."""
        design = design_and_jacobian(self._scaled(labels), self.emulator.terms)[0]
        return (design @ self.theta.T) / (design @ self.cont_theta.T)

    def flux_and_jacobian(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flux (n, npix), d flux / d labels (n, 3, npix)) in label units."""
        design, djac = design_and_jacobian(self._scaled(labels), self.emulator.terms)
        num, den = design @ self.theta.T, design @ self.cont_theta.T
        rows = djac.reshape(-1, djac.shape[-1])  # one matrix product, not n small ones
        dnum = (rows @ self.theta.T).reshape(*djac.shape[:2], -1)  # (n, 3, npix)
        dden = (rows @ self.cont_theta.T).reshape(dnum.shape)
        flux = num / den
        jac = (dnum - flux[:, None] * dden) / den[:, None]
        return flux, jac / self.emulator.scale[None, :, None]

    def best_fit(self, flux, error, good, labels, floor: float) -> tuple[np.ndarray, np.ndarray]:
        """(labels (n, 3), model flux (n, npix)): damped Gauss-Newton from ``labels`` on
        normalised spectra (n, npix), within the emulator's range; a step is kept only if
        it lowers the chi-square."""
        lo, hi = self.emulator.label_min, self.emulator.label_max
        x = np.clip(np.asarray(labels, dtype=np.float64), lo, hi)
        good = good & self.valid
        model, jac = self.flux_and_jacobian(x)
        depth = 1.0 - np.where(good, model, 1.0)
        var = np.where(good, np.asarray(error, dtype=np.float64) ** 2, 1.0)
        w = np.where(good, 1.0 / (var + CONTINUUM_FLOOR**2 + (floor * depth) ** 2), 0.0)

        def chi2(m):
            return np.sum(w * np.where(good, flux - m, 0.0) ** 2, axis=1)

        cost = chi2(model)
        damping = np.full(len(x), DAMPING)
        for _ in range(MAX_STEPS):
            wjac = jac * w[:, None, :]
            a = wjac @ np.transpose(jac, (0, 2, 1))  # (n, 3, 3)
            b = wjac @ np.where(good, flux - model, 0.0)[..., None]  # (n, 3, 1)
            diag = np.einsum("nii->ni", a)
            # a label pinned at the range edge has a zero row: keep the system solvable
            a = (
                a
                + np.eye(3)
                * (damping[:, None] * diag + 1e-12 * diag.max(axis=1, keepdims=True))[:, :, None]
            )
            trial = np.clip(x + np.linalg.solve(a, b)[..., 0], lo, hi)
            trial_model, trial_jac = self.flux_and_jacobian(trial)
            trial_cost = chi2(trial_model)
            better = trial_cost < cost
            converged = ~better | (cost - trial_cost < 1e-6 * cost)
            x = np.where(better[:, None], trial, x)
            model = np.where(better[:, None], trial_model, model)
            jac = np.where(better[:, None, None], trial_jac, jac)
            cost = np.where(better, trial_cost, cost)
            damping = np.where(better, damping / 10, damping * 10)
            if converged.all() and (damping > 1).all():
                break  # nothing moves any more
        return x, model
