"""Read SDSS APOGEE apStar / apVisit FITS files into ``Spectrum`` objects.

Every failure to get a usable spectrum out of a file raises ``SpectrumError`` naming the
file and what is wrong, so a batch run can report the bad input instead of crashing
(a file that does not exist raises FileNotFoundError).
"""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import UnusableInput

from .fitsfile import HDU, FitsError, FitsFile
from .spectrum import APSTAR_CDELT1, APSTAR_CRVAL1, APSTAR_NPIX, Spectrum, apstar_wavelength
from .telescopes import PREFIX_TELESCOPE, TELESCOPE_PREFIX


class SpectrumError(UnusableInput):
    """A file or spectrum that cannot be analysed (unreadable, malformed, nothing usable):
    a flagged row whose error is this message (it names the file)."""

    def __init__(self, message: str, flag: int = flags.READ_ERROR):
        super().__init__(message, flag)


# APOGEE_PIXMASK bit definitions (SDSS DR17 bitmask docs; apogee pipeline PixelBitMask).
PIXMASK_BITS = {
    "BADPIX": 0,
    "CRPIX": 1,
    "SATPIX": 2,
    "UNFIXABLE": 3,
    "BADDARK": 4,
    "BADFLAT": 5,
    "BADERR": 6,
    "NOSKY": 7,
    "LITTROW_GHOST": 8,
    "PERSIST_HIGH": 9,
    "PERSIST_MED": 10,
    "PERSIST_LOW": 11,
    "SIG_SKYLINE": 12,
    "SIG_TELLURIC": 13,
    "NOT_ENOUGH_PSF": 14,
}
# Unusable pixels: the bits the APOGEE pipeline itself calls bad (PixelBitMask.badval(),
# i.e. BADPIX..NOSKY and NOT_ENOUGH_PSF) plus SIG_SKYLINE, which ASPCAP also masks because
# sky-line residuals dominate the flux there. In DR17 apStar stacks these are exactly the
# pixels whose error was set to a ~1e10+ sentinel. LITTROW_GHOST, PERSIST_* and
# SIG_TELLURIC are warnings only: the pipeline keeps those pixels (with inflated errors).
BAD_PIXEL_BITS = tuple(
    PIXMASK_BITS[name]
    for name in (
        "BADPIX",
        "CRPIX",
        "SATPIX",
        "UNFIXABLE",
        "BADDARK",
        "BADFLAT",
        "BADERR",
        "NOSKY",
        "SIG_SKYLINE",
        "NOT_ENOUGH_PSF",
    )
)
BAD_PIXEL_MASK = sum(1 << bit for bit in BAD_PIXEL_BITS)


def bad_pixels(flux: np.ndarray, error: np.ndarray, bitmask: np.ndarray) -> np.ndarray:
    """Pixels no analysis may use. Flux exactly 0 is how apStar visit rows mark the chip
    gaps (the stacks use NaN there); real flux is never exactly 0.0."""
    with np.errstate(invalid="ignore"):
        bad = (np.asarray(bitmask, dtype=np.int64) & BAD_PIXEL_MASK) != 0
        bad |= ~np.isfinite(flux)  # in place: no temporary per term
        bad |= ~np.isfinite(error)
        bad |= ~(error > 0)
        bad |= flux == 0
    return bad


@contextmanager
def _open_fits(path: Path):
    if not path.is_file():
        # Not a SpectrumError: a missing input is a planning problem, not bad data.
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        # Opening reads every header and checks that the file holds the data they declare.
        with FitsFile(path) as fits:
            yield fits
    except (OSError, FitsError) as exc:
        raise SpectrumError(f"{path}: unreadable or truncated FITS file ({exc})") from exc


def _image_hdu(fits: FitsFile, index: int, what: str, path: Path) -> HDU:
    """HDU ``index``, checked to be an image with data (the pixels are read later,
    only the rows the reader uses)."""
    if index >= len(fits.hdus):
        raise SpectrumError(
            f"{path}: missing HDU{index} ({what}); file has only {len(fits.hdus)} HDU(s)"
        )
    hdu = fits.hdus[index]
    if hdu.kind not in ("PrimaryHDU", "ImageHDU"):
        raise SpectrumError(f"{path}: HDU{index} ({what}) is a {hdu.kind}, not an image")
    if not hdu.shape:
        raise SpectrumError(f"{path}: HDU{index} ({what}) has no data")
    return hdu


def _role_dtype(data: np.ndarray) -> np.ndarray:
    """int64 (masks) or float64, contiguous: one dtype per role keeps later numpy code
    simple."""
    return np.ascontiguousarray(data, dtype=np.int64 if data.dtype.kind in "iu" else np.float64)


def _card(header: HDU, key: str, kind):
    """Header value as a plain Python value (JSON-friendly), or None when absent/unusable."""
    value = header.get(key)
    if value is None:
        return None
    try:
        return str(value).strip() if kind is str else kind(value)
    except (TypeError, ValueError):
        return None


def _meta(header, cards: dict) -> dict:
    meta = {}
    for key, (card, kind) in cards.items():
        value = _card(header, card, kind)
        if value is not None:
            meta[key] = value
    return meta


