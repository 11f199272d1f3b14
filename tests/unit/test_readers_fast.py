"""The readers (starbatch.sdss.fitsfile, os.pread) against a reference written here with
astropy.io.fits: the readers as they were before fitsfile.py, an independent path for
everything FITS (headers, HDU list, truncation, arrays, table cells). For every product,
on the real DR17 files and synthetic files of each kind, good and broken, both must give
the same Spectrum (arrays equal with their dtypes, meta equal with its types) or the same
SpectrumError (flag and message; where the FITS library's own words are in the message,
only the file and the "unreadable" reason)."""

from __future__ import annotations

import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from starbatch.engine import flags
from starbatch.offline.synthetic import make_synthetic_star, write_apstar
from starbatch.offline.synthetic_sdss5 import spectrum_row, write_apstar_dr19, write_mwm
from starbatch.resources import REAL_SAS
from starbatch.sdss.products import PRODUCTS
from starbatch.sdss.readers import (
    APSTAR_META,
    APVISIT_META,
    SpectrumError,
    _telescope_from_name,
    bad_pixels,
    check_usable,
    read_apstar,
    read_apvisit,
)
from starbatch.sdss.readers_mwm import HDU_INDEX, KIND_COLUMN, MWM_META, ROW_META, read_mwm
from starbatch.sdss.spectrum import Spectrum

REDUX = REAL_SAS / "dr17/apogee/spectro/redux"
GIANT = REDUX / "dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits"
DWARF = REDUX / "dr17/stars/apo25m/K04_083+13/apStar-dr17-2M19485057+5005279.fits"
VISITS = sorted(REDUX.glob("r13/visit/*/*/*/*/apVisit-*.fits"))
SOURCE = {"SDSS_ID": 1234567, "HEALPIX": 7769, "APOGEEID": "2M00400000+2000000", "RA": 10.0}


# --- the reference: astropy.io.fits --------------------------------------------------------


@contextmanager
def ref_open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*truncated.*")
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError, Warning) as exc:
        raise SpectrumError(f"{path}: unreadable or truncated FITS file ({exc})") from exc
    try:
        yield hdul
    finally:
        hdul.close()


def ref_image(hdul, index: int, what: str, path: Path) -> np.ndarray:
    if index >= len(hdul):
        raise SpectrumError(
            f"{path}: missing HDU{index} ({what}); file has only {len(hdul)} HDU(s)"
        )
    hdu = hdul[index]
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
        raise SpectrumError(f"{path}: HDU{index} ({what}) is a {type(hdu).__name__}, not an image")
    try:
        data = hdu.data
    except (OSError, ValueError, TypeError) as exc:
        raise SpectrumError(f"{path}: unreadable or truncated FITS file ({exc})") from exc
    if data is None:
        raise SpectrumError(f"{path}: HDU{index} ({what}) has no data")
    return np.asarray(data, dtype=np.int64 if data.dtype.kind in "iu" else np.float64)


def ref_card(header, key: str, kind):
    value = header.get(key)
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    try:
        return str(value).strip() if kind is str else kind(value)
    except (TypeError, ValueError):
        return None


def ref_meta(header, cards: dict) -> dict:
    values = {key: ref_card(header, card, kind) for key, (card, kind) in cards.items()}
    return {key: value for key, value in values.items() if value is not None}


def ref_wavelength(header, npix, path, where="the HDU0 or HDU1 header", axis="1", count="NWAVE"):
    crval, cdelt = ref_card(header, f"CRVAL{axis}", float), ref_card(header, f"CDELT{axis}", float)
    if crval is None or cdelt is None:
        raise SpectrumError(f"{path}: no CRVAL{axis}/CDELT{axis} in {where}")
    ncard = ref_card(header, count, int)
    if ncard is not None and ncard != npix:
        raise SpectrumError(f"{path}: header {count}={ncard} but the arrays have {npix} pixels")
    crpix = ref_card(header, f"CRPIX{axis}", float) or 1.0
    return 10.0 ** (crval + cdelt * (np.arange(npix) + 1.0 - crpix))


