"""gridfit: a FERRE-style fit of (Teff, logg, [Fe/H]) against a ModelGrid in memory.

Model of the data. The spectrum is first divided by its pseudo-continuum
(continuum.normalise); what is fitted is then ``model(labels) * P_chip(x)``, with
``P_chip`` a Legendre polynomial of degree ``cont_degree`` per chip whose
coefficients are solved linearly (profiled) for every model. This absorbs the
pseudo- vs true-continuum offset that dividing the data alone leaves (see
continuum.py). Measured with scripts/evaluate_accuracy.py, Teff
scatter at S/N 100: 5.3 K with degree 4 (pulls ~1); 8.1 K normalising the models the
same way as the data (the FERRE/ASPCAP way; pulls 1.7); 10 K / 20 K with degree 2 / 0
and outliers of 600-900 K, since a low degree cannot undo the cubic pseudo-continuum.
Degrees 3-5 are equivalent; 4 had the smallest noiseless residual bias.

1. Global search, vectorised over spectra and models: with w = ivar, f = data,
   m = model, B_j = Legendre terms of a chip, per chip
   b_j = sum w f m B_j and A_jk = sum w m^2 B_j B_k are matrix products
   (nspec x npix) @ (npix x nmodels) of data-side and model-side arrays, and
   chi2 = sum w f^2 - b^T A^-1 b. Invalid (untrained) nodes are skipped.
2. Refinement around the best node: chi2 is minimised by bounded Levenberg-Marquardt
   (methods.least_squares) within the box of valid nodes +-1 step around it, the model
   interpolated with tensor-product Lagrange polynomials: first over the box alone, then
   cubic (the 4 nodes around the cell holding that first solution, one-sided at the grid
   edge, quadratic/linear only where the valid region is narrower); cubic halves the
   noiseless error of quadratic and is exact for the (cubic) emulator. If the minimum
   sits on a box face that could move, the box is re-centred; ``at_edge`` is set when
   it sits on the edge of the grid or of its valid (trained) region.
3. Uncertainties: covariance = (J^T J)^-1 of the whitened, continuum-profiled
   residuals (the chi2 curvature, so the continuum is marginalised), widened by what the
   residuals say the noise does not explain (``goodness.widening``): excess chi2 that is white
   (underestimated noise) by sqrt(chi2_red), as before; excess that neighbouring pixels
   share (``resid_corr``: a model that is wrong, line by line, in the LSF, continuum or
   line strengths) by EXCESS_SCALE per label, since a residual correlated over many pixels
   moves the labels far more than white noise of the same chi2 does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.polynomial import legendre

from starbatch.methods.continuum import CHIPS, chip_of, chip_x, normalise
from starbatch.methods.goodness import fit_quality, neighbour_correlation, widening
from starbatch.methods.least_squares import least_squares_box
from starbatch.sdss.spectrum import Spectrum

from .grid import AXES, ModelGrid

CONT_DEGREE = 4  # per-chip polynomial times the model (chosen by the accuracy evaluation)
MIN_GOOD_PIXELS = 300  # fewer and the fit is not attempted (a full apStar has ~7500)
MIN_CHIP_PIXELS = 50  # a chip with fewer good pixels is dropped (its continuum is unconstrained)
MAX_RECENTRE = 4
# Model-error term (Teff K, logg, [Fe/H]) added in quadrature by the analysis; calibrated
# with starbatch.offline.calibration on held-out spectra (scripts/calibrate_model_error.py).
MODEL_ERROR = (0.0, 0.0, 0.0)
# Label errors per unit of correlated excess chi2 (Teff, logg, [Fe/H]): errors^2 grow by
# EXCESS_SCALE^2 * excess (goodness.widening). Calibrated on held-out perturbed spectra
# (offline.augment.perturbed_star, seed 5000, 100 stars at each S/N 20-200) by
# `python scripts/calibrate_model_error.py --excess`: the normalised residuals' robust std
# is then 1, pooled; clean spectra have no correlated excess and keep their errors.
EXCESS_SCALE = (6.23, 5.60, 12.24)
RESULT_KEYS = tuple(k for a in AXES for k in (a, a + "_err")) + (
    "chi2_red",
    "resid_corr",
    "fit_chi2",
    "line_snr",
    "n_pix",
    "at_edge",
)


class _Prepared:
    """One spectrum normalised and whitened: weights w (0 where bad), flux f (0 where bad)."""

    def __init__(self, grid: ModelGrid, spectrum: Spectrum):
        wl = np.asarray(spectrum.wavelength, dtype=float)
        if wl.shape != grid.wavelength.shape or not np.allclose(wl, grid.wavelength, rtol=1e-7):
            raise ValueError(
                f"spectrum wavelength ({len(wl)} pixels) is not the grid's "
                f"({len(grid.wavelength)} pixels); resample to the apStar grid first"
            )
        n = normalise(wl, spectrum.flux, spectrum.error, spectrum.bad)
        good = ~n.bad
        chip = np.where(good, chip_of(wl), -1)
        for i in range(len(CHIPS)):
            if (chip == i).sum() < MIN_CHIP_PIXELS:
                chip[chip == i] = -1
        good = chip >= 0
        if good.sum() < MIN_GOOD_PIXELS:
            raise ValueError(
                f"spectrum has only {int(good.sum())} good pixels "
                f"(gridfit needs >= {MIN_GOOD_PIXELS})"
            )
        self.w = np.where(good, 1.0 / np.where(good, n.error, 1.0) ** 2, 0.0)
        self.f = np.where(good, n.flux, 0.0)
        if not (np.isfinite(self.w).all() and np.isfinite(self.f).all()):
            raise ValueError("non-finite flux or error survived the bad-pixel mask")
        self.chip = chip
        self.chips = [i for i in range(len(CHIPS)) if (chip == i).any()]
        self.n_pix = int(good.sum())


def _basis(wavelength: np.ndarray, chip: int, degree: int) -> np.ndarray:
    """(degree + 1, npix_chip) Legendre terms across one chip."""
    return legendre.legvander(chip_x(wavelength, chip), degree).T


def _solve_chi2(fwf: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """chi2 = fwf - sum_chips b^T A^-1 b, for b (..., nchip, k) and A (..., nchip, k, k)."""
    x = np.linalg.solve(a, b[..., None])[..., 0]
    return fwf - np.einsum("...ck,...ck->...", b, x)


def grid_chi2(
    grid: ModelGrid,
    prepared: Sequence[_Prepared],
    cont_degree: int = CONT_DEGREE,
    model_chunk: int = 2048,
) -> np.ndarray:
    """chi2 (nspec, nvalid) of each spectrum against each valid node (C order of valid)."""
    k = cont_degree + 1
    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    nspec = len(prepared)
    W = np.stack([p.w for p in prepared])
    F = np.stack([p.f for p in prepared])
    fwf = np.einsum("sp,sp,sp->s", W, F, F)
    chip_all = np.stack([p.chip for p in prepared])
    # Data-side arrays per chip, stacked so each chip is two big matrix products.
    data = []
    for c in range(len(CHIPS)):
        cols = np.flatnonzero((chip_all == c).any(axis=0))
        basis = _basis(grid.wavelength[cols], c, cont_degree)
        wc = W[:, cols] * (chip_all[:, cols] == c)
        u = np.concatenate([wc * F[:, cols] * basis[j] for j in range(k)])
        v = np.concatenate([wc * basis[i] * basis[j] for i, j in pairs])
        data.append((cols, u, v))
    flux = grid.flux.reshape(-1, grid.flux.shape[-1])
    nodes = np.flatnonzero(grid.valid.ravel())
    chi2 = np.empty((nspec, len(nodes)))
    eye = np.eye(k)
    for start in range(0, len(nodes), model_chunk):
        rows = nodes[start : start + model_chunk]
        m = flux[rows].astype(np.float64)
        nm = len(rows)
        b = np.empty((nspec, nm, len(CHIPS), k))
        a = np.empty((nspec, nm, len(CHIPS), k, k))
        for c, (cols, u, v) in enumerate(data):
            mc = m[:, cols]
            b[:, :, c, :] = (u @ mc.T).reshape(k, nspec, nm).transpose(1, 2, 0)
            av = (v @ (mc * mc).T).reshape(len(pairs), nspec, nm)
            for n, (i, j) in enumerate(pairs):
                a[:, :, c, i, j] = a[:, :, c, j, i] = av[n]
        # A dropped chip has A = 0, b = 0: an identity block makes it contribute nothing.
        empty = a[..., 0, 0] == 0
        a[empty] = eye
        chi2[:, start : start + nm] = _solve_chi2(fwf[:, None], b, a)
    if not np.isfinite(chi2).all():
        raise ValueError("non-finite chi2 over the grid (degenerate model or weights)")
    return chi2


class _LocalModel:
    """Lagrange interpolation of the grid inside a box of nodes, in node units."""

    def __init__(self, grid: ModelGrid, lo: np.ndarray, hi: np.ndarray, pixels: np.ndarray):
        box = grid.flux[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
        self.flux = box[..., pixels].astype(np.float64)
        self.nodes = [np.arange(a, b + 1, dtype=float) for a, b in zip(lo, hi, strict=True)]

    @staticmethod
    def _weights(nodes: np.ndarray, x: float) -> np.ndarray:
        w = np.ones(len(nodes))
        for i, xi in enumerate(nodes):
            for j, xj in enumerate(nodes):
                if i != j:
                    w[i] *= (x - xj) / (xi - xj)
        return w

    def __call__(self, u: np.ndarray) -> np.ndarray:
        out = self.flux
        for axis in range(3):
            # einsum, not tensordot: a threaded BLAS GEMV this small is slower, badly so
            # when other jobs share the cores
            out = np.einsum("i,i...->...", self._weights(self.nodes[axis], u[axis]), out)
        return out


def _boxes(valid: np.ndarray, centre: tuple[int, int, int]) -> list:
    """The maximal all-valid boxes of nodes within +-1 of ``centre``, as (lo, hi) arrays.

    Usually one (3x3x3, cut at the grid edges); beside the untrained hole there can be
    several (e.g. 3 Teff x 2 logg nodes or 2 Teff x 3 logg) and each is tried."""
    ranges = []
    for axis in range(3):
        c = centre[axis]
        ranges.append(
            [(a, b) for a in (c - 1, c) for b in (c + 1, c) if a >= 0 and b < valid.shape[axis]]
        )
    found = []
    for combo in itertools.product(*ranges):
        if valid[tuple(slice(a, b + 1) for a, b in combo)].all():
            found.append((np.array([a for a, _ in combo]), np.array([b for _, b in combo])))

    def inside(x, y):  # box x within box y
        return bool((x[0] >= y[0]).all() and (x[1] <= y[1]).all())

    return [x for x in found if not any(inside(x, y) and x is not y for y in found)]


def _can_extend(valid: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int, up: bool) -> bool:
    """Whether the box can grow one node along ``axis`` (inside the grid, all valid)."""
    lo, hi = lo.copy(), hi.copy()
    if up:
        hi[axis] += 1
        if hi[axis] >= valid.shape[axis]:
            return False
    else:
        lo[axis] -= 1
        if lo[axis] < 0:
            return False
    return bool(valid[tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))].all())


def model_spectrum(grid: ModelGrid, labels) -> np.ndarray:
    """The grid interpolated at ``labels`` (teff, logg, feh) as the fit does it (cubic
    where the grid allows), e.g. to plot a best fit. ValueError outside the valid grid."""
    steps = np.array([a[1] - a[0] for a in grid.axes])
    u = (np.asarray(labels, dtype=float) - [a[0] for a in grid.axes]) / steps
    centre = np.clip(np.round(u).astype(int), 0, np.array(grid.shape) - 1)
    tol = 1e-9
    for lo, hi in _boxes(grid.valid, tuple(centre)):
        if (u >= lo - tol).all() and (u <= hi + tol).all():
            slo, shi = _stencil(grid.valid, lo, hi, u)
            model = _LocalModel(grid, slo, shi, np.arange(len(grid.wavelength)))
            return model(np.clip(u, lo, hi))
    raise ValueError(f"labels {list(labels)} are outside the grid's valid (trained) nodes")


def _residual_fn(model, prep: _Prepared, pixels: np.ndarray, wavelength, cont_degree: int):
    """Whitened residuals at ``pixels`` with the per-chip continuum solved linearly."""
    sw = np.sqrt(prep.w[pixels])
    target = prep.f[pixels] * sw
    chip = prep.chip[pixels]
    blocks = []
    for c in prep.chips:
        idx = np.flatnonzero(chip == c)
        # pixels are sorted and chips do not interleave: a slice avoids copies per call
        sl = slice(idx[0], idx[-1] + 1)
        blocks.append((sl, _basis(wavelength[sl], c, cont_degree).T * sw[sl, None]))

    def residual(u: np.ndarray) -> np.ndarray:
        m = model(u)
        r = np.empty_like(target)
        for sl, basis in blocks:
            design = m[sl, None] * basis
            # normal equations: (k x k), well conditioned in the Legendre basis
            coef = np.linalg.solve(design.T @ design, design.T @ target[sl])
            r[sl] = target[sl] - design @ coef
        return r

    return residual


def _stencil(valid, lo, hi, u) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation nodes: the box grown, per axis, to 4 nodes (cubic) where the grid
    and its valid region allow, adding on the side that keeps ``u`` most central (so an
    interior cell gets the symmetric stencil, an edge cell a one-sided one)."""
    slo, shi = lo.copy(), hi.copy()
    for ax in range(3):
        while shi[ax] - slo[ax] < 3:
            prefer_up = (u[ax] - slo[ax]) >= (shi[ax] - u[ax])
            for up in (prefer_up, not prefer_up):
                if _can_extend(valid, slo, shi, ax, up):
                    if up:
                        shi[ax] += 1
                    else:
                        slo[ax] -= 1
                    break
            else:
                break  # neither side can grow: quadratic or linear along this axis
    return slo, shi


