"""cannon: the quadratic Cannon's training and vectorised test step, the committed
model, and the training rule (a tiny run in a temporary directory)."""

import json
import zipfile

import numpy as np
import pytest

from smk import snakemake, tiny_config
from starbatch.analyses.cannon import Cannon
from starbatch.engine import flags
from starbatch.methods.cannon import model as cm
from starbatch.methods.normalise import Prepared
from starbatch.offline import train_cannon
from starbatch.offline.evaluation import default_params, estimates, make_tasks, run
from starbatch.offline.training_set import make_random_set
from starbatch.resources import MODELS

MODEL = MODELS / "cannon-v2.npz"


@pytest.fixture(scope="module")
def model():
    return cm.CannonModel.load(MODEL)


@pytest.mark.parametrize("order", [2, 3])
def test_design_jacobian_matches_finite_differences(order):
    x = np.random.default_rng(0).normal(size=(4, 3))
    jac = cm.design_jacobian(x, order)
    assert jac.shape == (4, {2: 10, 3: 20}[order], 3)
    h = 1e-6
    for k in range(3):
        dx = np.zeros(3)
        dx[k] = h
        numeric = (cm.design(x + dx, order) - cm.design(x - dx, order)) / (2 * h)
        np.testing.assert_allclose(jac[:, :, k], numeric, atol=1e-8)


def test_training_recovers_a_known_model_and_its_scatter():
    rng = np.random.default_rng(1)
    n, npix = 3000, 40
    labels = np.column_stack(
        [rng.uniform(3800, 5200, n), rng.uniform(0.5, 3.5, n), rng.uniform(-1.5, 0.4, n)]
    )
    truth = train_cannon.train(labels, np.zeros((n, npix)), np.ones((n, npix)), np.ones(npix, bool))
    truth.theta = rng.normal(0, 0.05, (npix, cm.NTERMS))
    truth.theta[:, 0] += 0.8
    s_true = np.where(np.arange(npix) % 2 == 0, 0.0, 0.02)
    sigma = 0.01
    flux = truth.flux(labels) + rng.normal(0, 1, (n, npix)) * np.hypot(sigma, s_true)
    ivar = np.full((n, npix), sigma**-2)
    ivar[rng.random((n, npix)) < 0.05] = 0  # bad pixels carry no weight
    flux[ivar == 0] = 1e3
    fitted = train_cannon.train(labels, flux, ivar, np.ones(npix, bool))
    # Prediction error expected ~ noise x sqrt(terms / spectra) ~ 1e-3.
    rms = np.sqrt(np.mean((fitted.flux(labels) - truth.flux(labels)) ** 2))
    assert rms < 2e-3, rms
    np.testing.assert_allclose(fitted.theta[:, :4], truth.theta[:, :4], atol=0.01)
    np.testing.assert_allclose(np.sqrt(fitted.s2[1::2]), 0.02, rtol=0.1)
    assert np.all(np.sqrt(fitted.s2[0::2]) < 0.004)


def test_test_step_fits_a_whole_batch_from_far_starts(model):
    """Noisy model spectra of very different stars, fitted in one call."""
    rng = np.random.default_rng(2)
    labels = np.array([[3700, 0.8, -0.2], [4650, 2.5, 0.1], [5800, 4.3, -0.6], [4300, 4.6, 0.2]])
    flux = model.flux(labels)
    error = np.full_like(flux, 0.005)
    bad = np.zeros(flux.shape, bool)
    bad[:, :300] = True
    noisy = flux + rng.normal(0, 1, flux.shape) * np.sqrt(error**2 + model.s2)
    fit = cm.fit_labels(model, Prepared(noisy, np.where(bad, np.inf, error), bad))
    assert fit["converged"].all()
    err = np.sqrt(np.einsum("nii->ni", fit["cov"]))
    pull = (fit["labels"] - labels) / err
    assert np.all(np.abs(pull) < 5), pull
    assert np.all(np.abs(fit["labels"] - labels) < [30, 0.06, 0.03])
    assert np.all(fit["n_pix"] == 8575 - 300)


def test_model_file_is_plain_arrays_and_small(model):
    assert MODEL.stat().st_size < 1_000_000
    with np.load(MODEL, allow_pickle=False) as d:
        assert str(d["format"]) == cm.FORMAT
        # cubic: a quadratic cannot follow the spectra over the valid range
        assert d["theta"].shape == (8575, 20) and model.order == 3
    with zipfile.ZipFile(MODEL) as zf:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    train_cfg = json.loads((MODELS / "cannon-v2.train.json").read_text())
    assert {k: model.config[k] for k in train_cfg} == train_cfg


