"""Readers against the real DR17 files committed under resources/real/sas."""

import numpy as np
import pytest
from astropy.io import fits

from starbatch.resources import REAL_SAS
from starbatch.sdss.readers import (
    BAD_PIXEL_MASK,
    PIXMASK_BITS,
    SpectrumError,
    check_apstar_grid,
    check_usable,
    read_apstar,
    read_apvisit,
)
from starbatch.sdss.spectrum import Spectrum, apstar_wavelength

REDUX = REAL_SAS / "dr17/apogee/spectro/redux"
GIANT = REDUX / "dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits"
DWARF = REDUX / "dr17/stars/apo25m/K04_083+13/apStar-dr17-2M19485057+5005279.fits"
VISIT = REDUX / "r13/visit/apo25m/N188/5095/55844/apVisit-r13-5095-55844-128.fits"
VISIT2 = REDUX / "r13/visit/apo25m/120-08-RV/9518/57729/apVisit-r13-9518-57729-104.fits"


def raw(path, hdu):
    with fits.open(path) as hdul:
        return np.asarray(hdul[hdu].data)


def test_apstar_stack_shape_wavelength_and_meta():
    s = read_apstar(GIANT)
    assert s.flux.shape == s.error.shape == s.bad.shape == s.wavelength.shape == (8575,)
    assert s.wavelength[0] == pytest.approx(15100.80, abs=0.01)
    assert s.wavelength[-1] == pytest.approx(16999.81, abs=0.01)
    assert np.all(np.diff(s.wavelength) > 0)
    assert s.meta["objid"] == "2M17335483-2753043"
    assert s.meta["field"] == "000+02"
    assert s.meta["telescope"] == "apo25m"  # from the file-name prefix: no TELESCOP card
    assert s.meta["snr"] == pytest.approx(154.155, abs=1e-3)
    assert s.meta["nvisits"] == 3
    assert s.meta["ra"] == pytest.approx(263.478474)
    assert s.meta["dec"] == pytest.approx(-27.884539)
    assert s.meta["path"] == str(GIANT) and s.meta["row"] == 0
    assert check_apstar_grid(s) is s


def test_apstar_bad_pixels():
    s = read_apstar(GIANT)
    bitmask = raw(GIANT, 3)[0]
    assert s.bad[:201].all() and s.bad[8378:].all()  # chip gaps (NaN in the stack)
    assert not s.bad[1000:1010].any()
    assert np.isinf(s.error[s.bad]).all() and np.isfinite(s.error[~s.bad]).all()
    assert s.bad[(bitmask & BAD_PIXEL_MASK) != 0].all()
    assert s.bad[(bitmask & (1 << PIXMASK_BITS["SIG_SKYLINE"])) != 0].all()
    # warning-only bits do not make a pixel bad
    tell_only = bitmask == (1 << PIXMASK_BITS["SIG_TELLURIC"])
    assert tell_only.sum() > 100 and not s.bad[tell_only].any()
    assert s.n_good == 7616
    # median S/N of the good pixels reproduces the header SNR
    assert np.median(s.flux[~s.bad] / s.error[~s.bad]) == pytest.approx(154, rel=0.02)


def test_apstar_row_selection():
    rows = [read_apstar(GIANT, row) for row in range(5)]
    flux = raw(GIANT, 1)
    for row, s in enumerate(rows):
        good = ~s.bad
        np.testing.assert_array_equal(s.flux[good], flux[row][good])
        assert s.meta["row"] == row
    assert not np.allclose(rows[2].flux[~rows[2].bad], rows[0].flux[~rows[2].bad])
    # visit rows mark the chip gaps with flux 0 (not NaN)
    assert rows[2].bad[:201].all() and (rows[2].flux[:201] == 0).all()
    assert rows[2].meta["visit_snr"] == pytest.approx(67.202, abs=1e-3)
    with pytest.raises(SpectrumError, match=r"apStar-dr17-2M17335483-2753043.*5 row"):
        read_apstar(GIANT, 5)
    with pytest.raises(SpectrumError, match="out of range"):
        read_apstar(GIANT, -1)


def test_apstar_one_visit():
    s = read_apstar(DWARF)
    assert s.meta["nvisits"] == 1 and s.meta["field"] == "K04_083+13"
    assert s.meta["snr"] == pytest.approx(137.489, abs=1e-3)
    assert s.n_good == 7491
    # in this file row 1 exists but is all zeros
    with pytest.raises(SpectrumError, match=r"no usable pixels.*2M19485057\+5005279.*row 1"):
        read_apstar(DWARF, 1)
    with pytest.raises(SpectrumError, match=r"2 row\(s\)"):
        read_apstar(DWARF, 2)


def test_apstar_1d_arrays(tmp_path):
    path = tmp_path / "apStar-dr17-2M00000000+0000000.fits"
    with fits.open(GIANT) as hdul:
        for i in (1, 2, 3):
            hdul[i].data = hdul[i].data[0]
        hdul.writeto(path)
    s = read_apstar(path)
    reference = read_apstar(GIANT)
    np.testing.assert_array_equal(s.bad, reference.bad)
    np.testing.assert_array_equal(s.flux[~s.bad], reference.flux[~s.bad])
    with pytest.raises(SpectrumError, match=r"1 row"):
        read_apstar(path, 1)