def ref_apstar(path: Path, row: int = 0) -> Spectrum:
    with ref_open(path) as hdul:
        flux, error, bitmask = (
            ref_image(hdul, i, what, path)
            for i, what in ((1, "flux"), (2, "error"), (3, "bitmask"))
        )
        header = hdul[0].header
        wcs = header if "CRVAL1" in header else hdul[1].header
    if not (flux.shape == error.shape == bitmask.shape) or flux.ndim not in (1, 2):
        raise SpectrumError(
            f"{path}: flux/error/bitmask shapes {flux.shape}/{error.shape}/{bitmask.shape} "
            "must be equal and (nrows, npix) or (npix,)"
        )
    flux, error, bitmask = (np.atleast_2d(a) for a in (flux, error, bitmask))
    nrows, npix = flux.shape
    if not 0 <= row < nrows:
        raise SpectrumError(
            f"{path}: row {row} out of range; file has {nrows} row(s) (0-{nrows - 1})"
        )
    wavelength = ref_wavelength(wcs, npix, path)
    flux, error, bitmask = flux[row], error[row], bitmask[row]
    bad = bad_pixels(flux, error, bitmask)
    meta = ref_meta(header, APSTAR_META)
    if "telescope" not in meta:
        meta.update(_telescope_from_name(path.name))
    if row >= 2 and ref_card(header, f"SNRVIS{row - 1}", float) is not None:
        meta["visit_snr"] = ref_card(header, f"SNRVIS{row - 1}", float)
    meta.update(path=str(path), row=row, kind="apStar")
    return check_usable(Spectrum(wavelength, flux, np.where(bad, np.inf, error), bad, meta))


def ref_apvisit(path: Path) -> Spectrum:
    with ref_open(path) as hdul:
        flux, error, bitmask, wave = (
            ref_image(hdul, i, what, path)
            for i, what in ((1, "flux"), (2, "error"), (3, "mask"), (4, "wavelength"))
        )
        header = hdul[0].header
        field = None
        if len(hdul) > 11 and isinstance(hdul[11], fits.BinTableHDU):
            table = hdul[11].data
            if table is not None and "FIELD" in table.names and len(table):
                field = str(table["FIELD"][0]).strip() or None
    if not (flux.shape == error.shape == bitmask.shape == wave.shape) or flux.ndim != 2:
        raise SpectrumError(
            f"{path}: flux/error/mask/wavelength shapes "
            f"{flux.shape}/{error.shape}/{bitmask.shape}/{wave.shape} must be equal (nchip, npix)"
        )
    order = np.argsort(wave, axis=None, kind="stable")
    wave, flux, error, bitmask = (a.ravel()[order] for a in (wave, flux, error, bitmask))
    if not np.all(np.diff(wave) > 0):
        raise SpectrumError(f"{path}: wavelengths are not finite and distinct across chips")
    bad = bad_pixels(flux, error, bitmask)
    meta = ref_meta(header, APVISIT_META)
    if field:
        meta["field"] = field
    meta.update(path=str(path), nvisits=1, kind="apVisit")
    return check_usable(Spectrum(wave, flux, np.where(bad, np.inf, error), bad, meta))


