"""SDSS-V readers (DR19 apStar and apVisit, Astra's mwmStar and mwmVisit) on files built
to the published data models, cross-checked against specutils' SDSS-V loaders (an
independent maintained reader): same wavelengths, flux and uncertainties. Files of the
wrong kind give a SpectrumError naming the file, the reason and the flag."""

import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import InverseVariance
from specutils import Spectrum as SpecutilsSpectrum

from starbatch.engine import flags
from starbatch.offline.synthetic import make_synthetic_star
from starbatch.offline.synthetic_sdss5 import spectrum_row, write_apstar_dr19, write_mwm
from starbatch.resources import REAL_SAS
from starbatch.sdss.readers import (
    BAD_PIXEL_MASK,
    SpectrumError,
    check_apstar_grid,
    read_apstar,
    read_apvisit,
)
from starbatch.sdss.readers_mwm import read_mwm
from starbatch.sdss.spectrum import apstar_wavelength

REAL = REAL_SAS / "dr17/apogee/spectro/redux"
REAL_VISIT = REAL / "r13/visit/apo25m/N188/5095/55844/apVisit-r13-5095-55844-128.fits"
SOURCE = {
    "SDSS_ID": 1234567,
    "HEALPIX": 7769,
    "APOGEEID": "2M00400000+2000000",
    "RA": 10.0,
    "DEC": 20.0,
}


@pytest.fixture(scope="module")
def stars(emulator):
    rng = np.random.default_rng(11)
    return [
        make_synthetic_star(emulator, labels, snr, rng)
        for labels, snr in (([4600, 2.4, -0.2], 80), ([5200, 4.4, 0.1], 40))
    ]


def _row(star, **extra):
    columns = {"sdss_id": 1234567, "obj": "2M00400000+2000000", "snr": 80.0, **extra}
    return spectrum_row(*star, **columns)


@pytest.fixture
def mwm_star(tmp_path, stars):
    spectra = {
        ("APOGEE", "APO"): [_row(stars[0], telescope="apo25m", min_mjd=59800, max_mjd=59900)],
        ("APOGEE", "LCO"): [_row(stars[1], telescope="lco25m", min_mjd=59810, max_mjd=59820)],
    }
    return write_mwm(tmp_path / "mwmStar-0.6.0-1234567.fits", "mwmStar", SOURCE, spectra)


@pytest.fixture
def mwm_visit(tmp_path, stars):
    visits = [
        _row(s, telescope="apo25m", mjd=59800 + i, plate="100", fiber=5 + i, field="F")
        for i, s in enumerate(stars)
    ]
    return write_mwm(
        tmp_path / "mwmVisit-0.6.0-1234567.fits", "mwmVisit", SOURCE, {("APOGEE", "APO"): visits}
    )


def specutils_read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit and header chatter
        return SpecutilsSpectrum.read(path, **kwargs)


def assert_same_as_specutils(ours, theirs, row=None):
    """Same wavelengths everywhere; same flux and 1-sigma on every pixel we call good."""
    flux = theirs.flux.value if row is None else theirs.flux.value[row]
    uncertainty = theirs.uncertainty if row is None else theirs.uncertainty[row]
    sigma = uncertainty.array  # StdDevUncertainty (apStar) or InverseVariance (mwm)
    if isinstance(uncertainty, InverseVariance):
        with np.errstate(divide="ignore"):
            sigma = 1.0 / np.sqrt(uncertainty.array)
    np.testing.assert_allclose(
        ours.wavelength, theirs.spectral_axis.to("Angstrom").value, rtol=1e-12
    )
    good = ~ours.bad
    assert good.sum() > 7000
    np.testing.assert_allclose(ours.flux[good], flux[good], rtol=1e-6)
    np.testing.assert_allclose(ours.error[good], sigma[good], rtol=1e-6)
    assert np.isinf(ours.error[~good]).all()