def test_apvisit_increasing_and_meta():
    s = read_apvisit(VISIT)
    assert s.flux.shape == (3 * 4096,)
    assert np.all(np.diff(s.wavelength) > 0)
    assert s.wavelength[0] == pytest.approx(15142.685, abs=1e-3)
    assert s.wavelength[-1] == pytest.approx(16954.791, abs=1e-3)
    flux = raw(VISIT, 1)
    assert s.flux[0] == flux[2, -1] and s.flux[-1] == flux[0, 0]  # blue end, red end
    assert s.meta["field"] == "N188"  # from the HDU11 table: not in the header
    assert s.meta["plate"] == "5095" and s.meta["mjd"] == 55844 and s.meta["fiber"] == 128
    assert s.meta["vhelio"] == pytest.approx(-33.1228, abs=1e-4)
    assert s.meta["bc"] == pytest.approx(11.2978, abs=1e-4)
    assert s.meta["vrad"] == pytest.approx(-44.4206, abs=1e-4)
    assert read_apvisit(VISIT2).meta["field"] == "120-08-RV"
    with pytest.raises(SpectrumError, match=r"apVisit-r13-5095.*not on the apStar.*found 12288"):
        check_apstar_grid(s)


@pytest.mark.parametrize("keep", [100, 3380, 2880 * 3, 58640, 300000, -2880 * 3])
def test_truncated_file(tmp_path, keep):
    data = DWARF.read_bytes()
    path = tmp_path / "apStar-truncated.fits"
    path.write_bytes(data[:keep])
    with pytest.raises(SpectrumError, match="apStar-truncated.fits"):
        read_apstar(path)


def test_not_fits_and_missing(tmp_path):
    path = tmp_path / "apStar-junk.fits"
    path.write_text("not a FITS file")
    with pytest.raises(SpectrumError, match="apStar-junk.fits.*unreadable"):
        read_apstar(path)
    with pytest.raises(FileNotFoundError, match="absent.fits"):
        read_apstar(tmp_path / "absent.fits")
    corrupt = tmp_path / "apStar-corrupt.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    with pytest.raises(SpectrumError, match="apStar-corrupt.fits"):
        read_apstar(corrupt)


def test_wrong_hdus_and_shapes(tmp_path):
    only_primary = tmp_path / "only-primary.fits"
    fits.PrimaryHDU().writeto(only_primary)
    with pytest.raises(SpectrumError, match=r"only-primary.fits.*missing HDU1 \(flux\)"):
        read_apstar(only_primary)
    with pytest.raises(SpectrumError, match=r"only-primary.fits.*missing HDU1"):
        read_apvisit(only_primary)

    table = tmp_path / "table.fits"
    with fits.open(GIANT) as hdul:
        hdul[1] = fits.BinTableHDU.from_columns([fits.Column("x", "D", array=[1.0])])
        hdul.writeto(table)
    with pytest.raises(SpectrumError, match=r"table.fits.*HDU1 \(flux\) is a BinTableHDU"):
        read_apstar(table)

    shapes = tmp_path / "shapes.fits"
    with fits.open(GIANT) as hdul:
        hdul[2].data = hdul[2].data[:, :100]
        hdul.writeto(shapes)
    with pytest.raises(SpectrumError, match=r"shapes.fits.*\(5, 8575\)/\(5, 100\)"):
        read_apstar(shapes)

    nwave = tmp_path / "nwave.fits"
    with fits.open(GIANT) as hdul:
        hdul[0].header["NWAVE"] = 8000
        hdul.writeto(nwave)
    with pytest.raises(SpectrumError, match="NWAVE=8000"):
        read_apstar(nwave)


def test_apstar_grid_and_usable_checks():
    wave = apstar_wavelength()
    flux = np.ones_like(wave)
    ok = Spectrum(wave, flux, flux * 0.01, np.zeros(wave.size, bool), {"path": "x.fits"})
    assert check_apstar_grid(ok) is ok
    shifted = Spectrum(wave * 1.0001, flux, flux, ok.bad, {"path": "x.fits"})
    with pytest.raises(SpectrumError, match=r"x.fits is not on the apStar.*expected 8575"):
        check_apstar_grid(shifted)
    short = Spectrum(wave[:100], flux[:100], flux[:100], ok.bad[:100], {})
    with pytest.raises(SpectrumError, match="found 100 pixels"):
        check_apstar_grid(short)
    nan = Spectrum(wave, flux * np.nan, np.full(wave.size, np.inf), ~ok.bad, {"path": "x.fits"})
    with pytest.raises(SpectrumError, match="no usable pixels in x.fits"):
        check_usable(nan)
    with pytest.raises(SpectrumError, match="no usable pixels"):
        check_apstar_grid(nan)
