"""Parquet copies of the result tables, for catalogue queries (DuckDB, pandas, Spark)
over 10^6 rows. Each column's unit and description travel in its field metadata
(``unit``, ``description``) and, for tools that only show the schema's, in the
schema metadata under ``starbatch``, with the flag bits."""

from __future__ import annotations

import json

import numpy as np
from astropy.table import Table

from . import flags
from .atomic import write_atomic


def column_docs(table: Table) -> dict[str, dict[str, str]]:
    """{column: {"unit": ..., "description": ...}} of an astropy table."""
    docs = {}
    for name in table.colnames:
        col = table[name]
        unit = col.unit.to_string() if col.unit is not None else ""
        docs[name] = {"unit": unit, "description": col.description or ""}
    return docs


def to_arrow(table: Table, docs: dict[str, dict[str, str]] | None = None):
    """An astropy table as a pyarrow table (masked values become nulls) whose fields
    and schema carry the units and descriptions (``docs`` overrides the table's own)."""
    import pyarrow as pa

    docs = {**column_docs(table), **(docs or {})}
    arrays, fields = [], []
    for name in table.colnames:
        col = table[name]
        data = np.asarray(col.filled() if hasattr(col, "filled") else col)
        mask = np.asarray(col.mask) if getattr(col, "mask", None) is not None else None
        kind = None
        if data.dtype.kind in "SU":
            data = data.astype(str).astype(object)
            kind = pa.string()  # also for zero rows, where Arrow would guess null
        elif data.dtype.byteorder not in "=|":  # FITS data are big-endian; Arrow is native
            data = data.astype(data.dtype.newbyteorder("="))
        array = pa.array(data, type=kind, mask=mask if mask is not None and mask.any() else None)
        meta = {k: v for k, v in docs.get(name, {}).items() if v}
        fields.append(pa.field(name, array.type, metadata=meta or None))
        arrays.append(array)
    schema_meta = {
        "starbatch": json.dumps(
            {
                "columns": docs,
                "flag_bits": {str(bit): text for bit, text in flags.DESCRIPTIONS.items()},
            }
        )
    }
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_meta))


def write_parquet(table: Table, path, docs: dict[str, dict[str, str]] | None = None) -> None:
    """Write ``table`` as Parquet atomically (temporary file, then rename)."""
    import pyarrow.parquet as pq

    arrow = to_arrow(table, docs)
    write_atomic(path, lambda tmp: pq.write_table(arrow, tmp))
