import numpy as np
import pytest

from starbatch.methods.continuum import chip_of, normalise
from starbatch.methods.gridfit import fit as gridfit
from starbatch.methods.gridfit.grid import GridSpec
from starbatch.offline.grids import build_grid
from starbatch.offline.synthetic import make_synthetic_star
from starbatch.sdss.readers import bad_pixels
from starbatch.sdss.spectrum import Spectrum

# 558 valid nodes (~19 MB); the corner Teff > 5500 K, logg < 3.5 is untrained (NaN nodes).
SPEC = GridSpec(teff=(4000, 6000, 250), logg=(1.0, 4.5, 0.5), feh=(-1.5, 0.5, 0.25))
# Off-grid labels: giants, dwarfs, and one beside the untrained hole.
TRUTHS = np.array(
    [
        [4321, 2.34, -0.37],
        [4873, 3.10, -1.12],
        [5222, 4.05, 0.18],
        [4110, 1.37, -0.61],
        [5480, 3.30, -0.20],
        [5800, 4.20, 0.30],
        [5450, 3.40, -0.20],  # best node (5500, 3.5): two valid boxes beside the hole
    ]
)
LABELS = ("teff", "logg", "feh")


@pytest.fixture(scope="module")
def grid(emulator):
    return build_grid(emulator, SPEC)


def synthetic(emulator, labels, snr, seed) -> Spectrum:
    """A synthetic apStar-like star (continuum, noise, bad pixels, chip gaps) as a Spectrum."""
    flux, error, bitmask = make_synthetic_star(emulator, labels, snr, np.random.default_rng(seed))
    bad = bad_pixels(flux, error, bitmask)
    return Spectrum(emulator.wavelength, flux, np.where(bad, np.inf, error), bad)


def deltas(fits, truths=TRUTHS):
    return np.array([[f[k] for k in LABELS] for f in fits]) - truths


def test_noiseless_off_grid_labels_recovered(emulator, grid):
    # S/N 1e6: what is left is interpolation and continuum error, not noise. Measured
    # <= 0.32 K, 0.0017 dex, 0.0002 dex; interpolating quadratically instead: up to 3.4 K.
    fits = gridfit.fit_many(grid, [synthetic(emulator, t, 1e6, i) for i, t in enumerate(TRUTHS)])
    d = np.abs(deltas(fits))
    assert (d[:, 0] < 1.0).all(), d  # K
    assert (d[:, 1] < 0.003).all(), d  # dex
    assert (d[:, 2] < 0.001).all(), d  # dex
    assert not any(f["at_edge"] for f in fits)


@pytest.mark.parametrize(
    "snr, tol",
    # Tolerances ~4x the scatter measured at that S/N (scripts/evaluate_accuracy.py).
    [(50, (50.0, 0.1, 0.05)), (100, (30.0, 0.06, 0.03))],
)
def test_noisy_synthetic_recovered(emulator, grid, snr, tol):
    spectra = [synthetic(emulator, t, snr, 100 + i) for i, t in enumerate(TRUTHS)]
    fits = gridfit.fit_many(grid, spectra)
    d = deltas(fits)
    assert (np.abs(d) < np.array(tol)).all(), d
    err = np.array([[f[k + "_err"] for k in LABELS] for f in fits])
    assert np.isfinite(err).all() and (err > 0).all()
    pull = d / err
    assert (np.abs(pull) < 5).all(), pull
    assert 0.4 < np.sqrt(np.mean(pull**2)) < 1.8, pull  # errors are 1-sigma, not 3 or 1/3
    chi2 = np.array([f["chi2_red"] for f in fits])
    assert ((chi2 > 0.85) & (chi2 < 1.15)).all(), chi2  # the model is exact: chi2_red ~ 1
    assert all(f["n_pix"] > 7000 for f in fits)
    assert set(fits[0]) == set(gridfit.RESULT_KEYS)


def test_errors_shrink_with_snr(emulator, grid):
    low, high = (
        gridfit.fit_spectrum(grid, synthetic(emulator, TRUTHS[0], s, 7)) for s in (25, 100)
    )
    for k in LABELS:
        assert 2.5 < low[k + "_err"] / high[k + "_err"] < 6  # ~4 for 4x the S/N


def test_errors_scaled_by_sqrt_chi2_red(emulator, grid):
    s = synthetic(emulator, TRUTHS[0], 50, 21)
    under = Spectrum(s.wavelength, s.flux, s.error / 2, s.bad)  # noise underestimated 2x
    right, wrong = gridfit.fit_spectrum(grid, s), gridfit.fit_spectrum(grid, under)
    assert wrong["chi2_red"] == pytest.approx(4 * right["chi2_red"], rel=0.05)
    for k in LABELS:  # the sqrt(chi2_red) scaling restores honest errors
        assert wrong[k + "_err"] == pytest.approx(right[k + "_err"], rel=0.1)


