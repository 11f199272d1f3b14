"""Training augmentation and benchmark perturbations (starbatch.offline.augment), and the
apogeenet v2 input preparation they are meant to meet."""

import numpy as np
import pytest

from starbatch.methods.apogeenet.inputs import prepare_inputs
from starbatch.methods.normalise import continuum_pixels, flatten_locally, normalise_many
from starbatch.offline import augment
from starbatch.offline.training_set import make_random_set, prior_model_flux
from starbatch.sdss.spectrum import apstar_wavelength


def _moments(profile):
    x = np.arange(len(profile))
    w = profile / profile.sum()
    mean = (w * x).sum()
    return mean, (w * (x - mean) ** 2).sum()


@pytest.mark.parametrize("resolution", [18500.0, 20000.0, 25000.0, 26500.0])
def test_change_lsf_gives_the_requested_width(resolution):
    line = np.exp(-0.5 * ((np.arange(401) - 200.0) / augment.sigma_pixels(22500.0)) ** 2)
    out = augment.change_lsf(line, augment.sigma_pixels(resolution))
    _, var = _moments(out)
    assert np.sqrt(var) == pytest.approx(augment.sigma_pixels(resolution), rel=0.02)
    assert out.sum() == pytest.approx(line.sum(), rel=1e-6)  # flux conserved


def test_shift_rv_moves_a_line_by_the_velocity():
    line = 1 - 0.5 * np.exp(-0.5 * ((np.arange(401) - 200.0) / 1.4) ** 2)
    mean, _ = _moments(1 - augment.shift_rv(line, 2 * augment.PIXEL_KMS))
    assert mean == pytest.approx(202.0, abs=0.01)


def test_augmented_and_perturbed_sets_are_seeded_and_differ(emulator):
    for star in (augment.augmented_star, augment.perturbed_star):
        a = make_random_set(emulator, 3, 50.0, seed=5, star=star)
        b = make_random_set(emulator, 3, 50.0, seed=5, star=star)
        np.testing.assert_array_equal(a.flux, b.flux)
    clean = make_random_set(emulator, 3, 50.0, seed=5)
    aug = make_random_set(emulator, 3, 50.0, seed=5, star=augment.augmented_star)
    np.testing.assert_array_equal(clean.labels, aug.labels)
    assert aug.bad.sum() > clean.bad.sum()  # masked runs and widened chip gaps


@pytest.fixture(scope="module")
def cont_mask(emulator):
    return continuum_pixels(prior_model_flux(emulator, n=300, seed=0))


def test_inputs_do_not_depend_on_the_continuum_shape(emulator, cont_mask):
    """A ripple the per-chip cubic cannot follow (2%, 150 A period) moves the v2 input by
    a sixth of its amplitude or less; without the local flattening, several times more."""
    model = emulator.flux([4500.0, 2.2, -0.2])
    wave = apstar_wavelength()
    ripple = 1 + 0.02 * np.sin(2 * np.pi * wave / 150.0)
    error = np.full_like(model, 1e-3)
    bad = ~np.isfinite(model) | (wave < 15150) | (wave > 16950)
    x0, _ = prepare_inputs(model[None], error[None], bad[None], cont_mask)
    x1, _ = prepare_inputs((model * ripple)[None], (error * ripple)[None], bad[None], cont_mask)
    plain = [
        normalise_many(f[None], error[None], bad[None], cont_mask) for f in (model, model * ripple)
    ]
    moved = np.abs(x1 - x0)[~bad[None]].mean() / 10
    moved_plain = np.abs(plain[1].flux - plain[0].flux)[~bad[None]].mean()
    assert moved < 0.02 / 6 and moved < moved_plain / 3, (moved, moved_plain)


def test_local_flattening_is_linear_so_noise_does_not_bias_it(emulator, cont_mask):
    """The mean over noise realisations equals the noise-free result (a running median
    would move by ~0.5 sigma)."""
    rng = np.random.default_rng(0)
    model = np.tile(emulator.flux([4800.0, 2.6, 0.0]), (200, 1))
    noisy = model + rng.normal(0, 0.05, model.shape)  # S/N 20
    error = np.full(model.shape, 0.05)
    bad = np.zeros(model.shape, bool)
    ref = flatten_locally(normalise_many(model[:1], error[:1], bad[:1], cont_mask), cont_mask)
    out = flatten_locally(normalise_many(noisy, error, bad, cont_mask), cont_mask)
    chip = (apstar_wavelength() > 15200) & (apstar_wavelength() < 16900)
    assert abs(np.mean(out.flux[:, chip] - ref.flux[:, chip])) < 1e-3
