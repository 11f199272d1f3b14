"""Writing the plan's files (engine/plan/read.py describes them and reads them back):
each batch's plan file, made column-wise (a million members as JSON without a dict per
member), the insignificant parameters, the skipped rows, the manifest, and the plan's
record last (engine/plan/record.py)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as colwise
from .. import previous
from ..analysis import Analysis
from ..atomic import write_text_if_changed
from ..jsonvalues import jsonable
from . import record
from .batches import BatchPlan, Plan, batch_plans
from .read import MANIFEST_COLUMNS, MEMBER_FIELDS, insignificant_file


def dumps(doc) -> str:
    """A plan's text, less its newline: exactly ``json.dumps(doc, sort_keys=True,
    separators=(",", ":"))`` (a test checks the column-wise text against it)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


_SLOT = '"members":0'  # where the members go in a plan's head (first; sort_keys)


_PLAIN = bytes(b for b in colwise.PRINTABLE_ASCII if b not in b'"\\')  # json.dumps keeps


def json_values(values: Sequence) -> pa.Array:
    """One JSON text per value. Plain strings and integers (nearly every cell) are
    encoded by arrow; anything else once per distinct value by json.dumps. A categorical's
    categories are encoded, once each."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        if not values.hasnans:
            return json_values(values.cat.categories).take(pa.array(values.cat.codes))
        values = values.astype(object)  # NaN as json.dumps writes it
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        array = None
    if isinstance(array, pa.ChunkedArray):  # an index or column joined from parts
        array = array.combine_chunks()
    if array is not None and not array.null_count:
        if pa.types.is_integer(array.type):
            return pc.cast(array, pa.large_string())
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            array = array.cast(pa.large_string())
            if colwise.only_bytes(array, _PLAIN):
                return colwise.concat(['"', array, '"'], len(array))
    return colwise.strings(colwise.factorize(values), lambda v: json.dumps(jsonable(v)))


def column_texts(values: Sequence, sizes: Sequence[int]) -> list[str]:
    """The JSON of one member column for each of consecutive batches of ``sizes`` rows:
    ``[v1,v2,...]``, or ``{"all":v}`` where the batch's values are all equal."""
    texts = json_values(values)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    # A batch is constant when no member differs from the one before it.
    differs = pc.not_equal(texts[1:], texts[:-1]).to_numpy(zero_copy_only=False)
    changes = np.concatenate([[0], np.cumsum(differs)])
    first = starts[:-1]
    constant = changes[starts[1:] - 1] == changes[first]
    lists = pa.LargeListArray.from_arrays(pa.array(starts), texts)
    varying = np.flatnonzero(~constant)
    comma = pa.scalar(",", pa.large_string())
    joined = pc.binary_join(lists.take(pa.array(varying)), comma).to_pylist()
    out = [f'{{"all":{t}}}' for t in texts.take(pa.array(first)).to_pylist()]
    for i, text in zip(varying, joined, strict=True):
        out[i] = f"[{text}]"
    return out


def members_texts(columns: dict[str, Sequence], key_names: Sequence[str], sizes) -> list[str]:
    """The ``members`` JSON of consecutive batches of ``sizes`` rows; ``columns`` holds
    MEMBER_FIELDS and "keys.<key>" for each key, a row per member."""
    sizes = list(sizes)
    keys = {k: column_texts(columns[f"keys.{k}"], sizes) for k in sorted(key_names)}
    fields = {name: column_texts(columns[name], sizes) for name in MEMBER_FIELDS}
    names = {k: json.dumps(k) for k in keys}  # once, not once per batch
    out = []
    for b, n in enumerate(sizes):
        key_text = ",".join(f"{names[k]}:{texts[b]}" for k, texts in keys.items())
        out.append(
            f'{{"keys":{{{key_text}}},"line":{fields["line"][b]},"n":{n},'
            f'"path":{fields["path"][b]},"source":{fields["source"][b]}}}'
        )
    return out


def plan_text(batch: str, analysis: str, params: dict, members: str) -> str:
    """The plan file of a batch whose ``members`` JSON is given (members_texts)."""
    head = dumps({"analysis": analysis, "batch": batch, "members": 0, "params": params})
    return head.replace(_SLOT, f'"members":{members}', 1) + "\n"


