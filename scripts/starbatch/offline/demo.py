"""The demo data set: synthetic apStar files with known labels, written in the
real SDSS layout, next to the real DR17 files, plus the matching task table."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.methods.emulator import Emulator
from starbatch.sdss.products import APSTAR

from .synthetic import apogee_id, draw_labels, make_synthetic_star, write_apstar

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
    stars: pd.DataFrame, analyses=APSTAR_ANALYSES, visit_analyses=APVISIT_ANALYSES
) -> pd.DataFrame:
    """The observation table the default config ships: every apStar analysis on
    every synthetic and real star, plus one missing and one corrupt file, and the
    apVisit analyses on the real visits."""
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
    return pd.DataFrame(rows, columns=columns).astype("string")
