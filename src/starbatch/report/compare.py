"""The star-by-star comparison: one row per observation (a file, and the part of it
read: apstar_row, observatory, mwm_row), each label analysis's results side by side
(gridfit_teff, apogeenet_teff, cannon_teff, ...), their differences and flags. The
variants of an analysis (gridfit_dr19, gridfit_mwm, ...) fill the same columns, so a
DR17, DR19 and mwmStar star each make one row; ``product`` says which kind of file."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.table import Table

from starbatch.analyses.labels import LABEL_COLUMNS
from starbatch.analyses.registry import LABEL_ANALYSES, family
from starbatch.engine import flags
from starbatch.engine.catalogue import write_parquet
from starbatch.engine.results import write_fits
from starbatch.sdss.products import PRODUCTS

LABELS = ("teff", "logg", "feh")
UNITS = {c.name: c.unit for c in LABEL_COLUMNS}
# What selects the spectrum inside a file, for every product.
READ_KEYS = tuple(dict.fromkeys(p.name for d in PRODUCTS.values() for p in d.read_parameters))


def _star(frame: pd.DataFrame) -> pd.Series:
    """The star's name: APOGEE ID, else sdss_id, else the file name (apVisit keys name
    no star)."""
    star = frame["path"].map(lambda p: Path(str(p)).stem)
    for column, fmt in (("sdss_id", "sdss_id {}"), ("objid", "{}"), ("obj", "{}")):
        if column in frame:
            values = frame[column]
            known = values.notna() & (values.astype(str).str.len() > 0)
            known &= values.astype(str) != "-1"
            star = star.where(~known, values.map(lambda v, f=fmt: f.format(v)))
    return star


def comparison_table(summaries: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The comparison from per-analysis summaries (non-label analyses are ignored).
    An analysis that ran twice on one observation (say, two grids) keeps its first
    row in table order."""
    parts = []
    for frame in summaries:
        if not len(frame) or family(str(frame["analysis"].iloc[0])) is None:
            continue
        base, suffix = family(str(frame["analysis"].iloc[0]))
        frame = frame.copy()
        for key in READ_KEYS:
            frame[key] = frame[key].astype(str) if key in frame else ""
        frame = frame.drop_duplicates(["path", *READ_KEYS])
        keep = {"batch": f"{base}_batch", "flag": f"{base}_flag", "flag_names": f"{base}_flags"}
        for label in LABELS:
            keep[label] = f"{base}_{label}"
            keep[f"{label}_err"] = f"{base}_{label}_err"
        part = frame[["path", *READ_KEYS]].assign(product=suffix, star=_star(frame))
        part = part.join(frame[list(keep)].rename(columns=keep))
        parts.append(part.set_index(["product", "path", *READ_KEYS]))
    index_names = ["product", "path", *READ_KEYS]
    if not parts:
        return pd.DataFrame(columns=[*index_names, "star", "flag", "flag_names"])
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.combine_first(part)
    out = merged.reset_index()
    bases = [b for b in LABEL_ANALYSES if f"{b}_flag" in out]
    for a, b in combinations(bases, 2):
        for label in LABELS:
            out[f"{a}_minus_{b}_{label}"] = out[f"{a}_{label}"] - out[f"{b}_{label}"]
    flag = np.zeros(len(out), dtype=np.int64)
    for b in bases:
        out[f"{b}_flag"] = out[f"{b}_flag"].fillna(-1).astype(np.int64)
        out[f"{b}_batch"] = out[f"{b}_batch"].fillna("")
        out[f"{b}_flags"] = out[f"{b}_flags"].fillna("")
        flag |= np.where(out[f"{b}_flag"] >= 0, out[f"{b}_flag"], 0)
    out["flag"] = flag
    out["flag_names"] = [flags.describe(int(f)) for f in flag]
    out["n_analyses"] = sum((out[f"{b}_flag"] >= 0).astype(int) for b in bases)
    first = ["star", "product", "path", *READ_KEYS]
    return out[first + [c for c in out.columns if c not in first]]


def column_docs(columns: Sequence[str]) -> dict[str, dict[str, str]]:
    """Units and descriptions of the comparison's columns."""
    docs = {
        "star": {"description": "APOGEE ID, or sdss_id for mwm files"},
        "product": {"description": "file kind: apstar (DR16/DR17), dr19, mwm, mwmvisit, ..."},
        "path": {"description": "spectrum file, relative to the SAS root"},
        "flag": {"description": "OR of every analysis's flag bits (see schema flag_bits)"},
        "flag_names": {"description": "names of the bits set in flag"},
        "n_analyses": {"description": "how many label analyses have a row for this spectrum"},
    }
    for name in columns:
        parts = name.split("_")
        if parts[0] in LABEL_ANALYSES and len(parts) >= 2:
            what = "_".join(parts[1:])
            if "minus" in parts:
                a, b, label = parts[0], parts[2], "_".join(parts[3:])
                docs[name] = {"unit": UNITS[label], "description": f"{a}_{label} - {b}_{label}"}
            elif what in UNITS:
                desc = next(c.description for c in LABEL_COLUMNS if c.name == what)
                docs[name] = {"unit": UNITS[what], "description": f"{parts[0]}: {desc}"}
            elif what in ("flag", "flags", "batch"):
                text = {
                    "flag": "flag bits (-1: not run)",
                    "flags": "flag names",
                    "batch": "batch ID",
                }[what]
                docs[name] = {"description": f"{parts[0]}: {text}"}
    return docs


def write_comparison(summary_parquets: Sequence, parquet_out, fits_out) -> pd.DataFrame:
    """Build the comparison from per-analysis Parquet summaries and write it as Parquet
    (units and descriptions in the schema) and FITS (TUNITn, TCOMMn)."""
    frames = [pd.read_parquet(p) for p in summary_parquets]
    out = comparison_table(frames)
    docs = column_docs(out.columns)
    table = Table.from_pandas(out)
    for name, doc in docs.items():
        if name in table.colnames:
            table[name].description = doc.get("description", "")
            if doc.get("unit"):
                table[name].unit = doc["unit"]
    write_parquet(table, parquet_out, docs)
    write_fits(table, fits_out)
    return out
