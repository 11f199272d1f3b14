"""The emulator's best fit near given labels (methods.emulator_fit) and the flag built on
it (apogeenet's OFF_BEST_FIT): the normalised model is exactly what the preparation makes
of a model spectrum, its Jacobian is the derivative, the fit finds the labels that made a
spectrum, and labels the model fits markedly worse than others are flagged, while a
network's own labels on held-out spectra are not."""

import numpy as np
import pytest

from starbatch.analyses.apogeenet import ApogeeNet
from starbatch.engine import flags
from starbatch.methods.apogeenet.inputs import stages
from starbatch.methods.emulator import Emulator
from starbatch.offline.evaluation import default_params, make_tasks, run
from starbatch.offline.training_set import make_random_set
from starbatch.resources import EMULATOR

LABELS = np.array([[4800.0, 2.6, -0.2], [3900.0, 1.2, 0.1], [6100.0, 4.3, -0.8]])


@pytest.fixture(scope="module")
def loaded():
    analysis = ApogeeNet()
    params = default_params(ApogeeNet, n_draws=8)
    return analysis, analysis.load(params), params


@pytest.fixture(scope="module")
def reference(loaded):
    return loaded[1].reference


def test_normalised_model_is_what_the_preparation_makes_of_a_model_spectrum(reference):
    flux = reference.emulator.flux(LABELS)
    no_bad = np.zeros(flux.shape, bool)
    expected = stages(flux, np.full_like(flux, 1e-3), no_bad, reference.cont_mask)[0]
    assert (expected.bad == ~reference.valid).all()
    ok = reference.valid
    np.testing.assert_allclose(reference.flux(LABELS)[:, ok], expected.flux[:, ok], atol=1e-12)


def test_jacobian_is_the_derivative(reference):
    _, jac = reference.flux_and_jacobian(LABELS)
    for k, h in enumerate((0.5, 1e-3, 1e-3)):
        step = np.eye(3)[k] * h
        numeric = (reference.flux(LABELS + step) - reference.flux(LABELS - step)) / (2 * h)
        scale = np.abs(jac[:, k]).max()
        assert np.abs(numeric - jac[:, k]).max() < 1e-5 * scale


def test_best_fit_finds_the_labels_that_made_the_spectrum(reference):
    rng = np.random.default_rng(5)
    model = reference.flux(LABELS)
    error = np.full(model.shape, 0.01)
    flux = model + rng.normal(0, 0.01, model.shape)
    start = LABELS + [300.0, -0.5, 0.3]
    good = np.ones(model.shape, bool)
    found, fitted = reference.best_fit(flux, error, good, start, floor=0.0)
    assert np.all(np.abs(found - LABELS) < [30.0, 0.08, 0.03]), found - LABELS
    np.testing.assert_allclose(fitted, reference.flux(found))


def test_labels_the_model_fits_markedly_better_elsewhere_are_flagged(loaded, reference):
    """_quality at the true labels gives no excess; 600 K / 1 dex away it exceeds the
    threshold (what OFF_BEST_FIT tests) for all but the weakest-lined of six stars: the
    flag catches gross misreadings, not small biases."""
    analysis, model, params = loaded
    emulator = Emulator.load(EMULATOR)
    data = make_random_set(emulator, 6, 100.0, seed=31)
    spectra = data.spectra()
    cubic, _ = stages(
        np.stack([s.flux for s in spectra]),
        np.stack([s.error for s in spectra]),
        np.stack([s.bad for s in spectra]),
        model.cont_mask,
    )
    floor = params["fit_floor"]
    at_truth = ApogeeNet._quality(model, cubic, data.labels, floor)[2]
    off = ApogeeNet._quality(model, cubic, data.labels + [600.0, 1.0, 0.0], floor)[2]
    assert np.all(at_truth < 0.05), at_truth
    assert (off > params["max_chi2_excess"]).sum() >= 5, off


def test_network_labels_on_held_out_spectra_are_not_flagged(loaded):
    """No OFF_BEST_FIT on 64 held-out spectra (S/N 50 and 200); chi2_excess is reported."""
    analysis, model, params = loaded
    emulator = Emulator.load(EMULATOR)
    for snr, seed in ((50.0, 61), (200.0, 62)):
        spectra = make_random_set(emulator, 32, snr, seed=seed).spectra()
        results = run(analysis, model, make_tasks(spectra, params), ApogeeNet.chunk_size)
        excess = np.array([r["chi2_excess"] for r in results])
        assert np.all(excess >= 0) and np.all(excess < params["max_chi2_excess"] / 2), excess
        assert not any(r["flag"] & flags.OFF_BEST_FIT for r in results)
