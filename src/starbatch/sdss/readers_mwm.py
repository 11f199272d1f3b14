"""Read Astra's mwmStar / mwmVisit files (SDSS-V, DR19) into ``Spectrum`` objects.

One file per SDSS-V source (sdss_id): HDU0 holds the source's identifiers and
astrometry (V_ASTRA, SDSS_ID, HEALPIX, RA, DEC, ...); HDU1..4 are binary tables, one
per instrument and observatory, in the order BOSS/APO, BOSS/LCO, APOGEE/APO,
APOGEE/LCO (EXTNAME, OBSRVTRY, INSTRMNT cards). An instrument/observatory without
spectra has an empty (zero-row) table. Each row is one rest-frame spectrum (mwmStar:
the co-add, with min_mjd/max_mjd; mwmVisit: one visit, with mjd) with columns flux
(1e-17 erg/s/cm2/A), ivar, pixel_flags (the APOGEE_PIXMASK bits for APOGEE) and
metadata (sdss_id, telescope, obj, snr, ...). The wavelength is the header's
log-linear CRVAL/CDELT/NPIXELS (vacuum Angstrom; APOGEE is the apStar grid, 4.179 +
6e-6 i, 8575 pixels), or a ``wavelength`` column where one is stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starbatch.engine import flags

from .fitsfile import HDU, FitsFile
from .readers import (
    SpectrumError,
    _loglinear_wavelength,
    _meta,
    _open_fits,
    bad_pixels,
    check_usable,
)
from .spectrum import Spectrum

# (instrument, observatory) -> HDU index, as Astra writes them.
HDU_INDEX = {
    ("BOSS", "APO"): 1,
    ("BOSS", "LCO"): 2,
    ("APOGEE", "APO"): 3,
    ("APOGEE", "LCO"): 4,
}
# The column only that kind of file has (specutils tells them apart the same way).
KIND_COLUMN = {"mwmStar": "min_mjd", "mwmVisit": "mjd"}

MWM_META = {
    "sdss_id": ("SDSS_ID", int),
    "v_astra": ("V_ASTRA", str),
    "healpix": ("HEALPIX", int),
    "objid": ("APOGEEID", str),
    "ra": ("RA", float),
    "dec": ("DEC", float),
}
ROW_META = {"obj": str, "telescope": str, "snr": float, "mjd": int, "min_mjd": int, "max_mjd": int}


def read_mwm(
    path: str | Path,
    kind: str = "mwmStar",
    instrument: str = "APOGEE",
    observatory: str = "APO",
    row: int = 0,
) -> Spectrum:
    """One spectrum of an mwmStar/mwmVisit file: row ``row`` of the
    ``instrument``/``observatory`` HDU. A file of another kind, or one whose HDU is
    empty (no spectrum from that instrument there), raises SpectrumError naming the
    file and the reason (flag NO_SPECTRUM for the empty HDU)."""
    path = Path(path)
    index = HDU_INDEX[(instrument.upper(), observatory.upper())]
    name = f"{instrument.upper()}/{observatory.upper()}"
    with _open_fits(path) as fits:
        _check_kind(fits, path, kind, index, name)
        table = _table(fits, index, name, path)
        if table.nrows == 0:
            raise SpectrumError(_empty_message(fits, path, kind, index, name), flags.NO_SPECTRUM)
        if not 0 <= row < table.nrows:
            raise SpectrumError(
                f"{path}: row {row} out of range; HDU{index} ({name}) has {table.nrows} "
                f"row(s) (0-{table.nrows - 1})"
            )
        flux, ivar, pixel_flags = (
            _pixels(fits, table, row, column, path) for column in ("flux", "ivar", "pixel_flags")
        )
        wavelength = _wavelength(fits, table, row, flux.size, path)
        meta = _meta(fits.hdus[0], MWM_META)
        for column, kind_ in ROW_META.items():
            if table.has_column(column):
                meta[column] = kind_(np.asarray(fits.cell(table, column, row)).item())
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
        instrument=instrument.upper(),
        hdu=index,
        observatory=observatory.upper(),
        nvisits=meta.get("nvisits", 1),
    )
    error[bad] = np.inf
    return check_usable(Spectrum(wavelength, flux, error, bad, meta))


def _check_kind(fits: FitsFile, path: Path, kind: str, index: int, name: str) -> None:
    header = fits.hdus[0]
    if "V_ASTRA" not in header or "SDSS_ID" not in header:
        looks = (
            "; it looks like an apStar/apVisit file (image HDUs): use an ApStarFile or "
            "ApVisitFile analysis"
            if len(fits.hdus) > 1 and fits.hdus[1].kind == "ImageHDU"
            else ""
        )
        raise SpectrumError(f"{path}: not an {kind} file: HDU0 has no V_ASTRA/SDSS_ID{looks}")
    other = "mwmVisit" if kind == "mwmStar" else "mwmStar"
    for hdu in fits.hdus[1:5]:
        if hdu.kind != "BinTableHDU":
            continue
        if hdu.has_column(KIND_COLUMN[other]) and not hdu.has_column(KIND_COLUMN[kind]):
            raise SpectrumError(
                f"{path}: an {other} file, not {kind} (HDU {hdu.name} has a "
                f"{KIND_COLUMN[other]!r} column): use an {other} analysis"
            )


def _table(fits: FitsFile, index: int, name: str, path: Path) -> HDU:
    if index >= len(fits.hdus) or fits.hdus[index].kind != "BinTableHDU":
        found = fits.hdus[index].kind if index < len(fits.hdus) else "nothing"
        raise SpectrumError(f"{path}: HDU{index} ({name}) should be a binary table; found {found}")
    table = fits.hdus[index]
    extname = table.name.strip().upper()
    if extname and extname != name:
        raise SpectrumError(f"{path}: HDU{index} is {extname!r}, expected {name!r}")
    return table


def _empty_message(fits: FitsFile, path: Path, kind: str, index: int, name: str) -> str:
    others = [
        f"HDU{hdu.index} {hdu.name}"
        for hdu in fits.hdus[1:5]
        if hdu.index != index and hdu.kind == "BinTableHDU" and hdu.nrows
    ]
    boss_only = others and all("BOSS" in o for o in others)
    where = (
        f"; a BOSS-only star (spectra only in {', '.join(others)})"
        if boss_only
        else (f"; spectra only in {', '.join(others)}" if others else "; the file has no spectra")
    )
    return f"{path}: HDU{index} ({name}) of this {kind} is empty: no {name} spectrum{where}"


def _pixels(fits: FitsFile, table: HDU, row: int, column: str, path: Path) -> np.ndarray:
    try:
        values = fits.cell(table, column, row)
    except KeyError:
        raise SpectrumError(f"{path}: HDU{table.index} has no {column!r} column") from None
    # Native byte order and one dtype per role: later numpy code stays simple and fast.
    if column == "pixel_flags":
        return values.astype(np.float64).astype(np.int64).ravel()
    return values.astype(np.float64).ravel()


def _wavelength(fits: FitsFile, table: HDU, row: int, npix: int, path: Path) -> np.ndarray:
    if table.has_column("wavelength"):
        return np.asarray(fits.cell(table, "wavelength", row), dtype=np.float64).ravel()
    where = f"HDU{table.index} (and no wavelength column)"
    return _loglinear_wavelength(table, npix, path, where, axis="", count="NPIXELS")
