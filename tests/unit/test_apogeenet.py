"""apogeenet: the network, its input preparation, the committed weights, vectorised
inference, and the training rule (a tiny run in a temporary directory)."""

import json
import shutil

import numpy as np
import pytest
import torch

from smk import snakemake, tiny_config
from starbatch.analyses.apogeenet import ApogeeNet
from starbatch.analyses.registry import BUILTIN
from starbatch.engine import flags
from starbatch.methods.apogeenet import inputs
from starbatch.methods.apogeenet import network as nn
from starbatch.offline import train_apogeenet
from starbatch.offline.evaluation import default_params, estimates, make_tasks, run
from starbatch.offline.training_set import make_random_set
from starbatch.resources import MODELS

WEIGHTS = MODELS / "apogeenet-v2.pt"


@pytest.fixture(scope="module")
def model():
    return nn.load_model(WEIGHTS, "cpu")


def test_network_is_the_published_convolutional_stack():
    net = nn.build_network(hidden=32)
    convs = [m for m in net if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 12
    assert [c.in_channels for c in convs] + [convs[-1].out_channels] == list(nn.CHANNELS)
    assert all(c.kernel_size == (3,) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool1d) for m in net) == 6
    assert net(torch.zeros(2, 1, 8575)).shape == (2, 3)


def test_input_preparation_masks_bad_pixels_and_clips_errors(emulator):
    data = make_random_set(emulator, 2, 50.0, seed=3)
    mask = np.ones(8575, bool)
    bad = data.bad.copy()
    bad[0, 4000:4010] = True
    error = data.error.copy()
    error[0, 5000] = 1e6  # an absurd but unflagged error
    x, e = inputs.prepare_inputs(data.flux, error, bad, mask)
    assert x.dtype == np.float32 and x.shape == (2, 8575)
    assert np.all(x[bad] == 0) and np.all(e[bad] == 0)  # bad: continuum, no draw noise
    assert np.all(x >= -inputs.INPUT_SCALE) and np.all(x <= 0.5 * inputs.INPUT_SCALE)
    good_e = e[0][~bad[0]]
    assert e[0, 5000] == pytest.approx(inputs.ERROR_CLIP * np.median(good_e), rel=0.02)
    # The continuum is divided out: the median good input sits near the continuum (0).
    assert abs(np.median(x[0][~bad[0]])) < 0.5


def test_committed_weights_load_with_weights_only_and_are_small(model):
    assert WEIGHTS.stat().st_size < 3_000_000
    payload = torch.load(WEIGHTS, weights_only=True)  # raises if anything is pickled
    assert payload["format"] == nn.FORMAT
    scores = json.loads((MODELS / "apogeenet-v2.scores.json").read_text())
    train_cfg = json.loads((MODELS / "apogeenet-v2.train.json").read_text())
    # The weights were made by exactly the committed training config.
    assert {k: model.meta["config"][k] for k in train_cfg} == train_cfg
    assert scores["config"] == model.meta["config"]
    assert model.cont_mask.sum() > 500


def test_accuracy_on_held_out_synthetic_spectra(emulator, model):
    """Labels from the realistic prior, seeded apart from training and validation."""
    data = make_random_set(emulator, 40, 100.0, seed=4242)
    x, e = inputs.prepare_inputs(data.flux, data.error, data.bad, model.cont_mask)
    values, errors = model.predict(x, e, n_draws=8)
    d = values - data.labels
    scatter = 1.4826 * np.median(np.abs(d - np.median(d, axis=0)), axis=0)
    assert scatter[0] < 100 and scatter[1] < 0.2 and scatter[2] < 0.08, scatter
    assert np.all(np.abs(np.median(d, axis=0)) < [60, 0.1, 0.05]), np.median(d, axis=0)
    assert np.all(errors > 0) and np.all(np.isfinite(errors))


def test_analysis_is_vectorised_and_batch_independent(emulator):
    """A chunk of spectra gives exactly what one-at-a-time gives; a spectrum off the
    apStar grid is flagged BAD_DATA without affecting the others."""
    spectra = make_random_set(emulator, 5, 60.0, seed=99).spectra()
    off_grid = spectra[2]
    off_grid.wavelength = off_grid.wavelength * 1.001
    analysis = ApogeeNet()
    params = default_params(ApogeeNet, n_draws=4)
    loaded = analysis.load(params)
    together = run(analysis, loaded, make_tasks(spectra, params), chunk=5)
    alone = run(analysis, loaded, make_tasks(spectra, params), chunk=1)
    assert isinstance(together[2], ValueError) and together[2].flag == flags.BAD_DATA
    v1, e1, _ = estimates(together)
    v2, e2, _ = estimates(alone)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    np.testing.assert_allclose(e1, e2, rtol=1e-4)
    assert np.isnan(v1[2]).all() and np.isfinite(v1[[0, 1, 3, 4]]).all()