def _solve(grid, prep, pixels, lo, hi, slo, shi, x0, cont_degree):
    """Least squares for the labels (node units) within bounds [lo, hi]."""
    model = _LocalModel(grid, slo, shi, pixels)
    residual = _residual_fn(model, prep, pixels, grid.wavelength[pixels], cont_degree)
    free = hi > lo  # an axis with a single valid node is held fixed

    def fun(x):
        u = x0.copy()
        u[free] = x
        return residual(u)

    start = np.clip(x0[free], lo[free], hi[free])
    res = least_squares_box(fun, start, lo[free], hi[free])
    u = x0.copy()
    u[free] = res.x
    return res, u, free


def _refine(grid: ModelGrid, prep: _Prepared, node: tuple[int, int, int], cont_degree: int) -> dict:
    pixels = np.flatnonzero(prep.chip >= 0)
    steps = np.array([a[1] - a[0] for a in grid.axes])
    centre = np.array(node)
    seen = set()
    for _ in range(MAX_RECENTRE + 1):
        seen.add(tuple(centre))
        best = None
        for lo, hi in _boxes(grid.valid, tuple(centre)):
            # A pass interpolating over the box alone finds the cell; the cubic pass refines.
            x0 = centre.astype(float)
            res, u, free = _solve(grid, prep, pixels, lo, hi, lo, hi, x0, cont_degree)
            slo, shi = _stencil(grid.valid, lo, hi, u)
            if (slo != lo).any() or (shi != hi).any():
                res, u, free = _solve(grid, prep, pixels, lo, hi, slo, shi, u, cont_degree)
            if best is None or res.cost < best[0].cost:
                best = (res, u, free, lo, hi)
        res, u, free, lo, hi = best
        on_lo = free & (u - lo < 1e-3)
        on_hi = free & (hi - u < 1e-3)
        movable = [
            (ax, up)
            for ax in range(3)
            for up, on in ((False, on_lo[ax]), (True, on_hi[ax]))
            if on and _can_extend(grid.valid, lo, hi, ax, up)
        ]
        nearest = np.clip(np.round(u).astype(int), lo, hi)
        if not movable or tuple(nearest) in seen:
            break
        centre = nearest
    at_edge = bool((on_lo | on_hi).any() or not free.all())
    chi2 = 2.0 * res.cost
    n_par = int(free.sum()) + len(prep.chips) * (cont_degree + 1)
    chi2_red = chi2 / (prep.n_pix - n_par)
    err_u = np.full(3, np.inf)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac)
        err_u[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        pass  # singular curvature: errors stay inf (flagged, never NaN)
    z = np.zeros((1, len(prep.chip)))
    z[0, pixels] = res.fun
    resid_corr = float(neighbour_correlation(z, (prep.chip >= 0)[None])[0])
    err = err_u * steps * widening(chi2_red, resid_corr, prep.n_pix, EXCESS_SCALE)
    out = {}
    for i, (name, axis) in enumerate(zip(AXES, grid.axes, strict=True)):
        out[name] = float(axis[0] + u[i] * steps[i])
        out[name + "_err"] = float(err[i])
    out.update(chi2_red=float(chi2_red), resid_corr=resid_corr, n_pix=prep.n_pix, at_edge=at_edge)
    return out


def _profiled(f, w, shape, basis) -> np.ndarray:
    """Weighted least-squares fit of f by shape * (Legendre terms ``basis``)."""
    design = shape[:, None] * basis
    sw = np.sqrt(w)
    coef = np.linalg.lstsq(design * sw[:, None], f * sw, rcond=None)[0]
    return design @ coef


def _quality(grid: ModelGrid, prep: _Prepared, fit: dict, cont_degree: int, floor: float):
    """fit_chi2 and line_snr (starbatch.methods.goodness) of a finished fit: the best model
    times its profiled continuum against the continuum polynomial alone."""
    try:
        m = model_spectrum(grid, [fit[a] for a in AXES])
    except ValueError:  # a fit held on a face of the valid region: no floor, no line test
        return {"fit_chi2": fit["chi2_red"], "line_snr": float("nan")}
    model, cont = np.ones(len(m)), np.ones(len(m))
    for c in prep.chips:
        idx = np.flatnonzero(prep.chip == c)
        basis = _basis(grid.wavelength[idx], c, cont_degree).T
        model[idx] = _profiled(prep.f[idx], prep.w[idx], m[idx], basis)
        cont[idx] = _profiled(prep.f[idx], prep.w[idx], np.ones(len(idx)), basis)
    good = prep.chip >= 0
    variance = np.where(good, 1.0 / np.where(good, prep.w, 1.0), np.inf)
    n_par = 3 + len(prep.chips) * (cont_degree + 1)
    chi2, line = fit_quality(prep.f, variance, model, cont, good, floor, n_par)
    return {"fit_chi2": float(chi2[0]), "line_snr": float(line[0])}


def fit_many(
    grid: ModelGrid,
    spectra: Sequence[Spectrum],
    cont_degree: int = CONT_DEGREE,
    spectrum_chunk: int = 64,
    on_error: str = "raise",
    fit_floor: float = 0.0,
) -> list[dict | Exception]:
    """Fit each spectrum; the grid search is done ``spectrum_chunk`` spectra at a time.

    ``on_error="raise"`` raises the first ValueError (with the spectrum's index);
    ``"return"`` puts it in that spectrum's place so one bad spectrum spares the batch."""
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
    results: list[dict | Exception | None] = [None] * len(spectra)
    prepared = {}
    for i, spectrum in enumerate(spectra):
        try:
            prepared[i] = _Prepared(grid, spectrum)
        except ValueError as exc:
            if on_error == "raise":
                raise ValueError(f"spectrum {i}: {exc}") from exc
            results[i] = exc
    nodes = np.flatnonzero(grid.valid.ravel())
    order = list(prepared)
    for start in range(0, len(order), spectrum_chunk):
        ids = order[start : start + spectrum_chunk]
        chi2 = grid_chi2(grid, [prepared[i] for i in ids], cont_degree)
        for row, i in enumerate(ids):
            node = np.unravel_index(nodes[np.argmin(chi2[row])], grid.valid.shape)
            try:
                fit = _refine(grid, prepared[i], tuple(int(n) for n in node), cont_degree)
                fit.update(_quality(grid, prepared[i], fit, cont_degree, fit_floor))
                results[i] = fit
            except ValueError as exc:  # includes LinAlgError (a singular continuum solve)
                if on_error == "raise":
                    raise ValueError(f"spectrum {i}: {exc}") from exc
                results[i] = exc
    return results


def fit_spectrum(grid: ModelGrid, spectrum: Spectrum, cont_degree: int = CONT_DEGREE) -> dict:
    """Fit one spectrum: dict with RESULT_KEYS. Raises ValueError if it cannot be fitted."""
    try:
        return fit_many(grid, [spectrum], cont_degree=cont_degree)[0]
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("spectrum 0: ")) from None
