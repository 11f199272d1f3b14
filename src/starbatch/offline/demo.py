"""The demo data set: synthetic apStar files with known labels, written in the
real SDSS layout, next to the real DR17 files, plus the matching task table; and a
small SDSS-V part: DR19 apStar files (HEALPix layout) and Astra mwmStar files, with a
BOSS-only star whose empty APOGEE HDU gives a flagged row."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.methods.emulator import Emulator
from starbatch.sdss.products import APSTAR, APSTAR_DR19, MWMSTAR

from .synthetic import apogee_id, draw_labels, make_synthetic_star, write_apstar
from .synthetic_sdss5 import spectrum_row, write_apstar_dr19, write_mwm

REAL_STARS = (  # (field, obj) of the DR17 apStar files in resources/real/sas
    ("000+02", "2M17335483-2753043"),
    ("K04_083+13", "2M19485057+5005279"),
)
REAL_VISITS = (  # (apred, field, plate, mjd, fiber) of the apVisit files there
    ("r13", "N188", "5095", "55844", "128"),
    ("r13", "120-08-RV", "9518", "57729", "104"),
)
APSTAR_ANALYSES = (*LABEL_ANALYSES, "snr")
APVISIT_ANALYSES = tuple(f"{name}_visit" for name in LABEL_ANALYSES)
# The cheap subset the workflow tests run (apStar analyses, visit analyses).
TEST_ANALYSES = (("gridfit", "snr"), ())
DEMO_FIELDS = ("060+00", "120+05", "180-10", "240+20", "300-05")
# Rows that show the failure handling: a file that does not exist (skipped at
# planning) and a truncated file (a flagged row; the rest of its batch is fine).
MISSING_OBJ = "2M00000000+0000000"
CORRUPT_OBJ = "2M00000001+0000001"
DEMO_FIELD_BAD = "999+99"


def demo_stars(n: int, seed: int, snr_range=(30, 200)) -> pd.DataFrame:
    """Deterministic positions, fields, labels and S/N for ``n`` synthetic stars."""
    rng = np.random.default_rng(seed)
    labels = draw_labels(n, rng)
    ra = rng.uniform(0, 360, n)
    dec = rng.uniform(-30, 70, n)
    log_lo, log_hi = np.log(snr_range[0]), np.log(snr_range[1])
    return pd.DataFrame(
        {
            "field": [DEMO_FIELDS[i % len(DEMO_FIELDS)] for i in range(n)],
            "obj": [apogee_id(r, d) for r, d in zip(ra, dec, strict=True)],
            "ra": ra,
            "dec": dec,
            "teff": labels[:, 0],
            "logg": labels[:, 1],
            "feh": labels[:, 2],
            "snr": np.exp(rng.uniform(log_lo, log_hi, n)),
        }
    )


# The SDSS-V part: every other star is a DR19 apStar, the rest mwmStar files; the
# telescope alternates (APO, LCO). One extra mwmStar is a BOSS-only star.
SDSS5_TELESCOPES = ("apo25m", "lco25m")
BOSS_ONLY_SDSS_ID = 99000001


def sdss5_stars(n: int, seed: int, snr_range=(30, 200)) -> pd.DataFrame:
    """Deterministic SDSS-V stars: kind (dr19 / mwm), telescope, HEALPix, sdss_id, labels."""
    stars = demo_stars(n, seed + 1000, snr_range).drop(columns="field")
    rng = np.random.default_rng(seed + 1001)
    stars.insert(0, "kind", ["dr19" if i % 2 == 0 else "mwm" for i in range(n)])
    stars.insert(1, "telescope", [SDSS5_TELESCOPES[(i // 2) % 2] for i in range(n)])
    stars.insert(2, "healpix", rng.integers(0, 12 * 128**2, n))
    stars.insert(3, "sdss_id", 1 + rng.choice(10**8, n, replace=False))
    return stars


def _observatory(telescope: str) -> str:
    return telescope[:3].upper()


def sdss5_relpath(star) -> str:
    if star.kind == "dr19":
        raw = {"telescope": star.telescope, "healpix": star.healpix, "obj": star.obj}
        return APSTAR_DR19.relative_path(APSTAR_DR19.parse_keys(raw))
    return MWMSTAR.relative_path(MWMSTAR.parse_keys({"sdss_id": star.sdss_id}))


def write_sdss5_demo(root: Path, stars: pd.DataFrame, emulator: Emulator, seed: int) -> None:
    """DR19 apStar and mwmStar files of ``stars`` (existing files are kept), and the
    BOSS-only star's mwmStar (empty APOGEE HDUs)."""
    for i, star in enumerate(stars.itertuples(index=False)):
        path = Path(root) / sdss5_relpath(star)
        if path.exists():
            continue
        rng = np.random.default_rng([seed, 10**6 + i])
        spectrum = make_synthetic_star(
            emulator, np.array([star.teff, star.logg, star.feh]), star.snr, rng
        )
        source = {
            "SDSS_ID": int(star.sdss_id),
            "HEALPIX": int(star.healpix),
            "RA": float(star.ra),
            "DEC": float(star.dec),
        }
        if star.kind == "dr19":
            meta = {
                **source,
                "OBJID": star.obj,
                "TELESCOP": star.telescope,
                "APRED": "1.4",
                "SNR": float(star.snr),
            }
            write_apstar_dr19(path, *spectrum, meta)
            continue
        row = spectrum_row(
            *spectrum,
            sdss_id=int(star.sdss_id),
            healpix=int(star.healpix),
            obj=star.obj,
            telescope=star.telescope,
            snr=float(star.snr),
            min_mjd=59800,
            max_mjd=59900,
            n_visits=3,
        )
        write_mwm(
            path,
            "mwmStar",
            {**source, "APOGEEID": star.obj},
            {("APOGEE", _observatory(star.telescope)): [row]},
        )
    boss = {
        "flux": np.ones(4648),
        "ivar": np.ones(4648),
        "pixel_flags": np.zeros(4648),
        "sdss_id": BOSS_ONLY_SDSS_ID,
        "telescope": "apo25m",
        "min_mjd": 59800,
        "max_mjd": 59800,
    }
    path = Path(root) / MWMSTAR.relative_path(MWMSTAR.parse_keys({"sdss_id": BOSS_ONLY_SDSS_ID}))
    if not path.exists():
        write_mwm(path, "mwmStar", {"SDSS_ID": BOSS_ONLY_SDSS_ID}, {("BOSS", "APO"): [boss]})


