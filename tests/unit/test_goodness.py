"""POOR_FIT means something: spectra the models cannot describe (a hot star beyond the
grid, a featureless continuum, a strong artefact, a wrong wavelength solution) are
flagged by every label analysis, a star inside the model is not (the real DR17 files:
tests/workflow/test_real_spectra.py)."""

import numpy as np
import pytest

from starbatch.analyses.labels import FIT_FLOOR, MIN_LINE_SNR
from starbatch.analyses.registry import BUILTIN
from starbatch.engine import flags
from starbatch.methods.goodness import CONTINUUM_FLOOR, fit_quality, noise_correlation, poor_fit
from starbatch.offline.evaluation import default_params, make_tasks, run
from starbatch.offline.out_of_model import out_of_model_spectra


def test_floor_covers_line_depth_errors_not_missing_lines():
    """Wrong line depths (the model's error) are covered by the floor; lines the model
    does not have, and a continuum artefact, are not."""
    x = np.linspace(0, 1, 4000)
    model = 1 - 0.5 * (np.sin(200 * x) > 0.9)  # lines where the model has them
    sigma2 = np.full_like(x, 0.005**2)
    ones = np.ones_like(x)
    good = np.ones_like(x, bool)
    deeper = 1 - 1.2 * (1 - model)  # every line 20% deeper than the model
    missing = model - 0.2 * (np.cos(150 * x) > 0.95)  # extra lines the model lacks
    chi2 = {
        name: fit_quality(data, sigma2, model, ones, good, FIT_FLOOR, 3)[0][0]
        for name, data in (("deeper", deeper), ("missing", missing), ("exact", model))
    }
    assert chi2["exact"] == 0 and chi2["deeper"] < 1.5
    assert chi2["missing"] > 50
    no_floor = fit_quality(deeper, sigma2, model, ones, good, 0.0, 3)[0][0]
    assert no_floor > 10 * chi2["deeper"]  # without the floor the same star is a misfit
    assert CONTINUUM_FLOOR < 0.01


def test_noise_correlation_sees_correlated_noise_not_white_noise_or_a_smooth_misfit():
    """White noise: 1. The robustness set's noise ([1/4, 1/2, 1/4] smoothing, per-pixel
    sigma kept): 1 / sqrt(0.375) = 1.63, less the estimate's noise allowance (1.59). A
    misfit smooth over a few pixels on white noise (many times the noise) pulls the
    estimate down, to no correction; bad pixels are left out, whatever they hold."""
    from starbatch.offline.augment import correlated_t_noise

    rng = np.random.default_rng(11)
    sigma = 0.01 * (1.0 + 0.5 * np.sin(np.arange(8000) / 500.0 + rng.uniform(0, 6, (4, 1))))
    good = np.ones(sigma.shape, bool)
    white = rng.standard_normal(sigma.shape) * sigma
    correlated = np.stack([correlated_t_noise(8000, rng) for _ in range(4)]) * sigma
    misfit = white + 0.2 * np.sin(np.arange(8000) / 2.0)
    assert noise_correlation(white, sigma, good) == pytest.approx(np.ones(4), abs=0.03)
    assert noise_correlation(correlated, sigma, good) == pytest.approx(np.full(4, 1.59), abs=0.05)
    assert noise_correlation(misfit, sigma, good) == pytest.approx(np.ones(4), abs=1e-9)
    junk = white.copy()
    junk[:, ::7] = 1e3
    gaps = good.copy()
    gaps[:, ::7] = False
    assert noise_correlation(junk, sigma, gaps) == pytest.approx(np.ones(4), abs=0.03)


def test_line_snr_is_zero_for_a_featureless_spectrum():
    rng = np.random.default_rng(1)
    flat = 1 + rng.normal(0, 0.01, 3000)
    model = np.ones(3000)
    model[::50] = 0.99  # the weakest-lined model: explains nothing the data has
    sigma2 = np.full(3000, 0.01**2)
    chi2, line = fit_quality(flat, sigma2, model, np.ones(3000), np.ones(3000, bool), FIT_FLOOR, 3)
    assert chi2[0] < 2 and line[0] < MIN_LINE_SNR
    assert poor_fit(chi2, line, 5.0, MIN_LINE_SNR)[0]
    assert not poor_fit([1.0], [MIN_LINE_SNR + 1], 5.0, MIN_LINE_SNR)[0]


@pytest.fixture(scope="module")
def cases(emulator):
    return out_of_model_spectra(emulator)


@pytest.fixture(scope="module")
def demo_grid(tmp_path_factory, emulator):
    from starbatch.methods.gridfit.grid import DEMO_GRID, load_grid, save_grid
    from starbatch.offline.grids import build_grid

    path = tmp_path_factory.mktemp("grids") / "demo.npz"
    save_grid(path, build_grid(emulator, DEMO_GRID))
    return load_grid(path)


@pytest.mark.parametrize("name", ["gridfit", "apogeenet", "cannon"])
def test_poor_fit_flags_spectra_outside_the_model(name, cases, demo_grid):
    cls = BUILTIN[name]
    params = default_params(cls, **({"n_draws": 0} if name == "apogeenet" else {}))
    analysis = cls()
    model = demo_grid if name == "gridfit" else analysis.load(params)
    results = run(analysis, model, make_tasks(list(cases.values()), params), cls.chunk_size)
    got = dict(zip(cases, results, strict=True))
    summary = {k: (round(r["fit_chi2"], 1), round(r["line_snr"])) for k, r in got.items()}
    assert not got["giant"]["flag"] & flags.POOR_FIT, summary
    for case, result in got.items():
        if case != "giant":
            assert result["flag"] & flags.POOR_FIT, (case, summary)
