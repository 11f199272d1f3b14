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
from astropy.io import fits

from starbatch.engine import flags

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
    with _open_fits(path) as hdul:
        header = hdul[0].header
        _check_kind(hdul, path, kind, index, name)
        table = _table(hdul, index, name, path)
        if len(table) == 0:
            raise SpectrumError(_empty_message(hdul, path, kind, index, name), flags.NO_SPECTRUM)
        if not 0 <= row < len(table):
            raise SpectrumError(
                f"{path}: row {row} out of range; HDU{index} ({name}) has {len(table)} "
                f"row(s) (0-{len(table) - 1})"
            )
        hdu_header = hdul[index].header
        record = table[row]
        flux = _pixels(record, "flux", path, index)
        ivar = _pixels(record, "ivar", path, index)
        pixel_flags = _pixels(record, "pixel_flags", path, index)
        wavelength = _wavelength(hdu_header, record, flux.size, path, index)
        meta = _meta(header, MWM_META)
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
        instrument=instrument.upper(),
        hdu=index,
        observatory=observatory.upper(),
        nvisits=meta.get("nvisits", 1),
    )
    return check_usable(Spectrum(wavelength, flux, np.where(bad, np.inf, error), bad, meta))


def _check_kind(hdul, path: Path, kind: str, index: int, name: str) -> None:
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


def _table(hdul, index: int, name: str, path: Path):
    if index >= len(hdul) or not isinstance(hdul[index], fits.BinTableHDU):
        found = type(hdul[index]).__name__ if index < len(hdul) else "nothing"
        raise SpectrumError(f"{path}: HDU{index} ({name}) should be a binary table; found {found}")
    extname = str(hdul[index].header.get("EXTNAME", "")).strip().upper()
    if extname and extname != name:
        raise SpectrumError(f"{path}: HDU{index} is {extname!r}, expected {name!r}")
    data = hdul[index].data
    return data if data is not None else np.zeros(0, dtype=[("flux", "f4")])


def _empty_message(hdul, path: Path, kind: str, index: int, name: str) -> str:
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
        else (f"; spectra only in {', '.join(others)}" if others else "; the file has no spectra")
    )
    return f"{path}: HDU{index} ({name}) of this {kind} is empty: no {name} spectrum{where}"


def _pixels(record, column: str, path: Path, index: int) -> np.ndarray:
    try:
        values = np.asarray(record[column])
    except KeyError:
        raise SpectrumError(f"{path}: HDU{index} has no {column!r} column") from None
    # Native byte order and one dtype per role: later numpy code stays simple and fast.
    if column == "pixel_flags":
        return values.astype(np.float64).astype(np.int64).ravel()
    return values.astype(np.float64).ravel()


def _wavelength(header, record, npix: int, path: Path, index: int) -> np.ndarray:
    if "wavelength" in record.array.names:
        return np.asarray(record["wavelength"], dtype=np.float64).ravel()
    return _loglinear_wavelength(
        header, npix, path, f"HDU{index} (and no wavelength column)", axis="", count="NPIXELS"
    )