def ref_mwm(path: Path, kind="mwmStar", instrument="APOGEE", observatory="APO", row=0):
    index = HDU_INDEX[(instrument, observatory)]
    name = f"{instrument}/{observatory}"
    with ref_open(path) as hdul:
        header = hdul[0].header
        if "V_ASTRA" not in header or "SDSS_ID" not in header:
            looks = (
                "; it looks like an apStar/apVisit file (image HDUs): use an ApStarFile or "
                "ApVisitFile analysis"
                if len(hdul) > 1 and isinstance(hdul[1], fits.ImageHDU)
                else ""
            )
            raise SpectrumError(f"{path}: not an {kind} file: HDU0 has no V_ASTRA/SDSS_ID{looks}")
        other = "mwmVisit" if kind == "mwmStar" else "mwmStar"
        for hdu in hdul[1:5]:
            names = hdu.columns.names if isinstance(hdu, fits.BinTableHDU) else []
            if KIND_COLUMN[other] in names and KIND_COLUMN[kind] not in names:
                raise SpectrumError(
                    f"{path}: an {other} file, not {kind} (HDU {hdu.name} has a "
                    f"{KIND_COLUMN[other]!r} column): use an {other} analysis"
                )
        if index >= len(hdul) or not isinstance(hdul[index], fits.BinTableHDU):
            found = type(hdul[index]).__name__ if index < len(hdul) else "nothing"
            raise SpectrumError(
                f"{path}: HDU{index} ({name}) should be a binary table; found {found}"
            )
        extname = str(hdul[index].header.get("EXTNAME", "")).strip().upper()
        if extname and extname != name:
            raise SpectrumError(f"{path}: HDU{index} is {extname!r}, expected {name!r}")
        table = hdul[index].data
        table = table if table is not None else np.zeros(0, dtype=[("flux", "f4")])
        if len(table) == 0:
            others = [
                f"HDU{i} {hdul[i].name}"
                for i in range(1, min(len(hdul), 5))
                if i != index
                and isinstance(hdul[i], fits.BinTableHDU)
                and hdul[i].data is not None
                and len(hdul[i].data)
            ]
            boss_only = others and all("BOSS" in o for o in others)
            where = (
                f"; a BOSS-only star (spectra only in {', '.join(others)})"
                if boss_only
                else (
                    f"; spectra only in {', '.join(others)}"
                    if others
                    else "; the file has no spectra"
                )
            )
            raise SpectrumError(
                f"{path}: HDU{index} ({name}) of this {kind} is empty: no {name} spectrum{where}",
                flags.NO_SPECTRUM,
            )
        if not 0 <= row < len(table):
            raise SpectrumError(
                f"{path}: row {row} out of range; HDU{index} ({name}) has {len(table)} "
                f"row(s) (0-{len(table) - 1})"
            )
        record = table[row]

        def pixels(column):
            try:
                values = np.asarray(record[column])
            except KeyError:
                raise SpectrumError(f"{path}: HDU{index} has no {column!r} column") from None
            if column == "pixel_flags":
                return values.astype(np.float64).astype(np.int64).ravel()
            return values.astype(np.float64).ravel()

        flux, ivar, pixel_flags = pixels("flux"), pixels("ivar"), pixels("pixel_flags")
        if "wavelength" in record.array.names:
            wavelength = np.asarray(record["wavelength"], dtype=np.float64).ravel()
        else:
            where = f"HDU{index} (and no wavelength column)"
            hdu_header = hdul[index].header
            wavelength = ref_wavelength(hdu_header, flux.size, path, where, "", "NPIXELS")
        meta = ref_meta(header, MWM_META)
        for column, kind_ in ROW_META.items():
            if column in table.names:
                meta[column] = kind_(np.asarray(record[column]).item())
    if not (flux.shape == ivar.shape == pixel_flags.shape == wavelength.shape):
        raise SpectrumError(
            f"{path}: HDU{index} ({name}) flux/ivar/pixel_flags/wavelength shapes "
            f"{flux.shape}/{ivar.shape}/{pixel_flags.shape}/{wavelength.shape} differ"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.inf)
    bad = bad_pixels(flux, error, pixel_flags)
    meta.update(
        path=str(path),
        row=row,
        kind=kind,
        instrument=instrument,
        hdu=index,
        observatory=observatory,
        nvisits=meta.get("nvisits", 1),
    )
    return check_usable(Spectrum(wavelength, flux, np.where(bad, np.inf, error), bad, meta))