def check_usable(spectrum: Spectrum) -> Spectrum:
    """Raise SpectrumError when not a single pixel can be used."""
    if spectrum.n_good == 0:
        raise SpectrumError(
            f"no usable pixels in {_describe(spectrum)}: all {spectrum.flux.size} pixels are "
            "masked, non-finite, zero, or have a non-positive error"
        )
    return spectrum


def check_apstar_grid(spectrum: Spectrum) -> Spectrum:
    """Raise SpectrumError unless the spectrum is on the apStar log-linear grid (and has
    usable pixels); analyses that assume that grid call this first."""
    expected = apstar_wavelength()
    wave = np.asarray(spectrum.wavelength, dtype=np.float64)
    if wave.shape != expected.shape or not np.allclose(wave, expected, rtol=1e-8, atol=0.0):
        raise SpectrumError(
            f"{_describe(spectrum)} is not on the apStar wavelength grid: expected "
            f"{APSTAR_NPIX} pixels 10**({APSTAR_CRVAL1} + {APSTAR_CDELT1:g}*i), "
            f"{expected[0]:.2f}-{expected[-1]:.2f} A; found {_describe_grid(wave)}"
        )
    return check_usable(spectrum)


def _describe(spectrum: Spectrum) -> str:
    where = str(spectrum.meta.get("path", "spectrum"))
    return f"{where} row {spectrum.meta['row']}" if "row" in spectrum.meta else where


def _describe_grid(wave: np.ndarray) -> str:
    if wave.ndim != 1 or wave.size < 2 or not np.all(np.isfinite(wave)) or np.any(wave <= 0):
        return f"wavelength array of shape {wave.shape}"
    steps = np.diff(np.log10(wave))
    return (
        f"{wave.size} pixels, {wave[0]:.2f}-{wave[-1]:.2f} A, log10 start "
        f"{np.log10(wave[0]):.6f}, log10 step {np.median(steps):.3g}"
    )


APSTAR_META = {
    "objid": ("OBJID", str),
    "field": ("FIELD", str),
    "telescope": ("TELESCOP", str),
    "snr": ("SNR", float),
    "nvisits": ("NVISITS", int),
    "healpix": ("HEALPIX", int),
    "ra": ("RA", float),
    "dec": ("DEC", float),
    "vhelio": ("VHELIO", float),
    # FITS checksums, recorded with each result so a row can be matched to its bytes.
    "checksum": ("CHECKSUM", str),
    "datasum": ("DATASUM", str),
    # The DR17 RV-template fit (Doppler): independent labels to compare results with.
    "rv_teff": ("RV_TEFF", float),
    "rv_logg": ("RV_LOGG", float),
    "rv_feh": ("RV_FEH", float),
}


APSTAR_HDUS = ("flux", "error", "bitmask")  # HDU1, HDU2, HDU3


def read_apstar(path: str | Path, row: int = 0) -> Spectrum:
    """One row of an apStar file: 0 = pixel-weighted stack (default), 1 = global-weighted
    stack, 2+ = individual visits. Handles 2-D (nrows, npix) and 1-D (npix,) arrays."""
    path = Path(path)
    with _open_fits(path) as fits:
        images = [_image_hdu(fits, i + 1, what, path) for i, what in enumerate(APSTAR_HDUS)]
        shapes = [hdu.shape for hdu in images]
        if len(set(shapes)) != 1 or len(shapes[0]) not in (1, 2):
            raise SpectrumError(
                f"{path}: flux/error/bitmask shapes {'/'.join(map(str, shapes))} "
                "must be equal and (nrows, npix) or (npix,)"
            )
        nrows, npix = (1, *shapes[0]) if len(shapes[0]) == 1 else shapes[0]
        if not 0 <= row < nrows:
            raise SpectrumError(
                f"{path}: row {row} out of range; file has {nrows} row(s) (0-{nrows - 1})"
            )
        header = fits.hdus[0]
        wavelength = _loglinear_wavelength(header if "CRVAL1" in header else images[0], npix, path)
        flux, error, bitmask = (
            _role_dtype(fits.image(hdu, row if len(hdu.shape) == 2 else None)) for hdu in images
        )
        meta = _meta(header, APSTAR_META)
        if "telescope" not in meta:
            meta.update(_telescope_from_name(path.name))
        if row >= 2 and _card(header, f"SNRVIS{row - 1}", float) is not None:
            meta["visit_snr"] = _card(header, f"SNRVIS{row - 1}", float)
    bad = bad_pixels(flux, error, bitmask)
    meta.update(path=str(path), row=row, kind="apStar")
    error[bad] = np.inf
    spectrum = Spectrum(wavelength, flux, error, bad, meta)
    return check_usable(spectrum)


# DR19 names carry the telescope (apStar-1.4-lco25m-2M...); DR16/DR17 only the prefix.
_DR19_NAME = re.compile(r"apStar-[^-]+-(" + "|".join(TELESCOPE_PREFIX) + r")-")