def test_mwm_star_reads_the_apogee_hdu_of_each_observatory(mwm_star, stars):
    for observatory, star, hdu in (("APO", stars[0], 3), ("LCO", stars[1], 4)):
        s = read_mwm(mwm_star, "mwmStar", "APOGEE", observatory)
        flux, error, bitmask = star
        expected_bad = ~np.isfinite(flux) | ((bitmask & BAD_PIXEL_MASK) != 0)
        np.testing.assert_array_equal(s.bad, expected_bad)
        np.testing.assert_allclose(s.flux[~s.bad], flux[~s.bad], rtol=1e-6)  # stored float32
        np.testing.assert_allclose(s.error[~s.bad], error[~s.bad], rtol=1e-6)
        np.testing.assert_allclose(s.wavelength, apstar_wavelength(), rtol=1e-12)
        assert check_apstar_grid(s) is s
        assert s.meta["hdu"] == hdu and s.meta["observatory"] == observatory
        assert s.meta["sdss_id"] == 1234567 and s.meta["v_astra"] == "0.6.0"
        assert s.meta["healpix"] == 7769 and s.meta["telescope"] == f"{observatory.lower()}25m"
        assert s.meta["kind"] == "mwmStar" and s.meta["path"] == str(mwm_star)


def test_mwm_star_layout_follows_the_data_model(mwm_star):
    with fits.open(mwm_star) as hdul:
        assert [h.name for h in hdul] == [
            "PRIMARY",
            "BOSS/APO",
            "BOSS/LCO",
            "APOGEE/APO",
            "APOGEE/LCO",
        ]
        assert hdul[0].header["V_ASTRA"] == "0.6.0" and hdul[0].header["SDSS_ID"] == 1234567
        apogee = hdul[3]
        for key, value in (
            ("CRVAL", 4.179),
            ("CDELT", 6e-6),
            ("NPIXELS", 8575),
            ("CTYPE", "LOG-LINEAR"),
            ("OBSRVTRY", "APO"),
            ("INSTRMNT", "APOGEE"),
        ):
            assert apogee.header[key] == value
        assert {"flux", "ivar", "pixel_flags", "sdss_id", "telescope", "snr", "min_mjd"} <= set(
            apogee.columns.names
        )
        assert len(hdul[1].data) == 0 and hdul[1].header["DATASUM"] == "0"  # empty BOSS


def test_mwm_star_matches_specutils(mwm_star):
    for observatory, hdu in (("APO", 3), ("LCO", 4)):
        ours = read_mwm(mwm_star, "mwmStar", "APOGEE", observatory)
        assert_same_as_specutils(ours, specutils_read(mwm_star, format="SDSS-V mwm", hdu=hdu))


def test_mwm_visit_rows_match_specutils(mwm_visit):
    theirs = specutils_read(mwm_visit, format="SDSS-V mwm", hdu=3)
    for row in (0, 1):
        ours = read_mwm(mwm_visit, "mwmVisit", "APOGEE", "APO", row)
        assert ours.meta["mjd"] == 59800 + row
        assert_same_as_specutils(ours, theirs, row=row)
    with pytest.raises(SpectrumError, match=r"row 2 out of range; HDU3 \(APOGEE/APO\) has 2"):
        read_mwm(mwm_visit, "mwmVisit", "APOGEE", "APO", 2)


def test_dr19_apstar_matches_specutils(tmp_path, stars):
    flux, error, bitmask = (np.stack([a, a, a]) for a in stars[0])
    path = write_apstar_dr19(
        tmp_path / "apStar-1.4-lco25m-2M00400000+2000000.fits",
        flux,
        error,
        bitmask,
        {"APRED": "1.4", "HEALPIX": 7769, "OBJID": "2M00400000+2000000", "NVISITS": 1},
    )
    with fits.open(path) as hdul:
        assert len(hdul) == 11 and hdul[0].header["SURVEY"] == "sdss-v"
    for row in (0, 2):
        ours = read_apstar(path, row)
        assert ours.meta["healpix"] == 7769
        assert_same_as_specutils(ours, specutils_read(path, format="SDSS-V apStar", idx=row))


def test_dr19_apstar_telescope_comes_from_the_file_name(tmp_path, stars):
    """DR19 names say lco25m while the prefix is 'ap' for both telescopes."""
    path = write_apstar_dr19(tmp_path / "apStar-1.4-lco25m-2M1.fits", *stars[0], {"APRED": "1.4"})
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["TELESCOP"]
    assert read_apstar(path).meta["telescope"] == "lco25m"


