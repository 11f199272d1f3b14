"""Synthetic apStar files: layout like the real ones, exact round trip through the reader."""

import numpy as np
import pytest
from astropy.io import fits

from starbatch.offline.synthetic import (
    CHIP_GAPS,
    LABEL_MAX,
    LABEL_MIN,
    apogee_id,
    draw_labels,
    gap_mask,
    make_synthetic_star,
    rgb_logg,
    write_apstar,
)
from starbatch.resources import REAL_SAS
from starbatch.sdss.readers import BAD_PIXEL_MASK, check_apstar_grid, read_apstar

REAL = REAL_SAS / "dr17/apogee/spectro/redux/dr17/stars/apo25m"
META = {"FIELD": "SYN001", "OBJID": "2M00400000+2000000", "SNR": 80.0, "RA": 10.0, "DEC": 20.0}


@pytest.fixture(scope="module")
def star(emulator):
    return make_synthetic_star(emulator, [4600.0, 2.4, -0.2], 80.0, np.random.default_rng(3))


def test_round_trip(tmp_path, star):
    flux, error, bitmask = star
    path = write_apstar(tmp_path / "apStar-syn-2M00400000+2000000.fits", flux, error, bitmask, META)
    s = read_apstar(path)
    expected_bad = gap_mask() | ((bitmask & BAD_PIXEL_MASK) != 0)
    np.testing.assert_array_equal(s.bad, expected_bad)
    np.testing.assert_array_equal(s.flux[~s.bad], flux[~expected_bad])
    np.testing.assert_array_equal(s.error[~s.bad], error[~expected_bad])
    assert np.isinf(s.error[s.bad]).all()
    assert s.meta["field"] == "SYN001" and s.meta["objid"] == "2M00400000+2000000"
    assert s.meta["telescope"] == "apo25m" and s.meta["nvisits"] == 1
    assert s.meta["snr"] == 80.0 and s.meta["ra"] == 10.0 and s.meta["dec"] == 20.0
    check_apstar_grid(s)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_layout_matches_real(tmp_path, star):
    flux, error, bitmask = star
    path = write_apstar(tmp_path / "syn.fits", *(np.stack([a, a]) for a in star), META)
    with fits.open(REAL / "000+02/apStar-dr17-2M17335483-2753043.fits") as real:
        with fits.open(path) as syn:
            assert len(syn) == 8  # real HDU8-10 (LSF, RV tables) are not mimicked
            for key in ("CRVAL1", "CDELT1", "CRPIX1", "CTYPE1", "NWAVE"):
                assert syn[0].header[key] == real[0].header[key]
            for i in range(1, 8):
                assert syn[i].data.shape == (2, 8575)
                assert syn[i].data.dtype == real[i].data.dtype
                for key in ("CRVAL1", "CDELT1", "CRPIX1", "CTYPE1", "BUNIT"):
                    assert syn[i].header[key] == real[i].header[key]
            np.testing.assert_array_equal(syn[3].data[1], bitmask)
    assert read_apstar(path, 1).n_good == read_apstar(path, 0).n_good


def test_write_rejects_bad_shapes_and_overwrites(tmp_path, star):
    flux, error, bitmask = star
    path = tmp_path / "syn.fits"
    with pytest.raises(ValueError, match="shape"):
        write_apstar(path, flux, error[:100], bitmask, META)
    assert list(tmp_path.iterdir()) == []
    write_apstar(path, flux, error, bitmask, META)
    write_apstar(path, flux * 2, error, bitmask, {**META, "OBJID": "2M00000000+0000000"})
    assert read_apstar(path).meta["objid"] == "2M00000000+0000000"
    assert len(list(tmp_path.iterdir())) == 1


def test_synthetic_star_properties(emulator, star):
    flux, error, bitmask = star
    gaps = gap_mask()
    assert [(lo, hi) for lo, hi in CHIP_GAPS] == [
        (0, 200),
        (3320, 3536),
        (6126, 6294),
        (8378, 8574),
    ]
    assert np.isnan(flux[gaps]).all() and np.isnan(error[gaps]).all()
    assert np.isfinite(flux[~gaps]).all() and (bitmask[gaps] == 0).all()
    bad = (bitmask & BAD_PIXEL_MASK) != 0
    assert bad.sum() == round(0.01 * (~gaps).sum())
    assert ((bitmask != 0) & ~bad).sum() > 100  # warning-only bits, as in real stacks
    good = ~gaps & ~bad
    assert 100 < np.median(flux[good]) < 1000
    assert np.median(flux[good] / error[good]) == pytest.approx(80.0, rel=0.03)


