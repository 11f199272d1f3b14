"""Result tables: one FITS table per batch (one row per member), merged in
stages into per-analysis and global summaries (FITS with units, plus CSV)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, Table, vstack

from . import flags
from .analysis import BOOKKEEPING, PROVENANCE, TRAILING, Task
from .atomic import write_atomic

if TYPE_CHECKING:
    from .analysis import Analysis


@dataclass
class Outcome:
    """One member's row: what the analysis returned (or why not), and its time."""

    task: Task
    result: dict
    flag: int
    error: str
    seconds: float
    input: dict = field(default_factory=dict)  # the file read: size, mtime_ns, checksums


PROVENANCE_DESCRIPTIONS = {
    "input_size": "size of the input file when it was read",
    "input_mtime_ns": "modification time of the input file (ns since the epoch)",
    "input_checksum": "FITS CHECKSUM card of the input file's primary HDU, if it has one",
    "input_datasum": "FITS DATASUM card of the input file's primary HDU, if it has one",
    "model_files": "model files the analysis loaded (; separated)",
    "model_sha256": "sha256 of each model file (; separated)",
    "analysis_version": "version string of the analysis",
}


def _unit(text: str):
    return u.Unit(text, parse_strict="silent") if text else None


def write_batch_table(
    output,
    plan: dict,
    cls: type[Analysis],
    outcomes: Sequence[Outcome],
    setup: float,
    header: dict | None = None,
    models: Sequence[tuple[str, str]] = (),
) -> None:
    """One row per member; ``header`` the provenance cards, ``models`` the (path,
    sha256) of each model file the analysis loaded (also recorded in every row)."""
    n = len(outcomes)
    t = Table()
    t["analysis"] = [cls.name] * n
    t["batch"] = [plan["batch"]] * n
    t["source"] = [o.task.extra.get("source", "") for o in outcomes]
    t["line"] = np.array([o.task.line for o in outcomes], dtype=np.int64)
    t["path"] = [o.task.extra.get("relpath", str(o.task.path)) for o in outcomes]
    for key in cls.product.key_names:
        t[key] = [o.task.keys.get(key) for o in outcomes]
    for p in cls.all_parameters():
        t[p.name] = [o.task.params.get(p.name) for o in outcomes]
    for col in cls.columns:
        values = [o.result.get(col.name, _missing(col.dtype)) for o in outcomes]
        t[col.name] = np.array(values, dtype=col.dtype) if n else np.zeros(0, col.dtype)
        t[col.name].unit = _unit(col.unit)
        t[col.name].description = col.description
    t["flag"] = np.array([o.flag for o in outcomes], dtype=np.int32)
    t["flag_names"] = [flags.describe(o.flag) for o in outcomes]
    t["error"] = [o.error for o in outcomes]
    t["time_s"] = np.array([o.seconds for o in outcomes]) * u.s
    t["setup_share_s"] = np.full(n, setup / max(n, 1)) * u.s
    facts = [o.input for o in outcomes]
    sizes = np.array([f.get("size", -1) for f in facts], dtype=np.int64)
    t["input_size"] = Column(sizes, unit=u.byte)  # a Quantity would make it a float
    t["input_mtime_ns"] = np.array([f.get("mtime_ns", -1) for f in facts], dtype=np.int64)
    t["input_checksum"] = [f.get("checksum", "") for f in facts]
    t["input_datasum"] = [f.get("datasum", "") for f in facts]
    t["model_files"] = [";".join(path for path, _ in models)] * n
    t["model_sha256"] = [";".join(sha for _, sha in models)] * n
    t["analysis_version"] = [str(getattr(cls, "version", ""))] * n
    for name, text in PROVENANCE_DESCRIPTIONS.items():
        t[name].description = text
    t.meta["BATCH"] = plan["batch"]
    t.meta["ANALYSIS"] = cls.name
    t.meta["SETUP_S"] = round(setup, 6)
    t.meta["NMEMBER"] = n
    t.meta["NFAILED"] = int(sum(bool(o.flag & flags.FAILED) for o in outcomes))
    for key, value, comment in flags.header_cards():
        t.meta[key] = (value, comment)
    for key, card in (header or {}).items():
        t.meta[key] = card
    write_fits(t, output)


def write_fits(table: Table, path) -> None:
    """Write a table as FITS, keeping units FITS has no name for (dex) as plain
    TUNITn strings, which is what astronomers expect to see in the header."""
    table = table.copy(copy_data=False)
    foreign = {}
    for name in table.colnames:
        unit = table[name].unit
        if unit is not None and not _has_fits_name(unit):
            foreign[name] = unit.to_string()
            table[name].unit = None
    hdu = fits.table_to_hdu(table)
    for i, name in enumerate(table.colnames, start=1):
        if name in foreign:
            hdu.header[f"TUNIT{i}"] = foreign[name]
    hdus = fits.HDUList([fits.PrimaryHDU(), hdu])
    write_atomic(path, lambda tmp: hdus.writeto(tmp))


def _has_fits_name(unit) -> bool:
    # A unit read back from FITS that FITS has no name for (dex) is an UnrecognizedUnit,
    # whose to_string("fits") does not raise: table_to_hdu would warn once per column.
    if isinstance(unit, u.UnrecognizedUnit):
        return False
    try:
        unit.to_string("fits")
    except ValueError:
        return False
    return True


def _missing(dtype: str):
    kind = np.dtype(dtype).kind
    return np.nan if kind == "f" else (False if kind == "b" else ("" if kind in "US" else -1))


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