# --- comparing ---------------------------------------------------------------------------

# The reader under test and its reference, by product.
PAIRS = {
    "apStar": (read_apstar, ref_apstar),
    "apVisit": (read_apvisit, ref_apvisit),
    **{
        kind: (lambda p, *a, k=kind: read_mwm(p, k, *a), lambda p, *a, k=kind: ref_mwm(p, k, *a))
        for kind in ("mwmStar", "mwmVisit")
    },
}
# The FITS library's own words in a message (astropy's, or fitsfile's) are not compared.
_LIBRARY_WORDS = re.compile(r"(unreadable or truncated FITS file) \(.*\)$", re.S)


def outcome(read, path, *args):
    try:
        return read(Path(path), *args)
    except SpectrumError as exc:
        return exc


def assert_same(kind: str, path, *args) -> Spectrum | SpectrumError:
    """The reader and the reference agree on ``path`` (read with ``args``)."""
    ours, theirs = (outcome(read, path, *args) for read in PAIRS[kind])
    if isinstance(theirs, SpectrumError):
        assert isinstance(ours, SpectrumError), f"{path} {args}: read, but the reference: {theirs}"
        assert ours.flag == theirs.flag
        assert str(path) in str(ours)
        assert _LIBRARY_WORDS.sub(r"\1", str(ours)) == _LIBRARY_WORDS.sub(r"\1", str(theirs))
        return ours
    assert not isinstance(ours, SpectrumError), f"{path} {args}: {ours}"
    for field in ("wavelength", "flux", "error", "bad"):
        mine, ref = getattr(ours, field), getattr(theirs, field)
        assert mine.dtype == ref.dtype and mine.shape == ref.shape, field
        np.testing.assert_array_equal(mine, ref, err_msg=f"{path} {args} {field}")
    assert ours.meta == theirs.meta and list(ours.meta) == list(theirs.meta)
    assert {k: type(v) for k, v in ours.meta.items()} == {
        k: type(v) for k, v in theirs.meta.items()
    }
    return ours


# --- files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def star(emulator):
    return make_synthetic_star(emulator, [4600, 2.4, -0.2], 80, np.random.default_rng(3))


@pytest.fixture(scope="module")
def files(tmp_path_factory, star):
    """One file of each product (synthetic where the offline tooling writes one)."""
    d = tmp_path_factory.mktemp("products")
    row = {"sdss_id": 1234567, "obj": "2M00400000+2000000", "snr": 80.0, "telescope": "apo25m"}
    meta = {"FIELD": "000+02", "OBJID": "2M00400000+2000000", "SNR": 80.0, "SNRVIS1": 41.5}
    out = {
        "apStar": write_apstar(
            d / "apStar-dr17-2M00400000+2000000.fits", *(np.stack([a] * 3) for a in star), meta
        ),
        "apStar1d": write_apstar(d / "apStar-dr17-2M00400000+2000001.fits", *star, meta),
        "apStarDR19": write_apstar_dr19(
            d / "apStar-1.4-lco25m-2M00400000+2000000.fits",
            *(np.stack([a] * 3) for a in star),
            {**meta, "APRED": "1.4", "HEALPIX": 7769, "TELESCOP": "lco25m"},
        ),
        "apVisitDR19": d / "apVisit-1.4-apo25m-5095-55844-128.fits",
        "mwmStar": write_mwm(
            d / "mwmStar-0.6.0-1234567.fits",
            "mwmStar",
            SOURCE,
            {
                ("APOGEE", "APO"): [spectrum_row(*star, **row, min_mjd=1, max_mjd=2)],
                ("APOGEE", "LCO"): [spectrum_row(*star, **{**row, "telescope": "lco25m"})],
            },
        ),
        "mwmVisit": write_mwm(
            d / "mwmVisit-0.6.0-1234567.fits",
            "mwmVisit",
            SOURCE,
            {("APOGEE", "APO"): [spectrum_row(*star, **row, mjd=59800 + i) for i in range(3)]},
        ),
    }
    shutil.copy(VISITS[0], out["apVisitDR19"])
    with fits.open(out["apVisitDR19"], mode="update") as hdul:
        hdul[0].header["SURVEY"] = "sdss-v"
    return out