def test_dr19_apvisit_matches_specutils(tmp_path):
    """A DR19 apVisit has the DR17 layout (3 chips x 4096, HDU1-4 flux, error, mask,
    wavelength) with SURVEY='sdss-v' and the telescope in the name."""
    path = tmp_path / "apVisit-1.4-apo25m-5095-55844-128.fits"
    shutil.copy(REAL_VISIT, path)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["SURVEY"] = "sdss-v"
    ours = read_apvisit(path)
    theirs = specutils_read(path, format="SDSS-V apVisit")
    order = np.argsort(theirs.spectral_axis.value, kind="stable")
    np.testing.assert_allclose(ours.wavelength, theirs.spectral_axis.value[order], rtol=1e-12)
    good = ~ours.bad
    np.testing.assert_allclose(ours.flux[good], theirs.flux.value[order][good], rtol=1e-6)
    np.testing.assert_allclose(ours.error[good], theirs.uncertainty.array[order][good], rtol=1e-6)


# Files of the wrong kind: (what, reader call, flag, message pieces).
def test_apstar_given_as_mwm_star_names_file_and_reason(tmp_path, stars):
    path = write_apstar_dr19(tmp_path / "apStar-1.4-apo25m-2M1.fits", *stars[0], {"APRED": "1.4"})
    with pytest.raises(
        SpectrumError,
        match=r"apStar-1.4-apo25m-2M1.fits: not an mwmStar file.*"
        r"V_ASTRA.*looks like an apStar",
    ) as info:
        read_mwm(path, "mwmStar")
    assert info.value.flag == flags.READ_ERROR


def test_mwm_star_with_empty_apogee_hdu_is_flagged_no_spectrum(mwm_star, tmp_path, stars):
    boss = {
        "flux": np.ones(4648),
        "ivar": np.ones(4648),
        "pixel_flags": np.zeros(4648),
        "telescope": "apo25m",
        "sdss_id": 1234567,
        "min_mjd": 1,
        "max_mjd": 2,
    }
    boss_only = write_mwm(
        tmp_path / "mwmStar-0.6.0-42.fits", "mwmStar", SOURCE, {("BOSS", "APO"): [boss]}
    )
    with pytest.raises(
        SpectrumError,
        match=r"mwmStar-0.6.0-42.fits: HDU3 \(APOGEE/APO\) .*"
        r"empty.*BOSS-only star.*HDU1 BOSS/APO",
    ) as info:
        read_mwm(boss_only, "mwmStar", "APOGEE", "APO")
    assert info.value.flag == flags.NO_SPECTRUM
    empty = write_mwm(tmp_path / "mwmStar-0.6.0-43.fits", "mwmStar", SOURCE, {})
    with pytest.raises(SpectrumError, match="the file has no spectra") as info:
        read_mwm(empty, "mwmStar", "APOGEE", "LCO")
    assert info.value.flag == flags.NO_SPECTRUM


def test_mwm_visit_given_as_mwm_star_and_back(mwm_star, mwm_visit):
    with pytest.raises(SpectrumError, match=r"mwmVisit-0.6.0-1234567.fits: an mwmVisit file, not"):
        read_mwm(mwm_visit, "mwmStar")
    with pytest.raises(SpectrumError, match=r"an mwmStar file, not mwmVisit"):
        read_mwm(mwm_star, "mwmVisit")


def test_mwm_star_given_as_apstar_names_the_hdu(mwm_star):
    with pytest.raises(SpectrumError, match=r"mwmStar-0.6.0-1234567.fits: HDU1 \(flux\) is a Bin"):
        read_apstar(mwm_star)


def test_boss_hdu_is_not_on_the_apstar_grid(tmp_path):
    boss = {
        "flux": np.ones(4648),
        "ivar": np.ones(4648),
        "pixel_flags": np.zeros(4648),
        "telescope": "apo25m",
        "min_mjd": 1,
        "max_mjd": 2,
    }
    path = write_mwm(
        tmp_path / "mwmStar-0.6.0-44.fits", "mwmStar", SOURCE, {("BOSS", "APO"): [boss]}
    )
    s = read_mwm(path, "mwmStar", "BOSS", "APO")
    assert s.wavelength[0] == pytest.approx(10**3.5523) and s.n_good == 4648
    with pytest.raises(SpectrumError, match="not on the apStar wavelength grid"):
        check_apstar_grid(s)
