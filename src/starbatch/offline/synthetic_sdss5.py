"""Synthetic SDSS-V (DR19) files in the published layouts: DR19 apStar files (the DR17
HDUs plus the LSF image and visit table, DR19 header cards) and Astra's mwmStar /
mwmVisit files (HDU0 source header; HDU1..4 binary tables BOSS/APO, BOSS/LCO,
APOGEE/APO, APOGEE/LCO, empty when there is no such spectrum; see
starbatch.sdss.readers_mwm for the layout the reader expects)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from starbatch.engine.atomic import atomic_path
from starbatch.sdss.readers_mwm import HDU_INDEX
from starbatch.sdss.spectrum import APSTAR_CDELT1, APSTAR_CRVAL1, APSTAR_NPIX

from .synthetic import write_apstar

# Astra's common dispersion per instrument: (CRVAL, CDELT, NPIXELS), log10 Angstrom.
DISPERSION = {"APOGEE": (APSTAR_CRVAL1, APSTAR_CDELT1, APSTAR_NPIX), "BOSS": (3.5523, 1e-4, 4648)}
V_ASTRA = "0.6.0"


def write_apstar_dr19(path, flux, error, bitmask, header_meta: Mapping) -> Path:
    """A DR19 apStar file: the DR17 layout plus HDU8 (LSF, empty here), HDU9 (one row
    per visit) and HDU10, and the DR19 header cards (APRED, HEALPIX, TELESCOP, SURVEY)."""
    nrows = np.atleast_2d(flux).shape[0]
    nvisits = max(nrows - 2, 1)
    visits = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="FILENAME", format="64A", array=[""] * nvisits),
            fits.Column(name="MJD", format="J", array=np.arange(nvisits) + 59800),
            fits.Column(name="SNR", format="E", array=np.full(nvisits, np.nan)),
            fits.Column(name="VHELIO", format="E", array=np.zeros(nvisits)),
        ]
    )
    meta = {"SURVEY": "sdss-v", "V_APRED": header_meta.get("APRED", ""), **header_meta}
    return write_apstar(
        path, flux, error, bitmask, meta, extra_hdus=(fits.ImageHDU(), visits, fits.ImageHDU())
    )


def spectrum_row(flux, error, bitmask, **columns) -> dict:
    """One mwm table row from a spectrum in apStar form: ivar = 1/error^2, 0 (and flux 0)
    where the pixel has no data, as Astra writes them."""
    flux, error = np.asarray(flux, np.float64), np.asarray(error, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = np.where(np.isfinite(error) & (error > 0), 1.0 / error**2, 0.0)
    ivar = np.where(np.isfinite(flux), ivar, 0.0)
    return {
        **columns,
        "flux": np.nan_to_num(flux, nan=0.0),
        "ivar": ivar,
        "pixel_flags": np.asarray(bitmask, np.int64),
    }


def _table_hdu(instrument: str, observatory: str, rows: Sequence[dict], kind: str):
    crval, cdelt, npix = DISPERSION[instrument]
    n = len(rows)

    def values(name, default):
        return [row.get(name, default) for row in rows]

    def pixels(name, dtype):
        data = np.array([row[name] for row in rows], dtype=dtype) if n else np.zeros((0, npix))
        return data.astype(dtype).reshape(n, npix)

    span = [("min_mjd", "J", -1), ("max_mjd", "J", -1), ("n_visits", "J", 0)]
    visit = [
        ("mjd", "J", -1),
        ("plate", "16A", ""),
        ("fiber", "J", -1),
        ("field", "32A", ""),
        ("in_stack", "L", True),
    ]
    scalars = [
        ("release", "8A", "sdss5"),
        ("filetype", "8A", kind),
        ("v_astra", "8A", V_ASTRA),
        ("healpix", "J", -1),
        ("sdss_id", "K", -1),
        ("apred", "8A", ""),
        ("obj", "24A", ""),
        ("telescope", "6A", ""),
        *(span if kind == "mwmStar" else visit),
        ("snr", "E", np.nan),
        ("v_rad", "E", np.nan),
    ]
    columns = [fits.Column(name=c, format=f, array=values(c, d)) for c, f, d in scalars]
    for name, fmt, dtype in (
        ("flux", "E", np.float32),
        ("ivar", "E", np.float32),
        ("pixel_flags", "K", np.int64),
        ("continuum", "E", np.float32),
    ):
        data = pixels(name, dtype) if name != "continuum" else np.ones((n, npix), np.float32)
        columns.append(fits.Column(name=name, format=f"{npix}{fmt}", dim=f"({npix})", array=data))
    header = fits.Header(
        [
            ("EXTNAME", f"{instrument}/{observatory}", "Extension name"),
            ("OBSRVTRY", observatory, "Observatory"),
            ("INSTRMNT", instrument, "Instrument"),
            ("V_ASTRA", V_ASTRA, "Astra version"),
            ("CRVAL", crval, "Log(10) wavelength of first pixel"),
            ("CDELT", cdelt, "Log(10) delta wavelength per pixel"),
            ("CTYPE", "LOG-LINEAR", "Wavelength axis type"),
            ("CUNIT", "Angstrom (Vacuum)", "Wavelength unit"),
            ("CRPIX", 1, "Reference pixel (1-indexed)"),
            ("DC-FLAG", 1, "Linear wavelength axis (0) or logarithmic"),
            ("NPIXELS", npix, "Number of pixels per spectrum"),
        ]
    )
    return fits.BinTableHDU.from_columns(columns, header=header)


def write_mwm(
    path: str | Path,
    kind: str,
    header_meta: Mapping,
    spectra: Mapping[tuple[str, str], Sequence[dict]],
) -> Path:
    """Write an mwmStar (``kind='mwmStar'``, one co-add row per HDU) or mwmVisit (one row
    per visit) file. ``spectra`` maps (instrument, observatory), e.g. ("APOGEE", "APO"), to
    rows from ``spectrum_row``; every other HDU is written empty, as Astra does. With
    checksums (DATASUM), which specutils' loader reads to find the empty HDUs."""
    primary = fits.PrimaryHDU()
    cards = {"V_ASTRA": V_ASTRA, **{str(k).upper(): v for k, v in header_meta.items()}}
    for key, value in cards.items():
        primary.header[key] = value.item() if isinstance(value, np.generic) else value
    hdus = [primary] + [None] * 4
    for (instrument, observatory), index in HDU_INDEX.items():
        rows = spectra.get((instrument, observatory), ())
        hdus[index] = _table_hdu(instrument, observatory, rows, kind)
    path = Path(path)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, checksum=True)
    return path