# --- good files ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "rows"), [(GIANT, range(-1, 6)), (DWARF, range(3))])
def test_real_apstar_every_row(path, rows):
    for row in rows:
        assert_same("apStar", path, row)


@pytest.mark.parametrize("path", VISITS, ids=lambda p: p.name)
def test_real_apvisit(path):
    assert assert_same("apVisit", path).meta["field"]


def test_synthetic_files_of_every_product(files):
    for row in range(-1, 4):
        assert_same("apStar", files["apStar"], row)
        assert_same("apStar", files["apStarDR19"], row)
        assert_same("mwmVisit", files["mwmVisit"], "APOGEE", "APO", row)
    assert_same("apStar", files["apStar1d"], 0)
    assert_same("apStar", files["apStar1d"], 1)
    assert_same("apVisit", files["apVisitDR19"])
    for observatory in ("APO", "LCO"):
        for instrument in ("APOGEE", "BOSS"):
            assert_same("mwmStar", files["mwmStar"], instrument, observatory)


def test_every_product_through_its_data_product(files):
    """The batch runner's call: product.read(path, **read_params), then meta."""
    cases = [
        ("ApStarFile", files["apStar"], {"apstar_row": 2}, ref_apstar, (2,)),
        ("ApVisitFile", VISITS[1], {}, ref_apvisit, ()),
        ("ApStarFileDR19", files["apStarDR19"], {"apstar_row": 0}, ref_apstar, (0,)),
        ("ApVisitFileDR19", files["apVisitDR19"], {}, ref_apvisit, ()),
        (
            "MwmStarFile",
            files["mwmStar"],
            {"observatory": "LCO"},
            ref_mwm,
            ("mwmStar", "APOGEE", "LCO"),
        ),
        (
            "MwmVisitFile",
            files["mwmVisit"],
            {"mwm_row": 2},
            ref_mwm,
            ("mwmVisit", "APOGEE", "APO", 2),
        ),
    ]
    assert {c[0] for c in cases} == set(PRODUCTS)
    for product, path, params, reference, args in cases:
        ours, theirs = PRODUCTS[product].read(path, **params), reference(Path(path), *args)
        assert ours.meta == theirs.meta
        np.testing.assert_array_equal(ours.flux, theirs.flux)


# --- broken files --------------------------------------------------------------------------