def _telescope_from_name(name: str) -> dict:
    """The telescope when the header has no TELESCOP card (real DR17 files lack it)."""
    dr19 = _DR19_NAME.match(name)
    if dr19:
        return {"telescope": dr19.group(1)}
    prefix = re.match(r"(a[ps])Star-", name)
    return {"telescope": PREFIX_TELESCOPE[prefix.group(1)]} if prefix else {}


def _loglinear_wavelength(
    header,
    npix: int,
    path: Path,
    where: str = "the HDU0 or HDU1 header",
    axis: str = "1",
    count: str = "NWAVE",
) -> np.ndarray:
    """10**(CRVAL + CDELT * (i + 1 - CRPIX)) from the header's cards: CRVAL1/CDELT1/NWAVE
    in apStar images, CRVAL/CDELT/NPIXELS in mwm binary tables (``axis``, ``count``)."""
    crval, cdelt = _card(header, f"CRVAL{axis}", float), _card(header, f"CDELT{axis}", float)
    if crval is None or cdelt is None:
        raise SpectrumError(f"{path}: no CRVAL{axis}/CDELT{axis} in {where}")
    ncard = _card(header, count, int)
    if ncard is not None and ncard != npix:
        raise SpectrumError(f"{path}: header {count}={ncard} but the arrays have {npix} pixels")
    crpix = _card(header, f"CRPIX{axis}", float) or 1.0
    return _loglinear_grid(crval, cdelt, crpix, npix).copy()


@lru_cache(maxsize=16)
def _loglinear_grid(crval: float, cdelt: float, crpix: float, npix: int) -> np.ndarray:
    # Every file of a product has the same grid, and 10** of it is a fifth of a read.
    grid = 10.0 ** (crval + cdelt * (np.arange(npix) + 1.0 - crpix))
    grid.flags.writeable = False
    return grid


APVISIT_META = {
    "objid": ("OBJID", str),
    "telescope": ("TELESCOP", str),
    "plate": ("PLATE", str),
    "mjd": ("MJD5", int),
    "fiber": ("FIBERID", int),
    "snr": ("SNR", float),
    "ra": ("RA", float),
    "dec": ("DEC", float),
    "vhelio": ("VHELIO", float),
    "vrad": ("VRAD", float),
    "bc": ("BC", float),
    "checksum": ("CHECKSUM", str),
    "datasum": ("DATASUM", str),
    # The best RV template's grid point (coarse: e.g. 6500 K / 5.0).
    "rv_teff": ("RVTEFF", float),
    "rv_logg": ("RVLOGG", float),
    "rv_feh": ("RVFEH", float),
}


def read_apvisit(path: str | Path) -> Spectrum:
    """An apVisit file (3 chips x 4096 pixels, stored red chip first and each chip in
    decreasing wavelength) as one spectrum in increasing wavelength. apVisit wavelengths
    are vacuum like every APOGEE product (checked: cross-correlating these visits against
    the vacuum emulator recovers the header VRAD to ~1 km/s; air would be off by ~80 km/s).
    The spectrum is in the observed frame: it is not shifted to rest (see meta vrad)."""
    path = Path(path)
    with _open_fits(path) as fits:
        flux, error, bitmask, wave = (
            fits.image(_image_hdu(fits, i + 1, what, path))
            for i, what in enumerate(("flux", "error", "mask", "wavelength"))
        )
        field = _visit_field(fits)
        meta = _meta(fits.hdus[0], APVISIT_META)
    if not (flux.shape == error.shape == bitmask.shape == wave.shape) or flux.ndim != 2:
        raise SpectrumError(
            f"{path}: flux/error/mask/wavelength shapes "
            f"{flux.shape}/{error.shape}/{bitmask.shape}/{wave.shape} must be equal (nchip, npix)"
        )
    # Stored red chip first, each chip decreasing: reversed, that is increasing. Else
    # sorted (when the result is usable its wavelengths are distinct: one order only).
    wave, flux, error, bitmask = (
        _role_dtype(a.ravel()[::-1]) for a in (wave, flux, error, bitmask)
    )
    if not np.all(wave[1:] > wave[:-1]):
        order = np.argsort(wave, kind="stable")
        wave, flux, error, bitmask = (a[order] for a in (wave, flux, error, bitmask))
        if not np.all(np.diff(wave) > 0):
            raise SpectrumError(f"{path}: wavelengths are not finite and distinct across chips")
    bad = bad_pixels(flux, error, bitmask)
    if field:
        meta["field"] = field
    meta.update(path=str(path), nvisits=1, kind="apVisit")
    error[bad] = np.inf
    spectrum = Spectrum(wave, flux, error, bad, meta)
    return check_usable(spectrum)


def _visit_field(fits: FitsFile) -> str | None:
    """The field name: apVisit headers lack it, but the HDU11 plugmap/target table has a
    FIELD column (e.g. 'N188')."""
    table = fits.hdus[11] if len(fits.hdus) > 11 else None
    if table is not None and table.kind == "BinTableHDU" and table.has_column("FIELD"):
        if table.nrows:
            return str(fits.cell(table, "FIELD", 0)).strip() or None
    return None