def test_accuracy_on_held_out_synthetic_spectra(emulator):
    data = make_random_set(emulator, 60, 50.0, seed=4343)
    analysis = Cannon()
    params = default_params(Cannon)
    loaded = analysis.load(params)
    values, errors, flag = estimates(
        run(analysis, loaded, make_tasks(data.spectra(), params), Cannon.chunk_size)
    )
    d = values - data.labels
    scatter = 1.4826 * np.median(np.abs(d - np.median(d, axis=0)), axis=0)
    assert scatter[0] < 60 and scatter[1] < 0.15 and scatter[2] < 0.04, scatter
    assert np.all(np.abs(np.median(d, axis=0)) < [25, 0.05, 0.02]), np.median(d, axis=0)
    assert not np.any(flag & flags.FAILED)
    # Reported errors are the noise part only (the formal covariance): never larger than
    # the real scatter, which also holds the quadratic model's own error.
    pull = 1.4826 * np.median(np.abs(d / errors), axis=0)
    assert np.all(pull > 0.8), pull
    assert np.all(np.isfinite(errors) & (errors > 0))


def test_single_and_chunked_results_are_identical(emulator):
    spectra = make_random_set(emulator, 6, 80.0, seed=98).spectra()
    analysis = Cannon()
    params = default_params(Cannon)
    loaded = analysis.load(params)
    v1, e1, f1 = estimates(run(analysis, loaded, make_tasks(spectra, params), 6))
    v2, e2, f2 = estimates(run(analysis, loaded, make_tasks(spectra, params), 1))
    np.testing.assert_allclose(v1, v2, rtol=1e-6, atol=1e-6)  # [Fe/H] ~ 0: absolute
    np.testing.assert_allclose(e1, e2, rtol=1e-5)
    assert list(f1) == list(f2)


def test_training_is_reproducible_bytes(emulator, tmp_path):
    cfg = {"n_train": 80, "n_valid": 5, "valid_snr": [50], "n_calib": 5}
    for name in ("a", "b"):
        model, _ = train_cannon.train_from_emulator(emulator, cfg)
        model.save(tmp_path / f"{name}.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    # training calibrates the widening's scale too (finite: 0 where none reaches unit pulls)
    assert model.excess_scale.shape == (3,) and np.all(np.isfinite(model.excess_scale))
    assert cm.CannonModel.load(tmp_path / "a.npz").excess_scale == pytest.approx(model.excess_scale)


@pytest.mark.slow
def test_train_rule_writes_loadable_model(tmp_path):
    tiny_config(tmp_path)
    models = tmp_path / "resources/models"
    models.mkdir(parents=True)
    tiny = {"n_train": 60, "n_valid": 5, "valid_snr": [50], "n_calib": 5}
    (models / "cannon-v2.train.json").write_text(json.dumps(tiny))
    snakemake(tmp_path, "train_cannon")
    loaded = cm.CannonModel.load(models / "cannon-v2.npz")
    assert loaded.config["n_train"] == 60 and loaded.theta.shape == (8575, cm.NTERMS)
    scores = json.loads((models / "cannon-v2.scores.json").read_text())
    assert scores["validation"]["n_per_snr"] == 5


def test_a_model_file_from_before_the_excess_scale_widens_by_sqrt_chi2_red_only(tmp_path):
    from starbatch.engine.atomic import save_npz

    with np.load(MODELS / "cannon-v2.npz") as d:
        save_npz(tmp_path / "old.npz", {k: d[k] for k in d.files if k != "excess_scale"})
    assert np.all(cm.CannonModel.load(tmp_path / "old.npz").excess_scale == 0)


def test_store_writes_the_calibrated_scale_into_an_older_project_model(
    emulator, tmp_path, monkeypatch
):
    """calibrate_model_error.py --excess --store: the project's own cannon-v2.npz (made
    before training calibrated the scale) gets one; nothing else in it changes, and its
    scores JSON gets the scale and the file's new checksum."""
    import hashlib
    import shutil

    from starbatch.engine.atomic import save_npz
    from starbatch.offline.calibration import store_excess_scale

    models = tmp_path / "resources/models"
    models.mkdir(parents=True)
    with np.load(MODELS / "cannon-v2.npz") as d:
        save_npz(models / "cannon-v2.npz", {k: d[k] for k in d.files if k != "excess_scale"})
    shutil.copy(MODELS / "cannon-v2.scores.json", models)
    monkeypatch.chdir(tmp_path)
    scale = store_excess_scale(emulator, n=10)
    stored = cm.CannonModel.load(models / "cannon-v2.npz")
    assert np.all(np.isfinite(scale)) and stored.excess_scale == pytest.approx(scale)
    shipped = cm.CannonModel.load(MODELS / "cannon-v2.npz")
    np.testing.assert_array_equal(stored.theta, shipped.theta)
    np.testing.assert_array_equal(stored.model_error, shipped.model_error)
    scores = json.loads((models / "cannon-v2.scores.json").read_text())
    assert scores["excess_scale"] == pytest.approx(scale, abs=1e-3)
    assert scores["sha256"] == hashlib.sha256((models / "cannon-v2.npz").read_bytes()).hexdigest()