def cut_points(path: Path) -> list[int]:
    """Offsets to truncate ``path`` at: every card of the first header, and around every
    place where an HDU's header or data starts or ends (in between, all cuts are alike)."""
    size = path.stat().st_size
    points = set(range(0, 2880, 80))
    with fits.open(path) as hdul:
        for i in range(len(hdul)):
            info = hdul.fileinfo(i)
            start, data, end = info["hdrLoc"], info["datLoc"], info["datLoc"] + info["datSpan"]
            for at in (start, start + 80, data - 80, data, (data + end) // 2, end):
                points.update(at + d for d in (-1, 0, 1))
    return sorted(p for p in points if 0 <= p < size)


@pytest.mark.parametrize(
    ("kind", "name", "args"),
    [
        ("apStar", "apStar", (0,)),
        ("apStar", "apStarDR19", (2,)),
        ("apVisit", "apVisitDR19", ()),
        ("mwmStar", "mwmStar", ("APOGEE", "LCO")),
        ("mwmVisit", "mwmVisit", ("APOGEE", "APO", 1)),
    ],
)
def test_truncated_anywhere(tmp_path, files, kind, name, args):
    data = files[name].read_bytes()
    path = tmp_path / files[name].name
    flagged = 0
    for keep in cut_points(files[name]):
        path.write_bytes(data[:keep])
        flagged += isinstance(assert_same(kind, path, *args), SpectrumError)
    assert flagged > 0


def test_truncated_real_apstar(tmp_path):
    data = DWARF.read_bytes()
    path = tmp_path / DWARF.name
    for keep in cut_points(DWARF):
        path.write_bytes(data[:keep])
        assert_same("apStar", path)


def _edit(src: Path, dst: Path, edit, checksum: bool = False) -> Path:
    with fits.open(src) as hdul:
        edit(hdul)
        hdul.writeto(dst, output_verify="silentfix", checksum=checksum)
    return dst


def _patch(src: Path, dst: Path, old: bytes, new: bytes, count: int = 1) -> Path:
    data = src.read_bytes()
    assert len(old) == len(new) and old in data
    dst.write_bytes(data.replace(old, new, count))
    return dst


def _with_card(src: Path, dst: Path, keyword: str, card: str) -> Path:
    """``src`` with its HDU0 card ``keyword`` replaced by ``card`` (as written: astropy
    would normalise it)."""
    data = bytearray(src.read_bytes())
    at = next(i for i in range(0, 2880, 80) if data[i : i + 8] == f"{keyword:<8}".encode())
    data[at : at + 80] = card.ljust(80).encode()
    dst.write_bytes(data)
    return dst


@pytest.mark.parametrize(
    ("keyword", "card"),
    [
        ("SNR", "SNR     =              8.0D+01 / Fortran exponent"),
        ("SNR", "SNR     = 80 / free format, no decimal point"),
        ("SNR", "SNR     = '80.5    '"),
        ("SNR", "SNR     =                    T"),
        ("SNR", "SNR     =                  -.5e3"),
        ("NVISITS", "NVISITS =                  3.0"),
        ("NVISITS", "NVISITS =                   +3"),
        ("OBJID", "OBJID   =                      / undefined"),
        ("OBJID", "OBJID   = '2M0040''0000+2000000' / a quote inside"),
        ("OBJID", "OBJID   = '  padded   '"),
        ("OBJID", "OBJID   =                12345"),
        ("FIELD", "FIELD     '000+02' / no value indicator"),
        ("CDELT1", "CDELT1  =               6.0E-6"),
        ("CRVAL1", "CRVAL1  = '4.179'"),
    ],
)
@pytest.mark.filterwarnings("ignore:The following header keyword is invalid")  # astropy
def test_odd_header_cards(tmp_path, files, keyword, card):
    """Card values as written by hand or other FITS writers parse as astropy's do."""
    path = _with_card(
        files["apStar"], tmp_path / "apStar-dr17-2M00400000+2000000.fits", keyword, card
    )
    assert_same("apStar", path, 0)


@pytest.mark.filterwarnings("ignore:Unexpected extra padding")  # astropy, on the zeros
def test_malformed_apstar_files(tmp_path, files):
    src = files["apStar"]

    def shape(h):
        h[2].data = h[2].data[:, :100]

    def empty(h):
        h[2] = fits.ImageHDU(header=h[2].header)

    def table(h):
        h[1] = fits.BinTableHDU.from_columns([fits.Column("x", "D", array=[1.0])])

    def nwave(h):
        h[0].header["NWAVE"] = 8000

    def no_wcs(h):
        for hdu in h[:2]:
            del hdu.header["CRVAL1"]

    def uint_mask(h):
        h[3].data = h[3].data.astype(np.uint16)

    def only_primary(h):
        del h[1:]

    def wcs_in_hdu1(h):
        del h[0].header["CRVAL1"]

    def three_d(h):
        for i in (1, 2, 3):
            h[i].data = h[i].data[None]

    for edit in (shape, empty, table, nwave, no_wcs, wcs_in_hdu1, uint_mask, only_primary, three_d):
        path = _edit(src, tmp_path / f"apStar-{edit.__name__}.fits", edit)
        for row in (0, 1):
            assert_same("apStar", path, row)
    cases = {
        "bitpix": (b"BITPIX  =                  -64", b"BITPIX  =                'abc'"),
        "naxis1": (b"NAXIS1  =                 8575", b"NAXIS1  =                 8576"),
        "negative": (b"NAXIS1  =                 8575", b"NAXIS1  =                -8575"),
        "xtension": (b"XTENSION= 'IMAGE   '", b"XTENSION= 'FOO     '"),
        "simple": (b"SIMPLE  =", b"SIMPLE  ~"),
    }
    for label, (old, new) in cases.items():
        for count in (1, 3, 5):
            path = _patch(src, tmp_path / f"apStar-{label}-{count}.fits", old, new, count)
            assert_same("apStar", path)
    data = src.read_bytes()
    for label, tail in {
        "zeros": b"\0" * 2880,
        "junk": b"x" * 5000,
        "partial": b"XTENSION= ",
    }.items():
        path = tmp_path / f"apStar-trailing-{label}.fits"
        path.write_bytes(data + tail)
        assert_same("apStar", path)
    for label, content in {
        "empty": b"",
        "text": b"not a FITS file",
        "card": b"SIMPLE  = T",
    }.items():
        path = tmp_path / f"apStar-{label}.fits"
        path.write_bytes(content)
        assert_same("apStar", path)


@pytest.mark.parametrize(
    "old, new, says",
    [
        (b"NAXIS1  =                 8575", b"NAXIS1  =                -8575", "NAXIS1 = -8575"),
        (b"NAXIS   =                    2", b"NAXIS   =                   -2", "NAXIS = -2"),
    ],
)
def test_a_negative_size_is_an_error_not_a_walk_backwards(tmp_path, files, old, new, says):
    """A negative size would put the next HDU before this one: the walk could revisit
    the same bytes forever."""
    from starbatch.sdss.fitsfile import FitsError, FitsFile

    path = _patch(files["apStar"], tmp_path / "apStar-negative.fits", old, new, 1)
    with pytest.raises(FitsError, match=f"HDU1: {re.escape(says)} is negative"):
        FitsFile(path)


def test_malformed_apvisit_files(tmp_path):
    def shape(h):
        h[4].data = h[4].data[:2]

    def unsorted(h):
        h[4].data = h[4].data[:, ::-1].copy() * np.array([[1.0], [1.0], [1.0001]])

    def no_field(h):
        del h[11:]

    def empty_table(h):
        h[11] = fits.BinTableHDU.from_columns(h[11].columns, nrows=0)

    for edit in (shape, unsorted, no_field, empty_table):
        assert_same("apVisit", _edit(VISITS[0], tmp_path / f"apVisit-{edit.__name__}.fits", edit))
    for i, keep in enumerate((2880, 11520 + 2880 * 5, VISITS[0].stat().st_size - 2880)):
        path = tmp_path / f"apVisit-cut{i}.fits"
        path.write_bytes(VISITS[0].read_bytes()[:keep])
        assert_same("apVisit", path)


def test_malformed_and_wrong_kind_mwm_files(tmp_path, files, star):
    boss = {"flux": np.ones(4648), "ivar": np.ones(4648), "pixel_flags": np.zeros(4648)}
    boss_only = write_mwm(
        tmp_path / "mwmStar-boss.fits", "mwmStar", SOURCE, {("BOSS", "APO"): [boss]}
    )
    nothing = write_mwm(tmp_path / "mwmStar-none.fits", "mwmStar", SOURCE, {})
    for path in (boss_only, nothing, files["mwmVisit"], files["apStar"], files["apStarDR19"]):
        for kind in ("mwmStar", "mwmVisit"):
            for observatory in ("APO", "LCO"):
                assert_same(kind, path, "APOGEE", observatory)
    assert_same("mwmStar", files["mwmStar"], "APOGEE", "APO", 1)
    assert_same("mwmVisit", files["mwmVisit"], "APOGEE", "APO", 3)
    assert_same("apStar", files["mwmStar"])
    assert_same("apVisit", files["mwmStar"])

    def upper_case_columns(h):
        for name in ("flux", "ivar", "pixel_flags"):
            h[3].columns.change_name(name, name.upper())

    def no_ivar(h):
        h[3] = fits.BinTableHDU.from_columns(
            [c for c in h[3].columns if c.name != "ivar"], header=h[3].header
        )

    def wavelength_column(h):
        wave = fits.Column("wavelength", "8575D", array=[10 ** (4.179 + 6e-6 * np.arange(8575))])
        h[3] = fits.BinTableHDU.from_columns(h[3].columns + wave, header=h[3].header)

    def wrong_extname(h):
        h[3].header["EXTNAME"] = "BOSS/APO"

    def image_hdu(h):
        h[3] = fits.ImageHDU(np.zeros((2, 3)))

    def no_source(h):
        del h[0].header["V_ASTRA"]

    for edit in (
        upper_case_columns,
        no_ivar,
        wavelength_column,
        wrong_extname,
        image_hdu,
        no_source,
    ):
        path = _edit(files["mwmStar"], tmp_path / f"mwmStar-{edit.__name__}.fits", edit)
        assert_same("mwmStar", path, "APOGEE", "APO")
        assert_same("mwmStar", path, "APOGEE", "LCO")


def test_where_the_readers_differ_from_astropy_on_purpose(tmp_path, files):
    """Files the reference reads, or fails on, where the readers give a flagged row
    naming the file: scaled pixels (BSCALE/BZERO other than the unsigned-integer
    convention), which no APOGEE product writes; a primary header without an END card,
    which astropy runs on into HDU1's header, so that its "HDU1" is the file's HDU2 (the
    errors read as the flux); and a card value astropy cannot parse, where it raised
    VerifyError out of the reader (not a row at all)."""

    def scale(h):
        h[1].header["BSCALE"] = 2.0

    scaled = _edit(files["apStar"], tmp_path / "apStar-scaled.fits", scale)
    end = b"END" + b" " * 77
    no_end = _patch(files["apStar"], tmp_path / "apStar-no-end.fits", end, b" " * 80)
    for path, message in ((scaled, "unreadable.*HDU1.*BSCALE"), (no_end, "missing HDU1")):
        assert isinstance(ref_apstar(path), Spectrum)
        with pytest.raises(SpectrumError, match=f"{path.name}: {message}") as info:
            read_apstar(path)
        assert info.value.flag == flags.READ_ERROR
    for card in ("SNR     =                  NaN", "OBJID   = 'no end quote"):
        path = _with_card(files["apStar"], tmp_path / "apStar-card.fits", card[:5], card)
        with pytest.raises(fits.verify.VerifyError):
            ref_apstar(path)
        message = f"apStar-card.fits: unreadable.*HDU0 {card[:5].strip()}: .*cannot parse"
        with pytest.raises(SpectrumError, match=message) as info:
            read_apstar(path)
        assert info.value.flag == flags.READ_ERROR


def test_checksum_cards_reach_meta(tmp_path, files):
    """The batch runner records meta checksum/datasum (apStar and apVisit HDU0 cards)."""
    for kind, src in (("apStar", files["apStar"]), ("apVisit", VISITS[0])):
        path = _edit(src, tmp_path / src.name, lambda h: None, checksum=True)
        meta = assert_same(kind, path).meta
        assert len(meta["checksum"]) == 16 and meta["datasum"] == "0"


def test_missing_file_is_not_a_spectrum_error(tmp_path):
    for read in (read_apstar, read_apvisit, read_mwm):
        with pytest.raises(FileNotFoundError, match="absent.fits"):
            read(tmp_path / "absent.fits")