def test_noise_is_gaussian_at_the_stated_error(emulator):
    rng = np.random.default_rng(5)
    labels = [5000.0, 3.0, 0.0]
    flux, error, bitmask = make_synthetic_star(emulator, labels, 50.0, rng, continuum=False)
    good = ~gap_mask() & ((bitmask & BAD_PIXEL_MASK) == 0)
    assert np.median(flux[good]) == pytest.approx(np.median(emulator.flux(labels)), abs=0.01)
    pulls = (flux - emulator.flux(labels))[good] / error[good]
    assert abs(np.mean(pulls)) < 0.05 and np.std(pulls) == pytest.approx(1.0, abs=0.03)


def test_labels_outside_emulator_rejected(emulator):
    with pytest.raises(ValueError, match="outside the emulator range"):
        make_synthetic_star(emulator, [3000.0, 1.0, 0.0], 50.0, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("ra", "dec", "expected"),
    [
        (263.478474, -27.884539, "2M17335483-2753043"),
        (297.210723, 50.091099, "2M19485057+5005279"),  # truncated, not rounded
        (19.658251, 84.061646, "2M01183798+8403419"),
        (6.111105, 53.688282, "2M00242666+5341178"),
        (0.0, -0.5, "2M00000000-0030000"),
        (359.9999999, 0.0, "2M23595999+0000000"),
    ],
)
def test_apogee_id(ra, dec, expected):
    assert apogee_id(ra, dec) == expected


def test_draw_labels():
    labels = draw_labels(3000, np.random.default_rng(11))
    assert labels.shape == (3000, 3)
    assert np.all(labels >= LABEL_MIN) and np.all(labels <= LABEL_MAX)
    np.testing.assert_array_equal(labels, draw_labels(3000, np.random.default_rng(11)))
    dwarfs = labels[:, 1] > 3.9
    assert 0.15 < dwarfs.mean() < 0.25
    giants = labels[~dwarfs]
    assert 4300 < np.median(giants[:, 0]) < 4800
    assert np.corrcoef(giants[:, 0], giants[:, 1])[0, 1] > 0.8
    resid = giants[:, 1] - rgb_logg(giants[:, 0], giants[:, 2])
    assert np.std(resid) == pytest.approx(0.2, abs=0.05)
    narrow = draw_labels(
        200, np.random.default_rng(1), label_min=[4000, 1, -1], label_max=[5000, 3, 0]
    )
    assert narrow[:, 0].min() >= 4000 and narrow[:, 1].max() <= 3 and narrow[:, 2].min() >= -1


def test_training_labels_cover_the_valid_range(emulator):
    """uniform_fraction: that share uniform over the declared range (metal-poor dwarfs
    included, which the prior lacks); 0 leaves the prior's draws as they were."""
    from starbatch.analyses.labels import VALID_RANGE
    from starbatch.offline.training_set import draw_trained_labels

    rng = np.random.default_rng(3)
    mixed = draw_trained_labels(emulator, 4000, rng, {"uniform_fraction": 0.5})
    prior = draw_trained_labels(emulator, 4000, np.random.default_rng(3))
    assert np.array_equal(
        prior,
        draw_trained_labels(emulator, 4000, np.random.default_rng(3), {"uniform_fraction": 0}),
    )

    def metal_poor_dwarfs(labels):
        return np.sum((labels[:, 1] > 3.8) & (labels[:, 2] < -1.2))

    assert metal_poor_dwarfs(prior) < 10 < 200 < metal_poor_dwarfs(mixed)
    lo = VALID_RANGE["feh"][0]
    assert np.sum(mixed[:, 2] < lo) > 50  # beyond the range's edge too
    assert np.all(mixed >= emulator.label_min) and np.all(mixed <= emulator.label_max)
