"""The committed apStar-grid emulator and the functions that derived it."""

import numpy as np
import pytest

from starbatch.engine.atomic import save_npz
from starbatch.offline.emulator_derive import (
    FWHM_TO_SIGMA,
    air_to_vacuum,
    as_float32,
    float32_flux_error,
    smooth_and_resample,
)
from starbatch.resources import EMULATOR
from starbatch.sdss.spectrum import apstar_wavelength


def test_file_contents():
    assert EMULATOR.stat().st_size < 1_000_000
    with np.load(EMULATOR, allow_pickle=False) as d:
        assert d["theta"].shape == (8575, 20) and d["theta"].dtype == np.float32
        assert d["s2"].shape == (8575,) and np.all(d["s2"] >= 0)
        assert list(d["label_names"]) == ["teff", "logg", "feh"]
        np.testing.assert_allclose(d["fid"], [4500.0, 3.0, -1.0])
        np.testing.assert_allclose(d["scale"], [4500.0, 5.0, 3.0])
        np.testing.assert_allclose(d["label_min"], [3500.0, 0.0, -2.5])
        np.testing.assert_allclose(d["label_max"], [8000.0, 5.0, 0.5])


def test_vacuum_apstar_grid(emulator):
    np.testing.assert_allclose(emulator.wavelength, apstar_wavelength(), rtol=1e-12, atol=0)
    assert len(emulator.terms) == 19


def test_flux_looks_like_apogee_giant(emulator):
    flux = emulator.flux([4500.0, 2.5, 0.0])
    assert flux.shape == (8575,) and np.all(np.isfinite(flux))
    assert 0.3 < flux.min() < 0.6
    assert 0.9 < np.median(flux) < 0.98
    assert flux.max() < 1.05
    assert np.mean(flux < 0.9) > 0.1  # a dense line forest


def test_flux_physics(emulator):
    cool, hot = emulator.flux(np.array([[4000.0, 1.5, 0.0], [6500.0, 4.2, 0.0]]))
    poor = emulator.flux([4500.0, 2.0, -2.0])
    rich = emulator.flux([4500.0, 2.0, 0.3])
    assert np.mean(1 - cool) > 2 * np.mean(1 - hot)
    assert np.mean(1 - rich) > 2 * np.mean(1 - poor)


def test_air_to_vacuum_matches_morton():
    air = np.array([15000.0, 16000.0, 17000.0])
    vac = air_to_vacuum(air)
    # Morton (2000) IAU vacuum -> air formula, independent of the Ciddor one used
    s2 = (1e4 / vac) ** 2
    n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s2) + 1.5998e-4 / (38.9 - s2)
    np.testing.assert_allclose(vac / n, air, atol=1e-3)
    assert vac[1] - air[1] == pytest.approx(4.37, abs=0.01)


def test_lsf_width():
    # a line of sigma 0.15 A sampled at the source model's 0.1 A steps
    wave = np.arange(15900.0, 16100.0, 0.1)
    line = 1 - 0.5 * np.exp(-0.5 * ((wave - 16000.0) / 0.15) ** 2)
    out_wave = np.arange(15990.0, 16010.0, 0.002)
    out = smooth_and_resample(wave, line[:, None], out_wave, 22500.0)[:, 0]
    depth = 1 - out
    half = out_wave[depth >= depth.max() / 2]
    fwhm = half[-1] - half[0]
    expected = np.sqrt((16000.0 / 22500.0) ** 2 + (0.15 / FWHM_TO_SIGMA) ** 2)
    assert fwhm == pytest.approx(expected, rel=0.01)
    assert out_wave[np.argmax(depth)] == pytest.approx(16000.0, abs=0.005)
    # the equivalent width is conserved
    ew_in = np.sum(1 - line) * 0.1
    assert np.sum(depth) * 0.002 == pytest.approx(ew_in, rel=1e-3)


def test_float32_error_small(emulator):
    derived = {
        "theta": emulator.theta,
        "fid": emulator.fid,
        "scale": emulator.scale,
        "label_min": emulator.label_min,
        "label_max": emulator.label_max,
        "terms_json": str(emulator.terms),
        "s2": emulator.s2,
    }
    noisy = emulator.theta * (1 + 1e-6)
    assert float32_flux_error(as_float32(derived), emulator.theta) == 0.0
    assert float32_flux_error(as_float32({**derived, "theta": noisy}), emulator.theta) > 0


def test_save_npz_reproducible(tmp_path):
    arrays = {"a": np.arange(3.0), "s": np.array("text")}
    save_npz(tmp_path / "1.npz", arrays)
    save_npz(tmp_path / "2.npz", arrays)
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()
    with np.load(tmp_path / "1.npz", allow_pickle=False) as d:
        assert str(d["s"]) == "text" and d["a"].tolist() == [0.0, 1.0, 2.0]
