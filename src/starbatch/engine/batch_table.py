"""A batch job's result table: one FITS binary table, one row per member, written with
astropy.io.fits alone. astropy.table (with the readers it registers: ascii, votable,
asdf) doubled the modules a batch job imports and cost ~0.2 s per batch for a table that
is only written; the collection jobs read it back as a Table (engine.results)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u  # loaded by astropy.io.fits anyway
from astropy.io import fits

from . import flags
from .analysis import Declaration, Task
from .atomic import write_atomic


@dataclass
class Outcome:
    """One member's row: what the analysis returned (or why not), and its time."""

    task: Task
    result: dict
    flag: int
    error: str
    seconds: float
    input: dict = field(default_factory=dict)  # the file read: size, mtime_ns, checksums


def _missing(dtype: str):
    """The value of a column the analysis did not return (a failed member)."""
    dtype = np.dtype(dtype)
    base = dtype.base if dtype.shape else dtype  # a vector column ("3f8"): one per element
    value = {"f": np.nan, "c": np.nan, "b": False, "U": "", "S": "", "u": 0}.get(base.kind, -1)
    return np.full(dtype.shape, value, dtype=base) if dtype.shape else value


def has_fits_name(unit) -> bool:
    # A unit read back from FITS that FITS has no name for (dex) is an UnrecognizedUnit,
    # whose to_string("fits") does not raise.
    if isinstance(unit, u.UnrecognizedUnit):
        return False
    try:
        unit.to_string("fits")
    except ValueError:
        return False
    return True


def fits_unit(text: str) -> str | None:
    """TUNITn for a declared unit: its FITS name ("km s-1" for "km/s"), else the text as
    written ("dex", which astronomers expect to see), None for no unit."""
    if not text:
        return None
    unit = u.Unit(text, parse_strict="silent")
    return unit.to_string("fits") if has_fits_name(unit) else text


def storable(values) -> np.ndarray:
    """``values`` as the array FITS stores, typed as astropy.table typed it: str -> ASCII
    bytes of at least one character; numbers and booleans as numpy makes them."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        array = np.char.encode(array, "ascii")
    if array.dtype.kind == "S":
        array = array.astype(f"S{max(array.dtype.itemsize, 1)}")
    return array


def table_hdu(columns: Sequence[tuple[str, object, str]]) -> fits.BinTableHDU:
    """A binary table from (name, values, unit) triples; FITS formats (unsigned integers
    with TZERO, vector columns) as astropy.io.fits derives them from the numpy types."""
    arrays = [storable(v) for _, v, _ in columns]
    dtype = [(name, a.dtype, a.shape[1:]) for (name, _, _), a in zip(columns, arrays, strict=True)]
    data = np.empty(len(arrays[0]), dtype=dtype)
    for (name, _, _), a in zip(columns, arrays, strict=True):
        data[name] = a
    coldefs = fits.ColDefs(data)
    for col, (_, _, unit) in zip(coldefs, columns, strict=True):
        col.unit = fits_unit(unit)
    # BinTableHDU(data=...) imports astropy.table to test for a Table; assigning the data
    # to an empty HDU does not.
    hdu = fits.BinTableHDU()
    hdu.data = fits.FITS_rec.from_columns(coldefs)
    return hdu


def write_batch_table(
    output,
    plan: dict,
    analysis: Declaration,
    outcomes: Sequence[Outcome],
    setup: float,
    header: dict | None = None,
    models: Sequence[tuple[str, str]] = (),
) -> None:
    """One row per member; ``header`` the provenance cards, ``models`` the (path,
    sha256) of each model file the analysis loaded (also recorded in every row).
    Units are the analysis's declared ones (fits_unit)."""
    n = len(outcomes)
    facts = [o.input for o in outcomes]
    cols = [
        ("analysis", [analysis.name] * n, ""),
        ("batch", [plan["batch"]] * n, ""),
        ("source", [o.task.extra.get("source", "") for o in outcomes], ""),
        ("line", np.array([o.task.line for o in outcomes], dtype=np.int64), ""),
        ("path", [o.task.extra.get("relpath", str(o.task.path)) for o in outcomes], ""),
    ]
    cols += [(k, [o.task.keys.get(k) for o in outcomes], "") for k in analysis.key_names]
    cols += [(p, [o.task.params.get(p) for o in outcomes], "") for p in analysis.parameter_names]
    for col in analysis.columns:
        values = [o.result.get(col.name, _missing(col.dtype)) for o in outcomes]
        # a vector column ("3f8") is an (n, 3) array of its element type
        cols.append((col.name, np.array(values, dtype=np.dtype(col.dtype).base), col.unit))
    cols += [
        ("flag", np.array([o.flag for o in outcomes], dtype=np.int32), ""),
        ("flag_names", [flags.describe(o.flag) for o in outcomes], ""),
        ("error", [o.error for o in outcomes], ""),
        ("time_s", np.array([o.seconds for o in outcomes], dtype=float), "s"),
        ("setup_share_s", np.full(n, setup / max(n, 1)), "s"),
        ("input_size", np.array([f.get("size", -1) for f in facts], np.int64), "byte"),
        ("input_mtime_ns", np.array([f.get("mtime_ns", -1) for f in facts], np.int64), ""),
        ("input_checksum", [f.get("checksum", "") for f in facts], ""),
        ("input_datasum", [f.get("datasum", "") for f in facts], ""),
        ("model_files", [";".join(path for path, _ in models)] * n, ""),
        ("model_sha256", [";".join(sha for _, sha in models)] * n, ""),
        ("analysis_version", [analysis.version] * n, ""),
    ]
    hdu = table_hdu(cols)
    cards = {
        "BATCH": plan["batch"],
        "ANALYSIS": analysis.name,
        "SETUP_S": round(setup, 6),
        "NMEMBER": n,
        "NFAILED": int(sum(bool(o.flag & flags.FAILED) for o in outcomes)),
    }
    cards.update({key: (value, comment) for key, value, comment in flags.header_cards()})
    cards.update(header or {})
    for key, card in cards.items():
        hdu.header[key] = card
    hdus = fits.HDUList([fits.PrimaryHDU(), hdu])
    write_atomic(output, lambda tmp: hdus.writeto(tmp))


def read_columns(path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of a result table (batch or summary) as plain arrays, strings as
    str; a column the table lacks is left out. For readers that need a few columns and
    not astropy.table (a plot job: ~0.7 s of imports saved)."""
    with fits.open(path, memmap=False) as hdus:
        data = hdus[1].data
        return {name: np.asarray(data[name]) for name in names if name in data.names}
