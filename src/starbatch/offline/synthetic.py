"""Synthetic apStar files that look like the real DR17 ones (layout, units, chip gaps,
masks), for tests and demo batches where real data would be too few or too big."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from starbatch.analyses.labels import VALID_RANGE
from starbatch.engine.atomic import atomic_path
from starbatch.methods.emulator import Emulator
from starbatch.resources import PRIOR
from starbatch.sdss.readers import PIXMASK_BITS
from starbatch.sdss.spectrum import APSTAR_CDELT1, APSTAR_CRVAL1, APSTAR_NPIX, apstar_wavelength

# Pixels with no detector coverage (inclusive ranges), as in the real stack of
# 2M17335483-2753043 (row 0 is NaN exactly there). Real gaps move by a few pixels from star
# to star with the RV; one fixed set is realistic enough for synthetic data.
CHIP_GAPS = ((0, 200), (3320, 3536), (6126, 6294), (8378, 8574))
# Real stacks give masked-bad pixels an error of ~1e10 or more; mimic that sentinel.
BAD_ERROR = 1.0e10
_BAD_BITS = tuple(PIXMASK_BITS[n] for n in ("BADPIX", "CRPIX", "SATPIX", "SIG_SKYLINE"))
# Warning-only bits the reader must NOT treat as bad (real stacks have hundreds of these).
_WARN_BITS = tuple(PIXMASK_BITS[n] for n in ("PERSIST_LOW", "SIG_TELLURIC", "LITTROW_GHOST"))

# The emulator's training range (Teff, logg, [Fe/H]); see starbatch/resources/emulator/README.md.
LABEL_MIN = np.array([3500.0, 0.0, -2.5])
LABEL_MAX = np.array([8000.0, 5.0, 0.5])

# BUNIT of HDU1..7 as in the real files: flux, error, bitmask, sky, sky error, telluric,
# telluric error.
_BUNITS = (
    "Flux (10^-17 erg/s/cm^2/Ang)",
    "Err (10^-17 erg/s/cm^2/Ang)",
    "Pixel bitmask",
    "Sky (10^-17 erg/s/cm^2/Ang)",
    "Sky error (10^-17 erg/s/cm^2/Ang)",
    "Telluric",
    "Telluric error",
)

_COMMENTS = {
    "FIELD": "APOGEE field name",
    "OBJID": "APOGEE object name",
    "TELESCOP": "Telescope",
    "SNR": "Median S/N per apStar pixel",
    "RA": "right ascension, deg, J2000",
    "DEC": "declination, deg, J2000",
    "NVISITS": "Number of visit spectra combined flag",
}


def gap_mask(npix: int = APSTAR_NPIX) -> np.ndarray:
    mask = np.zeros(npix, dtype=bool)
    for lo, hi in CHIP_GAPS:
        mask[lo : hi + 1] = True
    return mask


def _primary_header(header_meta: dict, nrows: int) -> fits.Header:
    header = fits.Header()
    header["CRVAL1"] = (APSTAR_CRVAL1, "Start log10(wavelength) in subsequent HDUs")
    header["CDELT1"] = (APSTAR_CDELT1, "Dispersion in log10(wave) in subsequent HDUs")
    header["CRPIX1"] = (1, "Pixel of starting wavelength in subsequent HDUs")
    header["CTYPE1"] = ("LOG-LINEAR", "Logarithmic wavelength scale in subsequent HDUs")
    header["DC-FLAG"] = (1, "Logarithmic wavelength scale in subsequent HDUs")
    header["NWAVE"] = (APSTAR_NPIX, "Number of wavelengths in subsequent HDUs")
    meta = {str(k).upper(): v for k, v in header_meta.items()}
    # Real DR17 apStar headers lack TELESCOP; synthetic ones carry it to be explicit.
    meta.setdefault("TELESCOP", "apo25m")
    meta.setdefault("NVISITS", max(nrows - 2, 1))
    for key, value in meta.items():
        value = value.item() if isinstance(value, np.generic) else value
        header[key] = (value, _COMMENTS.get(key, ""))
    header["HISTORY"] = "starbatch synthetic apStar (emulator spectrum + noise)"
    return header


def write_apstar(
    path: str | Path,
    flux: np.ndarray,
    error: np.ndarray,
    bitmask: np.ndarray,
    header_meta: dict,
    extra_hdus: tuple = (),
) -> Path:
    """Write an apStar-layout FITS file: HDU0 header only; HDU1..7 flux, error, bitmask
    (int64), sky, sky error, telluric, telluric error, each (nrows, 8575); a 1-D input is
    one row. ``header_meta`` gives HDU0 cards (FIELD, OBJID, SNR, RA, DEC, ...). The sky and
    telluric HDUs are zeros, as in the real stack rows; ``extra_hdus`` follow (HDU8+).
    Written to a temporary file in the same directory and renamed, so readers never see
    a half-written file."""
    path = Path(path)
    flux, error = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (flux, error))
    bitmask = np.atleast_2d(np.asarray(bitmask, dtype=np.int64))
    if not (flux.shape == error.shape == bitmask.shape) or flux.shape[1] != APSTAR_NPIX:
        raise ValueError(
            f"flux/error/bitmask must share shape (nrows, {APSTAR_NPIX}); got "
            f"{flux.shape}/{error.shape}/{bitmask.shape}"
        )
    zeros = np.zeros_like(flux)
    data = (flux, error, bitmask, zeros, zeros, zeros, zeros)
    hdus = [fits.PrimaryHDU(header=_primary_header(header_meta, len(flux)))]
    for array, unit in zip(data, _BUNITS, strict=True):
        hdu = fits.ImageHDU(array)
        hdu.header["CRVAL1"] = APSTAR_CRVAL1
        hdu.header["CDELT1"] = APSTAR_CDELT1
        hdu.header["CRPIX1"] = 1
        hdu.header["CTYPE1"] = "LOG-LINEAR"
        hdu.header["BUNIT"] = unit
        hdus.append(hdu)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus + list(extra_hdus)).writeto(tmp)
    return path


def continuum_shape(teff: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth positive continuum in 1e-17 erg/s/cm^2/A: a Planck f_lambda slope at
    ``teff`` times a gentle random quadratic (flux-calibration wiggle), median ~100-1000."""
    wave = apstar_wavelength()
    x = wave * 1e-8  # cm
    planck = 1.0 / (x**5 * np.expm1(1.4387769 / (x * teff)))
    u = (wave - 16000.0) / 1000.0
    wiggle = 1.0 + rng.normal(0.0, 0.05) * u + rng.normal(0.0, 0.03) * u**2
    shape = planck / np.median(planck) * np.clip(wiggle, 0.5, None)
    return shape * 10.0 ** rng.uniform(2.0, 3.0)


