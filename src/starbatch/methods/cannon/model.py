"""The Cannon (Ness et al. 2015), a polynomial in (Teff, logg, [Fe/H]), on plain numpy:
quadratic as in the paper, or cubic (cannon-v2 from 2026-12-07: a quadratic cannot follow
the spectra over the whole valid range, docs/evaluation.md); the degree is read off theta.

Model: for each pixel p, normalised flux f_p = theta_p . v(x) + noise with variance
sigma_p^2 + s2_p, where x are the labels scaled as (label - fid) / scale and
v(x) = [1, x1, x2, x3, x1^2, x1 x2, x1 x3, x2^2, x2 x3, x3^2] (10 terms; cubic: 20).

Training step (starbatch.offline.train_cannon): given normalised training spectra with
known labels, theta_p is a weighted least-squares solution per pixel, and s2_p the
maximum-likelihood intrinsic scatter, alternated a few times.

Test step (``fit_labels``): chi^2 = sum_p (f_p - theta_p . v(x))^2 / (sigma_p^2 + s2_p)
is minimised for every spectrum of a batch together. Because the model is linear in
theta, chi^2 is a quadratic form in v(x) whose coefficients (10 + 100 numbers per
spectrum) come from two matrix products over all pixels and spectra at once; then
Levenberg-Marquardt (Gauss-Newton with damping, analytic Jacobian dv/dx) runs on those
small arrays, vectorised over spectra and over several starting points per spectrum
(``STARTS``: giants, the clump, dwarfs, a metal-poor star; the best two per spectrum are
kept after a few iterations), keeping each spectrum's best. Covariance = (J^T W J)^-1.

Inputs are prepared with starbatch.methods.normalise (continuum pixels stored in the model).
The model file is a plain .npz (np.load(..., allow_pickle=False)).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np

from starbatch.engine.atomic import save_npz
from starbatch.methods.emulator import LABEL_NAMES
from starbatch.methods.goodness import neighbour_correlation, widening
from starbatch.methods.normalise import CONT_DEGREE, Prepared, normalise_many


def terms(order: int) -> tuple[tuple[int, ...], ...]:
    """The label-index tuples of the polynomial's terms after the constant, by degree:
    (0,), (1,), (2,), (0, 0), (0, 1), ... up to ``order``."""
    return tuple(t for d in range(1, order + 1) for t in combinations_with_replacement(range(3), d))


# The quadratic Cannon's terms (10 with the constant); order 3 has 20.
QUADRATIC = terms(2)
NTERMS = 1 + len(QUADRATIC)
ORDER_OF = {1 + len(terms(k)): k for k in (2, 3)}
FORMAT = "starbatch-cannon"

# Starting labels of the test step (Teff, logg, [Fe/H]).
STARTS = np.array(
    [
        [3900.0, 1.2, 0.0],
        [4700.0, 2.5, -0.2],
        [4900.0, 2.0, -1.3],
        [5600.0, 4.3, -0.1],
        [4500.0, 4.6, 0.0],
        [6300.0, 4.1, -0.3],
    ]
)

# After SCREEN_AFTER iterations only the KEEP_STARTS best starts of each spectrum go on.
SCREEN_AFTER = 4
KEEP_STARTS = 2


def design(x: np.ndarray, order: int = 2) -> np.ndarray:
    """(n, 1 + len(terms(order))) terms of scaled labels x (n, 3)."""
    x = np.atleast_2d(x)
    cols = [np.ones(len(x))] + [np.prod(x[:, list(t)], axis=1) for t in terms(order)]
    return np.stack(cols, axis=1)


def design_jacobian(x: np.ndarray, order: int = 2) -> np.ndarray:
    """(n, nterms, 3): d v / d x (a term's derivative in label l: one factor x_l fewer,
    times how often l occurs in it)."""
    x = np.atleast_2d(x)
    all_terms = terms(order)
    jac = np.zeros((len(x), 1 + len(all_terms), 3))
    for t, term in enumerate(all_terms):
        for pos, label in enumerate(term):
            rest = term[:pos] + term[pos + 1 :]
            jac[:, 1 + t, label] += np.prod(x[:, list(rest)], axis=1) if rest else 1.0
    return jac


@dataclass
class CannonModel:
    theta: np.ndarray  # (npix, 10)
    s2: np.ndarray  # (npix,)
    fid: np.ndarray  # (3,)
    scale: np.ndarray  # (3,)
    label_min: np.ndarray  # (3,) training range
    label_max: np.ndarray  # (3,)
    cont_mask: np.ndarray  # (npix,) bool: continuum pixels for the normalisation
    config: dict
    # (3,) what the fit's errors do not cover (the quadratic's own error), calibrated at
    # training time on held-out spectra (starbatch.offline.calibration).
    model_error: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # (3,) label errors per unit of correlated excess chi2 (goodness.widening), calibrated
    # at training time on held-out perturbed spectra; 0 in files from before it.
    excess_scale: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def scaled(self, labels: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(labels) - self.fid) / self.scale

    @property
    def order(self) -> int:
        """The polynomial's degree, from theta's columns (10: quadratic, 20: cubic)."""
        return ORDER_OF[self.theta.shape[1]]

    def flux(self, labels: np.ndarray) -> np.ndarray:
        """Normalised model flux (n, npix) for labels (n, 3)."""
        return design(self.scaled(labels), self.order) @ self.theta.T

    def prepare(self, flux, error, bad) -> Prepared:
        """Normalised spectra; pixels no training spectrum covered (theta 0 there: the chip
        gaps of the training set, which a real star's RV can move by a few pixels) are bad."""
        untrained = ~np.any(self.theta != 0, axis=1)
        return normalise_many(flux, error, bad | untrained, self.cont_mask, degree=CONT_DEGREE)

    def save(self, path: str | Path) -> None:
        """Plain arrays in an .npz, written atomically with fixed zip timestamps."""
        arrays = {
            "format": np.array(FORMAT),
            "theta": self.theta.astype(np.float32),
            "s2": self.s2.astype(np.float32),
            "fid": self.fid,
            "scale": self.scale,
            "label_min": self.label_min,
            "label_max": self.label_max,
            "label_names": np.array(LABEL_NAMES),
            "cont_mask": self.cont_mask.astype(bool),
            "model_error": np.asarray(self.model_error, dtype=np.float64),
            "excess_scale": np.asarray(self.excess_scale, dtype=np.float64),
            "cont_degree": np.array(CONT_DEGREE),
            "config_json": np.array(json.dumps(self.config, sort_keys=True)),
        }
        save_npz(path, arrays)  # atomic (temporary file + rename), byte-reproducible

    @classmethod
    def load(cls, path: str | Path) -> CannonModel:
        try:
            with np.load(path, allow_pickle=False) as d:
                if "format" not in d.files or str(d["format"]) != FORMAT:
                    raise ValueError(f"{path}: not a {FORMAT} model file")
                if int(d["cont_degree"]) != CONT_DEGREE:
                    raise ValueError(f"{path}: made with another input preparation; retrain")
                return cls(
                    theta=np.asarray(d["theta"], dtype=np.float64),
                    s2=np.asarray(d["s2"], dtype=np.float64),
                    fid=np.asarray(d["fid"], dtype=np.float64),
                    scale=np.asarray(d["scale"], dtype=np.float64),
                    label_min=np.asarray(d["label_min"], dtype=np.float64),
                    label_max=np.asarray(d["label_max"], dtype=np.float64),
                    cont_mask=np.asarray(d["cont_mask"], dtype=bool),
                    config=json.loads(str(d["config_json"])),
                    model_error=np.asarray(d["model_error"], dtype=np.float64),
                    excess_scale=np.asarray(
                        d["excess_scale"] if "excess_scale" in d.files else np.zeros(3),
                        dtype=np.float64,
                    ),
                )
        except (OSError, EOFError, KeyError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path}: not a readable Cannon model ({exc})") from exc


# ----------------------------------------------------------------------------- test step


def sufficient_statistics(model: CannonModel, prepared: Prepared) -> dict:
    """Per spectrum, everything chi^2 needs, in one pass over the pixels.

    The model is linear in theta, so with w_p = 1 / (sigma_p^2 + s2_p)
    chi^2(x) = fWf - 2 v(x).b + v(x)^T T v(x), where fWf = sum_p w f^2 (scalar),
    b = sum_p w f theta_p (10,) and T = sum_p w theta_p theta_p^T (10, 10). These are
    matrix products over all spectra at once; after them, an iteration of the fit costs
    nothing per pixel."""
    f = np.where(prepared.bad, 0.0, prepared.flux)
    ivar = prepared.ivar
    good = ivar > 0
    w = np.where(good, 1.0 / (1.0 / np.where(good, ivar, 1.0) + model.s2), 0.0)
    theta = model.theta
    k = theta.shape[1]
    outer = (theta[:, :, None] * theta[:, None, :]).reshape(len(theta), k * k)
    return {
        "fwf": np.sum(w * f * f, axis=1),
        "b": (w * f) @ theta,
        "t": (w @ outer).reshape(-1, k, k),
        "n_pix": good.sum(axis=1),
    }


def fit_labels(
    model: CannonModel, prepared: Prepared, max_iter: int = 100, tol: float = 1e-9
) -> dict:
    """Best labels for every spectrum of ``prepared`` at once.

    Levenberg-Marquardt on chi^2(x) written with the sufficient statistics (see
    ``sufficient_statistics``): gradient and Gauss-Newton matrix are
    g = D^T (b - T v) and A = D^T T D with D = dv/dx (10 x 3), so each iteration is
    tiny 10 x 10 algebra for all spectra and all starting points together.

    Returns arrays: labels (n, 3), cov (n, 3, 3), chi2 (n,), n_pix (n,), converged (n,),
    the model flux at the labels (n, npix) and resid_corr (n,), the neighbouring-pixel
    correlation of the residuals (goodness.neighbour_correlation) that noise_errors uses."""
    stats = sufficient_statistics(model, prepared)
    n = len(stats["fwf"])
    starts = model.scaled(STARTS)
    k = len(starts)
    # Every spectrum from every start: problem m = spectrum m // k, start m % k.
    spec = np.repeat(np.arange(n), k)
    fwf, b, t = stats["fwf"][spec], stats["b"][spec], stats["t"][spec]
    x = np.tile(starts, (n, 1))
    lam = np.full(n * k, 1e-3)
    lo = model.scaled(model.label_min)[0] - 0.5
    hi = model.scaled(model.label_max)[0] + 0.5

    def chi2_at(xx):
        v = design(xx, model.order)
        tv = np.einsum("mij,mj->mi", t, v)
        return fwf - 2 * np.sum(v * b, axis=1) + np.sum(v * tv, axis=1), v, tv

    chi2, v, tv = chi2_at(x)
    done = np.zeros(n * k, dtype=bool)
    for it in range(max_iter):
        if it == SCREEN_AFTER and k > KEEP_STARTS:
            # Multi-start screening: only each spectrum's KEEP_STARTS best starts go on.
            rank = chi2.reshape(n, k).argsort(axis=1).argsort(axis=1).ravel()
            done |= rank >= KEEP_STARTS
        if done.all():
            break
        d = design_jacobian(x, model.order)  # (m, nterms, 3)
        g = np.einsum("mtl,mt->ml", d, b - tv)
        a = np.einsum("mtl,mtu,mur->mlr", d, t, d)
        damp = a + lam[:, None, None] * np.einsum("mll->ml", a)[:, :, None] * np.eye(3)
        step = np.linalg.solve(damp + 1e-12 * np.eye(3), g[..., None])[..., 0]
        trial = np.clip(x + step, lo, hi)
        new_chi2, new_v, new_tv = chi2_at(trial)
        better = (new_chi2 < chi2) & ~done
        gain = np.where(better, chi2 - new_chi2, 0.0)
        x[better], chi2[better] = trial[better], new_chi2[better]
        v[better], tv[better] = new_v[better], new_tv[better]
        lam = np.where(better, lam * 0.3, lam * 10.0)
        small = np.abs(step).max(axis=1) < 1e-7
        done |= (better & ((gain < tol * np.maximum(chi2, 1.0)) | small)) | (lam > 1e8)
    best = chi2.reshape(n, k).argmin(axis=1)
    pick = np.arange(n) * k + best
    xb = x[pick]
    d = design_jacobian(xb, model.order)
    a = np.einsum("mtl,mtu,mur->mlr", d, stats["t"], d)
    ok = np.linalg.cond(a) < 1e12
    a[~ok] = np.eye(3)
    cov_x = np.linalg.inv(a)
    cov_x[~ok] = np.nan
    cov = cov_x * model.scale[None, :, None] * model.scale[None, None, :]
    labels = xb * model.scale + model.fid
    flux = model.flux(labels)
    good = prepared.ivar > 0
    with np.errstate(all="ignore"):
        z = (prepared.flux - flux) / np.sqrt(prepared.error**2 + model.s2)
    return {
        "labels": labels,
        "cov": cov,
        "chi2": np.maximum(chi2[pick], 0.0),
        "n_pix": stats["n_pix"],
        "converged": done[pick],
        "flux": flux,
        "resid_corr": neighbour_correlation(z, good),
    }


def noise_errors(model: CannonModel, fit: dict) -> tuple[np.ndarray, np.ndarray]:
    """(errors (n, 3), chi2_red (n,)) of a fit_labels result: sqrt of the covariance's
    diagonal, widened as gridfit's (goodness.widening: by sqrt(chi2_red) for white excess
    chi2, by the model's excess_scale for excess neighbouring pixels share). The
    model-error term comes on top (CannonModel.model_error)."""
    chi2_red = fit["chi2"] / np.maximum(fit["n_pix"] - 3, 1)
    errors = np.sqrt(np.diagonal(fit["cov"], axis1=1, axis2=2))
    scale = model.excess_scale
    return errors * widening(chi2_red, fit["resid_corr"], fit["n_pix"], scale), chi2_red