def test_errors_widened_by_a_mismatch_that_neighbouring_pixels_share(emulator, grid, monkeypatch):
    # A line-spread function 20% wider than the emulator's: the residuals are the same
    # shape at every line, so neighbouring pixels share them (resid_corr ~ the excess).
    from starbatch.methods.goodness import widening
    from starbatch.offline.augment import change_lsf, sigma_pixels

    rng = np.random.default_rng(5)
    model = change_lsf(emulator.flux(TRUTHS[0].astype(float)), 1.2 * sigma_pixels(22500.0))
    flux = model * 1000.0
    error = np.full(len(flux), 1000.0 / 200.0)  # S/N 200
    noisy = flux + rng.standard_normal(len(flux)) * error
    clean = synthetic(emulator, TRUTHS[0], 200, 5)
    wide_bad = np.zeros(len(flux), bool)
    wide = Spectrum(emulator.wavelength, noisy, error, wide_bad)
    fits = {name: gridfit.fit_spectrum(grid, s) for name, s in (("clean", clean), ("wide", wide))}
    assert abs(fits["clean"]["resid_corr"]) < 0.05  # noise alone: ~0
    wide = fits["wide"]
    assert wide["chi2_red"] > 1.5 and wide["resid_corr"] > 0.5 * (wide["chi2_red"] - 1)
    factor = widening(wide["chi2_red"], wide["resid_corr"], wide["n_pix"], gridfit.EXCESS_SCALE)
    assert (factor > 2 * np.sqrt(wide["chi2_red"])).all()  # far more than sqrt(chi2_red)
    # The fit's own errors carry it: without the scale they are sqrt(chi2_red) wider only.
    monkeypatch.setattr(gridfit, "EXCESS_SCALE", (0.0, 0.0, 0.0))
    plain = gridfit.fit_spectrum(grid, Spectrum(emulator.wavelength, noisy, error, wide_bad))
    for i, k in enumerate(LABELS):
        ratio = wide[k + "_err"] / plain[k + "_err"]
        assert ratio == pytest.approx(factor[i] / np.sqrt(wide["chi2_red"]), rel=1e-6)
    # and nothing for noise alone, or for white excess (see the test above)
    assert widening(1.0, 0.0, 7000, gridfit.EXCESS_SCALE) == pytest.approx(np.ones(3))
    assert widening(4.0, 0.0, 7000, gridfit.EXCESS_SCALE) == pytest.approx(np.full(3, 2.0))
    expected = np.sqrt(4.0 + np.square(gridfit.EXCESS_SCALE) * (3.0 - 2 * 4 * np.sqrt(2 / 7000)))
    assert widening(4.0, 3.0, 7000, gridfit.EXCESS_SCALE) == pytest.approx(expected)


def test_interpolation_reproduces_the_cubic_emulator(emulator, grid):
    # The emulator is cubic in the labels, so the cubic (4-node) interpolation is exact
    # up to float32 storage; a quadratic one is off by ~1e-3.
    for labels in ([4321, 2.34, -0.37], [5123, 3.9, 0.1], [4480, 1.2, -1.4]):
        model = gridfit.model_spectrum(grid, labels)
        np.testing.assert_allclose(model, emulator.flux(np.array(labels, float)), atol=2e-5)
    for outside in ([5800, 2.0, 0.0], [3900, 2.0, 0.0]):  # untrained hole; beyond the grid
        with pytest.raises(ValueError, match="outside the grid's valid"):
            gridfit.model_spectrum(grid, outside)


def test_fit_many_equals_fit_spectrum(emulator, grid):
    spectra = [synthetic(emulator, t, 60, 200 + i) for i, t in enumerate(TRUTHS[:5])]
    # chunk 2 of 5 spectra: batching and chunk boundaries must not mix spectra up
    many = gridfit.fit_many(grid, spectra, spectrum_chunk=2)
    for spectrum, batch in zip(spectra, many, strict=True):
        one = gridfit.fit_spectrum(grid, spectrum)
        assert one["at_edge"] == batch["at_edge"] and one["n_pix"] == batch["n_pix"]
        for k in set(one) - {"at_edge", "n_pix"}:
            assert one[k] == pytest.approx(batch[k], rel=1e-7), k