def make_synthetic_star(
    emulator: Emulator,
    labels,
    snr: float,
    rng: np.random.Generator,
    bad_pixel_fraction: float = 0.01,
    continuum: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stacked spectrum (flux, error, bitmask), each (8575,), like row 0 of a real
    apStar: emulator flux x continuum + Gaussian noise with median S/N ``snr`` per pixel,
    NaN flux and error in the chip gaps, a ``bad_pixel_fraction`` of pixels flagged with a
    bad APOGEE_PIXMASK bit (garbage flux, sentinel error) and some warning-only bits."""
    labels = np.asarray(labels, dtype=np.float64)
    if np.any(labels < emulator.label_min) or np.any(labels > emulator.label_max):
        raise ValueError(
            f"labels {labels} outside the emulator range {emulator.label_min}..{emulator.label_max}"
        )
    if not np.allclose(emulator.wavelength, apstar_wavelength(), rtol=1e-10, atol=0):
        raise ValueError("emulator is not on the apStar wavelength grid")
    cont = continuum_shape(labels[0], rng) if continuum else np.ones(APSTAR_NPIX)
    return observe(emulator.flux(labels), cont, snr, rng, bad_pixel_fraction)


def photon_noise(shape, rng: np.random.Generator) -> np.ndarray:
    """Independent standard-normal noise (the training sets' noise model)."""
    return rng.normal(0.0, 1.0, shape)


def observe(
    model: np.ndarray,
    cont: np.ndarray,
    snr: float,
    rng: np.random.Generator,
    bad_pixel_fraction: float = 0.01,
    noise=photon_noise,
    bad: np.ndarray | None = None,
    gaps: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flux, error, bitmask) of a normalised model spectrum ``model`` times ``cont``:
    photon-like errors scaled to median S/N ``snr``, ``noise(shape, rng)`` unit-variance
    noise, a random ``bad_pixel_fraction`` of covered pixels (plus ``bad``) flagged bad
    with garbage flux, warning-only bits on 5%, NaN in the chip ``gaps`` (default
    CHIP_GAPS)."""
    # Photon-noise-like: sigma ~ sqrt(signal), scaled so the median per-pixel S/N is
    # ``snr``, which is what the real header SNR measures.
    error = cont * np.sqrt(np.clip(model, 1e-3, None) * np.median(model)) / snr
    flux = model * cont + noise(APSTAR_NPIX, rng) * error
    bitmask = np.zeros(APSTAR_NPIX, dtype=np.int64)

    gaps = gap_mask() if gaps is None else gaps
    covered = np.flatnonzero(~gaps)
    warn = rng.choice(covered, size=int(0.05 * covered.size), replace=False)
    bitmask[warn] |= 1 << rng.choice(_WARN_BITS, size=warn.size)
    flagged = rng.choice(covered, size=int(round(bad_pixel_fraction * covered.size)), replace=False)
    if bad is not None:
        flagged = np.union1d(flagged, np.flatnonzero(bad & ~gaps))
    bitmask[flagged] |= 1 << rng.choice(_BAD_BITS, size=flagged.size)
    flux[flagged] = rng.uniform(-1.0, 5.0, size=flagged.size) * cont[flagged]  # spikes, dropouts
    error[flagged] = BAD_ERROR
    flux[gaps] = np.nan
    error[gaps] = np.nan
    return flux, error, bitmask


def apogee_id(ra: float, dec: float) -> str:
    """2MASS-style APOGEE id '2MHHMMSSss+DDMMSSs'. 2MASS designations TRUNCATE (not round):
    RA 297.210723, Dec 50.091099 is 2M19485057+5005279 (Dec 50:05:27.96 -> 279)."""
    # Integer hundredths of a time-second / tenths of an arcsecond; the tiny epsilon keeps
    # float error (e.g. 27.8999999) from truncating a whole unit away.
    ra_cs = int(np.floor((ra % 360.0) / 15.0 * 360000.0 + 1e-6))
    dec_ds = int(np.floor(abs(dec) * 36000.0 + 1e-6))
    hh, rem = divmod(ra_cs, 360000)
    mm, cs = divmod(rem, 6000)
    dd, rem = divmod(dec_ds, 36000)
    dm, ds = divmod(rem, 600)
    sign = "-" if dec < 0 else "+"
    return f"2M{hh:02d}{mm:02d}{cs:04d}{sign}{dd:02d}{dm:02d}{ds:03d}"


def rgb_logg(teff: np.ndarray, feh: np.ndarray) -> np.ndarray:
    """Approximate red-giant-branch logg(Teff, [Fe/H]) (no scatter), read off solar-scaled
    ~4 Gyr isochrones and the DR17 giants: at [Fe/H]=0 logg 2.5 sits at 4650 K (red clump)
    and logg falls 1 dex per ~500 K cooler (4000 K -> 1.2, 3700 K -> 0.6); metal-poor
    branches are hotter, by ~250 K per dex of [Fe/H]."""
    return 2.5 + (np.asarray(teff) - 4650.0 + 250.0 * np.asarray(feh)) / 500.0


def draw_labels(
    n: int,
    rng: np.random.Generator,
    prior_path: str | Path | None = None,
    dwarf_fraction: float = 0.2,
    label_min: np.ndarray = LABEL_MIN,
    label_max: np.ndarray = LABEL_MAX,
    dwarf_teff: tuple[float, float] = (5400.0, 600.0),
) -> np.ndarray:
    """(n, 3) labels (Teff, logg, [Fe/H]) inside [label_min, label_max].

    Giants: (Teff, [Fe/H]) resampled from the DR17 red-giant label subsample (which has no
    logg), logg from ``rgb_logg`` + N(0, 0.2) scatter. Dwarfs (``dwarf_fraction``): Teff
    N(``dwarf_teff``) K (default N(5400, 600)), main-sequence logg 4.44 + 1.8e-4 (5777 -
    Teff) + N(0, 0.1), [Fe/H] N(-0.1, 0.25). Draws outside the range are redrawn, not
    clipped (no pile-up at edges)."""
    with np.load(prior_path or PRIOR, allow_pickle=False) as d:
        names = [str(x) for x in d["label_names"]]
        prior = np.asarray(d["labels"], dtype=np.float64)
    teff_feh = prior[:, [names.index("teff"), names.index("feh")]]
    lo, hi = np.asarray(label_min, dtype=float), np.asarray(label_max, dtype=float)
    out = np.empty((0, 3))
    while len(out) < n:
        m = 2 * (n - len(out)) + 16
        dwarf = rng.random(m) < dwarf_fraction
        teff, feh = teff_feh[rng.integers(0, len(teff_feh), m)].T
        logg = rgb_logg(teff, feh) + rng.normal(0.0, 0.2, m)
        d_teff = rng.normal(dwarf_teff[0], dwarf_teff[1], m)
        teff = np.where(dwarf, d_teff, teff)
        logg = np.where(dwarf, 4.44 + 1.8e-4 * (5777.0 - d_teff) + rng.normal(0, 0.1, m), logg)
        feh = np.where(dwarf, rng.normal(-0.1, 0.25, m), feh)
        draw = np.column_stack([teff, logg, feh])
        out = np.vstack([out, draw[np.all((draw >= lo) & (draw <= hi), axis=1)]])
    return out[:n]


# How far training reaches beyond the declared valid range (Teff K, [Fe/H] dex below and
# above), so that the range's own edges are not the edges of training.
VALID_MARGIN = {"teff": 300.0, "feh_low": 0.5, "feh_high": 0.1}


def draw_valid_labels(n: int, rng: np.random.Generator, giant_fraction: float = 0.6) -> np.ndarray:
    """(n, 3) labels uniform in Teff and [Fe/H] over the declared valid range
    (analyses.labels.VALID_RANGE) widened by VALID_MARGIN: giants on the branch
    (``rgb_logg`` +- 0.4 dex, none below logg 0.3: metal-poor branches end hotter), dwarfs
    on the main sequence (+- 0.2 dex). The labels a model must get right, whatever the
    prior says about how often such stars are observed."""
    out = np.empty((0, 3))
    feh_range = (VALID_RANGE["feh"][0] - VALID_MARGIN["feh_low"], VALID_RANGE["feh"][1])
    feh_range = (feh_range[0], feh_range[1] + VALID_MARGIN["feh_high"])
    widen = (-VALID_MARGIN["teff"], VALID_MARGIN["teff"])
    while len(out) < n:
        m = 2 * (n - len(out)) + 16
        giant = rng.random(m) < giant_fraction
        teff = np.where(
            giant,
            rng.uniform(*np.add(VALID_RANGE["giant_teff"], widen), m),
            rng.uniform(*np.add(VALID_RANGE["dwarf_teff"], widen), m),
        )
        feh = rng.uniform(*feh_range, m)
        branch = rgb_logg(teff, feh)
        logg = np.where(
            giant,
            branch + rng.uniform(-0.4, 0.4, m),
            4.44 + 1.8e-4 * (5777.0 - teff) + rng.uniform(-0.2, 0.2, m),
        )
        keep = ~giant | (branch >= 0.3)
        out = np.vstack([out, np.column_stack([teff, logg, feh])[keep]])
    return out[:n]