def sdss5_table(stars: pd.DataFrame, analyses=LABEL_ANALYSES) -> pd.DataFrame:
    """Rows of the SDSS-V part: <analysis>_dr19 on the DR19 apStar files,
    <analysis>_mwm (with the observatory) on the mwmStar files and the BOSS-only star."""
    rows = []
    for analysis in analyses:
        for star in stars.itertuples(index=False):
            if star.kind == "dr19":
                rows.append(
                    {
                        "analysis": f"{analysis}_dr19",
                        "release": "dr19",
                        "telescope": star.telescope,
                        "healpix": star.healpix,
                        "obj": star.obj,
                    }
                )
            else:
                rows.append(
                    {
                        "analysis": f"{analysis}_mwm",
                        "sdss_id": star.sdss_id,
                        "observatory": _observatory(star.telescope),
                    }
                )
        rows.append({"analysis": f"{analysis}_mwm", "sdss_id": BOSS_ONLY_SDSS_ID})
    return pd.DataFrame(rows, dtype=object)  # object: no float NaN turns integers into 1.0


def apstar_relpath(field: str, obj: str, telescope: str = "apo25m") -> str:
    return APSTAR.relative_path(
        APSTAR.parse_keys({"telescope": telescope, "field": field, "obj": obj})
    )


def write_demo(root: Path, stars: pd.DataFrame, emulator: Emulator, seed: int, real_root: Path):
    """Write every star's apStar file (skipping files already there, so a rerun
    leaves existing mtimes alone), the corrupt example, and copy the real files."""
    root = Path(root)
    for i, star in enumerate(stars.itertuples(index=False)):
        path = root / apstar_relpath(star.field, star.obj)
        if path.exists():
            continue
        rng = np.random.default_rng([seed, i])
        flux, error, bitmask = make_synthetic_star(
            emulator, np.array([star.teff, star.logg, star.feh]), star.snr, rng
        )
        meta = {
            "FIELD": star.field,
            "OBJID": star.obj,
            "TELESCOP": "apo25m",
            "SNR": float(star.snr),
            "RA": float(star.ra),
            "DEC": float(star.dec),
        }
        write_apstar(path, flux, error, bitmask, meta)
    corrupt = root / apstar_relpath(DEMO_FIELD_BAD, CORRUPT_OBJ)
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"SIMPLE  =                    T" + b" " * 50)  # truncated FITS
    shutil.copytree(real_root, root, dirs_exist_ok=True)


def demo_table(
    stars: pd.DataFrame,
    analyses=APSTAR_ANALYSES,
    visit_analyses=APVISIT_ANALYSES,
    sdss5: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The observation table the default config ships: every apStar analysis on
    every synthetic and real star, plus one missing and one corrupt file, the
    apVisit analyses on the real visits, and the SDSS-V part (``sdss5`` stars)."""
    targets = [(f, o) for f, o in zip(stars["field"], stars["obj"], strict=True)]
    targets += list(REAL_STARS) + [(DEMO_FIELD_BAD, MISSING_OBJ), (DEMO_FIELD_BAD, CORRUPT_OBJ)]
    rows = [
        {"analysis": analysis, "telescope": "apo25m", "field": f, "obj": o}
        for analysis in analyses
        for f, o in targets
    ]
    rows += [
        {
            "analysis": analysis,
            "apred": apred,
            "telescope": "apo25m",
            "field": field,
            "plate": plate,
            "mjd": mjd,
            "fiber": fiber,
        }
        for analysis in visit_analyses
        for apred, field, plate, mjd, fiber in REAL_VISITS
    ]
    columns = ["analysis", "release", "apred", "telescope", "field", "obj", "plate", "mjd", "fiber"]
    table = pd.DataFrame(rows, columns=columns).astype("string")
    if sdss5 is not None and len(sdss5):
        part = sdss5_table(sdss5).astype("string")  # integers stay integers next to blanks
        table = pd.concat([table, part], ignore_index=True)
        table = table[columns + [c for c in part.columns if c not in columns]]
    return table.astype("string")