def format_manifest(rows) -> str:
    lines = ["\t".join(MANIFEST_COLUMNS)]
    lines += [f"{b}\t{a}\t{n}\t{';'.join(files)}" for b, a, n, files in rows]
    return "\n".join(lines) + "\n"


CHUNK_ROWS = 100_000  # members whose text is made at once: bounds the memory it takes


def batch_texts(
    plan: Plan, plans: list[BatchPlan], registry: Mapping[str, type[Analysis]]
) -> Iterator[tuple[BatchPlan, str]]:
    """Each batch's plan file text (what the batch job reads), a chunk of batches of
    one analysis at a time."""
    for analysis in dict.fromkeys(b.analysis for b in plans):
        key_names = registry[analysis].product.key_names
        frame = plan.batches[[*MEMBER_FIELDS, *key_names]]
        frame.columns = [*MEMBER_FIELDS, *(f"keys.{k}" for k in key_names)]
        for chunk in _chunks([b for b in plans if b.analysis == analysis], CHUNK_ROWS):
            rows = frame.iloc[np.concatenate([b.rows for b in chunk])]
            columns = {name: rows[name] for name in rows.columns}
            texts = members_texts(columns, key_names, [len(b.rows) for b in chunk])
            del rows, columns
            colwise.release_memory()
            for b, text in zip(chunk, texts, strict=True):
                yield b, plan_text(b.batch, b.analysis, b.params, text)


def _chunks(plans: list[BatchPlan], rows: int) -> Iterator[list[BatchPlan]]:
    """Consecutive batches, about ``rows`` members at a time."""
    chunk, size = [], 0
    for b in plans:
        chunk.append(b)
        size += len(b.rows)
        if size >= rows:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def write_plan(
    plan: Plan,
    plan_dir: Path,
    manifest: Path,
    skipped_csv: Path,
    registry: Mapping[str, type[Analysis]],
    record_key: str | None = None,
) -> dict:
    """Write one JSON per batch (only where it changed, so unchanged batches keep
    their mtime and do not rerun), remove plans of batches that no longer exist,
    write the skipped-rows report, and the manifest last (the checkpoint output).
    Last, the record of what the plan was made from (``record_key``: record.plan_key;
    None: the next plan is a full one), which also seals it."""
    plan_dir = Path(plan_dir)
    record.forget(plan_dir)
    batch_dir = plan_dir / "batches"
    plans = batch_plans(plan, registry)
    # Everything that can fail is computed before the first file is written, so a
    # failed plan leaves the previous one intact.
    rows = [
        (b.batch, b.analysis, len(b.rows), registry[b.analysis].model_files(b.values))
        for b in plans
    ]
    batch_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for b, text in batch_texts(plan, plans, registry):
        written += write_text_if_changed(batch_dir / f"{b.batch}.json", text)
    insignificant = {b.batch: b.insignificant for b in plans}
    text = json.dumps(insignificant, sort_keys=True) + "\n"
    write_text_if_changed(insignificant_file(plan_dir), text)
    removed = 0
    batches = {b.batch for b in plans}
    for stale in batch_dir.glob("*.json"):
        if stale.stem not in batches:
            stale.unlink()
            removed += 1

    skipped = plan.skipped
    key_cols = [c for c in skipped.columns if c not in ("group", "reason")]
    skipped_table = (
        skipped[key_cols + ["reason"]]
        if len(skipped)
        else pd.DataFrame(columns=["source", "line", "analysis", "path", "reason"])
    )
    texts = {  # the manifest last
        Path(skipped_csv): skipped_table.to_csv(index=False),
        Path(manifest): format_manifest(rows),
    }
    for path, text in texts.items():
        write_text_if_changed(path, text)
    previous.keep(texts)
    stats = {
        "tasks": len(plan.batches) + len(skipped),
        "batches": len(plans),
        "skipped": len(skipped),
        "plan_files_written": written,
        "plan_files_removed": removed,
    }
    files = [batch_dir / f"{b.batch}.json" for b in plans]
    record.save(  # the seal: last
        plan_dir,
        record_key,
        plan.listed,
        [*files, insignificant_file(plan_dir)],
        {
            os.path.relpath(path, plan_dir): hashlib.sha256(text.encode()).hexdigest()
            for path, text in texts.items()
        },
        [m for row in rows for m in row[3]],
        stats,
        batch_files=len(files),
    )
    return stats