def test_errors_grow_with_noise_correlated_between_pixels(emulator, monkeypatch):
    """The draws are white: on a spectrum whose noise is correlated over 3 pixels (the
    robustness set's, per-pixel sigma as stated) the draws' spread is multiplied by the
    residuals' noise_corr (~1.6), on white noise by ~1."""
    from starbatch.methods import goodness
    from starbatch.offline.augment import correlated_t_noise
    from starbatch.sdss.spectrum import Spectrum

    rng = np.random.default_rng(7)
    flux = 1000.0 * emulator.flux(np.array([4700.0, 2.5, 0.0]))
    error = np.full(len(flux), 1000.0 / 50.0)
    bad = np.zeros(len(flux), bool)
    spectra = [
        Spectrum(emulator.wavelength, flux + noise * error, error, bad)
        for noise in (rng.standard_normal(len(flux)), correlated_t_noise(len(flux), rng))
    ]
    analysis, params = ApogeeNet(), default_params(ApogeeNet)
    loaded = analysis.load(params)
    white, correlated = run(analysis, loaded, make_tasks(spectra, params), 2)
    assert white["noise_corr"] == pytest.approx(1.0, abs=0.05)
    assert 1.4 < correlated["noise_corr"] < 1.8
    monkeypatch.setattr(goodness, "noise_correlation", lambda r, e, g: np.ones(len(r)))
    plain = run(analysis, loaded, make_tasks(spectra, params), 2)[1]
    for i, k in enumerate(("teff", "logg", "feh")):
        term = loaded.model_error[i]
        noise = [np.sqrt(r[k + "_err"] ** 2 - term**2) for r in (correlated, plain)]
        assert noise[0] / noise[1] == pytest.approx(correlated["noise_corr"], rel=1e-6)


def test_parameters_and_model_path():
    cls = BUILTIN["apogeenet"]
    names = ("apstar_row", "model", "n_draws", "max_chi2_red", "fit_floor", "max_chi2_excess")
    assert cls.significant_names() == names  # device is not
    path = cls.model_files({"model": "v2"})[0]
    assert path == str(WEIGHTS) and WEIGHTS.is_absolute()
    with pytest.raises(ValueError, match="unsafe"):
        cls.model_files({"model": "../x"})
    with pytest.raises(ValueError, match="n_draws"):
        ApogeeNet().load(default_params(ApogeeNet, n_draws=1))
    assert nn.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            nn.resolve_device("cuda")


def test_training_is_reproducible_to_the_byte(emulator, tmp_path):
    cfg = {"n_train": 24, "epochs": 1, "n_valid": 4, "valid_snr": [50], "batch_size": 8}
    cfg.update(n_calib=3, calib_draws=2)
    results = []
    for name in ("a.pt", "sub/b.pt"):
        net, meta, scores = train_apogeenet.train(emulator, cfg)
        nn.save_model(tmp_path / name, net, meta)
        results.append(scores["by_snr"])
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub/b.pt").read_bytes()
    assert results[0] == results[1]
    assert meta["cont_mask"].sum() > 500
    assert meta["model_error"].shape == (3,) and np.all(meta["model_error"] >= 0)


@pytest.mark.slow
def test_train_rule_writes_loadable_weights(tmp_path):
    tiny_config(tmp_path)
    models = tmp_path / "resources/models"
    models.mkdir(parents=True)
    tiny = {"n_train": 16, "epochs": 1, "n_valid": 4, "valid_snr": [50], "batch_size": 8}
    tiny.update(n_calib=3, calib_draws=2)
    (models / "apogeenet-v2.train.json").write_text(json.dumps(tiny))
    snakemake(tmp_path, "train_apogeenet")
    loaded = nn.load_model(models / "apogeenet-v2.pt", "cpu")
    assert loaded.meta["config"]["n_train"] == 16
    scores = json.loads((models / "apogeenet-v2.scores.json").read_text())
    assert set(scores["validation"]["by_snr"]["50"]) == {"teff", "logg", "feh"}
    assert (tmp_path / "logs/train/apogeenet-v2.log").read_text().count("epoch 1/1") == 1
    assert (tmp_path / "benchmarks/train/apogeenet-v2.tsv").exists()
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