def test_refinement_recentres_from_a_distant_node(emulator, grid):
    # Started two nodes (500 K, 1 dex) away, the minimum first lands on a face of the
    # +-1 box; re-centring must walk to the same answer as starting at the best node.
    prep = gridfit._Prepared(grid, synthetic(emulator, TRUTHS[0], 100, 31))
    good = gridfit._refine(grid, prep, (1, 3, 4), gridfit.CONT_DEGREE)
    far = gridfit._refine(grid, prep, (3, 1, 4), gridfit.CONT_DEGREE)
    for k in LABELS:
        assert far[k] == pytest.approx(good[k], abs=1e-3 * good[k + "_err"])
    assert not far["at_edge"]


def test_grid_chi2_matches_direct_least_squares(emulator, grid):
    """The matrix-product chi2 equals fitting model x per-chip polynomial pixel by pixel."""
    prep = gridfit._Prepared(grid, synthetic(emulator, TRUTHS[1], 80, 3))
    chi2 = gridfit.grid_chi2(grid, [prep], cont_degree=2, model_chunk=250)[0]
    nodes = np.flatnonzero(grid.valid.ravel())
    flux = grid.flux.reshape(len(grid.valid.ravel()), -1)
    for n in (0, 123, len(nodes) - 1):
        m = flux[nodes[n]].astype(float)
        total = 0.0
        for c in range(3):
            use = prep.chip == c
            basis = gridfit._basis(grid.wavelength[use], c, 2).T
            sw = np.sqrt(prep.w[use])
            design = (m[use] * sw)[:, None] * basis
            coef = np.linalg.lstsq(design, prep.f[use] * sw, rcond=None)[0]
            total += np.sum((prep.f[use] * sw - design @ coef) ** 2)
        assert chi2[n] == pytest.approx(total, rel=1e-8)


def test_best_fit_beyond_the_grid_is_at_edge(emulator, grid):
    fit = gridfit.fit_spectrum(grid, synthetic(emulator, [4600, 4.8, -0.5], 100, 5))
    assert fit["at_edge"]
    assert fit["logg"] == pytest.approx(4.5)


def test_few_good_pixels_raise(emulator, grid):
    s = synthetic(emulator, TRUTHS[0], 50, 9)
    bad = np.ones_like(s.bad)
    bad[2000:2100] = False
    few = Spectrum(s.wavelength, s.flux, np.where(bad, np.inf, s.error), bad)
    with pytest.raises(ValueError, match=r"only \d+ good pixels \(gridfit needs >= 300\)"):
        gridfit.fit_spectrum(grid, few)
    with pytest.raises(ValueError, match="spectrum 1: .*good pixels"):
        gridfit.fit_many(grid, [s, few])
    out = gridfit.fit_many(grid, [s, few, s], on_error="return")
    assert isinstance(out[1], ValueError) and out[0] == out[2]


def test_unflagged_nan_is_masked_not_propagated(emulator, grid):
    s = synthetic(emulator, TRUTHS[2], 80, 11)
    flux = s.flux.copy()
    flux[[1000, 4000, 7000]] = np.nan  # corrupt pixels the mask does not know about
    fit = gridfit.fit_spectrum(grid, Spectrum(s.wavelength, flux, s.error, s.bad))
    bad = s.bad.copy()
    bad[[1000, 4000, 7000]] = True
    ref = gridfit.fit_spectrum(
        grid, Spectrum(s.wavelength, flux, np.where(bad, np.inf, s.error), bad)
    )
    assert all(np.isfinite(fit[k]) for k in LABELS)
    assert fit["n_pix"] == ref["n_pix"] and fit["teff"] == pytest.approx(ref["teff"], rel=1e-9)


def test_wrong_wavelength_grid_raises(emulator, grid):
    s = synthetic(emulator, TRUTHS[0], 50, 12)
    with pytest.raises(ValueError, match="not the grid's"):
        gridfit.fit_spectrum(
            grid, Spectrum(s.wavelength[:-5], s.flux[:-5], s.error[:-5], s.bad[:-5])
        )


def test_continuum_normalisation(emulator):
    s = synthetic(emulator, TRUTHS[0], 100, 13)
    n = normalise(s.wavelength, s.flux, s.error, s.bad)
    gaps = chip_of(s.wavelength) < 0
    assert n.bad[gaps].all() and np.isinf(n.error[n.bad]).all()
    assert (n.bad == (s.bad | gaps)).all()  # nothing else lost
    good = ~n.bad
    # A pseudo-continuum: the upper envelope of the lines sits near 1, the median below it.
    assert 0.97 < np.percentile(n.flux[good], 90) < 1.03
    assert np.isfinite(n.flux[good]).all()
