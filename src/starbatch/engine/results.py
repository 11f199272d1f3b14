"""Result tables: the batch tables (engine.batch_table) merged in stages into
per-analysis and global summaries (FITS with units, plus CSV and Parquet)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table, vstack

from . import flags
from .analysis import BOOKKEEPING, PROVENANCE, TRAILING
from .atomic import write_atomic
from .batch_table import has_fits_name


def write_fits(table: Table, path) -> None:
    """Write a table as FITS, keeping units FITS has no name for (dex) as plain
    TUNITn strings, which is what astronomers expect to see in the header."""
    table = table.copy(copy_data=False)
    foreign = {}
    for name in table.colnames:
        unit = table[name].unit
        if unit is not None and not has_fits_name(unit):
            foreign[name] = unit.to_string()
            table[name].unit = None
    hdu = fits.table_to_hdu(table)
    for i, name in enumerate(table.colnames, start=1):
        if name in foreign:
            hdu.header[f"TUNIT{i}"] = foreign[name]
    hdus = fits.HDUList([fits.PrimaryHDU(), hdu])
    write_atomic(path, lambda tmp: hdus.writeto(tmp))


def read_table(path) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)  # 'dex' is not a FITS unit
        return Table.read(path, format="fits", character_as_bytes=False)


def merge(paths: Sequence) -> Table:
    """Stack result tables; analyses with different columns are outer-joined
    (missing values masked), bookkeeping columns first."""
    tables = [read_table(p) for p in paths]
    tables = [t for t in tables if len(t)] or tables[:1]
    if not tables:
        return empty_table()  # nothing ran (every file missing): a summary all the same
    merged = vstack(tables, join_type="outer", metadata_conflicts="silent")
    merged.meta = merged_meta([t.meta for t in tables])
    first = [c for c in BOOKKEEPING if c in merged.colnames]
    last = [c for c in TRAILING + PROVENANCE if c in merged.colnames]
    middle = [c for c in merged.colnames if c not in first and c not in last]
    return merged[first + middle + last]


def empty_table() -> Table:
    """A summary without rows, with the columns every summary has."""
    t = Table()
    for name in BOOKKEEPING + ("flag_names", "error"):
        t[name] = np.zeros(0, dtype="U1")
    t["line"] = np.zeros(0, dtype=np.int64)
    t["flag"] = np.zeros(0, dtype=np.int32)
    t["time_s"] = np.zeros(0) * u.s
    t["setup_share_s"] = np.zeros(0) * u.s
    return t[list(BOOKKEEPING + TRAILING)]


# Cards that describe one batch only; a summary's rows say it per row.
_PER_BATCH = ("BATCH", "SETUP_S", "NMEMBER", "NFAILED", "READ_S", "ANAL_S", "LOOP_S", "NRUN")


def merged_meta(metas: Sequence[dict]) -> dict:
    """A summary's header: what all its tables share, 'mixed' where they differ (e.g.
    rows made by two starbatch versions), the span of DATE-BEG..DATE-END."""
    out: dict = {}
    keys = dict.fromkeys(k for m in metas for k in m if k not in _PER_BATCH)
    for key in keys:
        values = [m[key] for m in metas if key in m]
        if key == "DATE-BEG":
            out[key] = min(values)
        elif key == "DATE-END":
            out[key] = max(values)
        elif isinstance(values[0], (list, dict)):
            continue  # COMMENT/HISTORY lists: not provenance
        else:
            out[key] = values[0] if all(v == values[0] for v in values) else "mixed"
    return out


def write_table(table: Table, fits_path, csv_path=None, parquet_path=None) -> None:
    write_fits(table, fits_path)
    if csv_path:
        write_atomic(csv_path, lambda tmp: table.write(tmp, format="ascii.csv"))
    if parquet_path:
        from .catalogue import write_parquet

        write_parquet(table, parquet_path)


def failed_rows(table: Table, skipped_csv=None) -> Table:
    """Every task that gave no result: flagged rows of the summary, plus the rows
    planning left out because their file was missing (flag NOT_RUN), so one file
    lists everything to fix."""
    import pandas as pd

    # What to fix and where; timings and file facts are in the summary.
    drop = ("time_s", "setup_share_s", *PROVENANCE)
    keep = [c for c in table.colnames if c not in drop]
    failed = table[(np.asarray(table["flag"]) & flags.FAILED) != 0][keep] if len(table) else table
    frame = failed.to_pandas() if len(failed) else pd.DataFrame(columns=keep)
    if skipped_csv:
        skipped = pd.read_csv(skipped_csv, dtype=str, keep_default_na=False)
        if len(skipped):
            skipped = skipped.rename(columns={"reason": "error"})
            skipped["flag"] = flags.NOT_RUN
            skipped["flag_names"] = flags.describe(flags.NOT_RUN)
            frame = pd.concat([frame, skipped], ignore_index=True)
    columns = [c for c in keep if c in frame.columns]
    columns += [c for c in frame.columns if c not in columns]
    return frame[columns]
