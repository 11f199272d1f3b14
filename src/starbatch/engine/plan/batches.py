"""Planning: turn validated tasks into batches and write the plan files.

A batch is a run of tasks of one analysis whose significant parameters are
equal, at most ``max_batch_size`` long. Batch IDs are ``{analysis}-{hash}-{k}``:
the hash is of the significant parameters, k counts chunks of the group in table
order, so appending rows only changes the group's last chunk (or adds chunks)
and every other batch keeps its ID and its member list, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as colwise
from ..analysis import Analysis
from ..errors import TableError
from ..jsonvalues import jsonable
from . import record
from .table import TaskTable


@dataclass
class Plan:
    batches: pd.DataFrame  # one row per task that will run, with its batch ID
    skipped: pd.DataFrame  # tasks whose file is missing, with the reason
    # The directories listed (under the root): {directory: (state, listing time)}.
    listed: dict = field(default_factory=dict)


def group_hash(group: str) -> str:
    return hashlib.sha1(group.encode()).hexdigest()[:8]


def assign_batches(frame: pd.DataFrame, max_batch_size: int | Mapping[str, int]) -> pd.Series:
    """Batch ID per row. ``max_batch_size`` is one number or {analysis: n}."""

    def limit(analysis: str) -> int:
        if isinstance(max_batch_size, Mapping):
            return int(max_batch_size[analysis])
        return int(max_batch_size)

    if frame.empty:  # every file missing: nothing to batch (and pandas' empty dtypes)
        return pd.Series([], index=frame.index, dtype=object)
    groups, group_names = colwise.factorize(frame["group"])
    analyses, analysis_names = colwise.factorize(frame["analysis"])
    order = pd.Series(groups).groupby(groups).cumcount().to_numpy()
    chunk = order // np.array([limit(a) for a in analysis_names])[analyses]
    # The ID of each distinct (group, chunk), made once.
    batches = colwise.combine([groups, chunk], len(frame))
    ids = [
        f"{analysis_names[analyses[r]]}-{group_hash(group_names[groups[r]])}-{chunk[r]:04d}"
        for r in colwise.first_rows(batches)
    ]
    return pd.Series(colwise.strings((batches, ids), str), index=frame.index, dtype="str")


def find_missing(paths: pd.Series, root: Path, listed: dict | None = None) -> pd.Series:
    """True where the file does not exist. Lists each directory once rather
    than stat-ing every file: a million files in a few thousand directories.
    ``listed`` gets each directory's state from before its listing and the time of
    the listing (record.py)."""
    paths_ = pa.array(paths, pa.large_string())
    directories = pc.unique(pc.replace_substring_regex(paths_, r"(^|/)[^/]*$", ""))
    # The existing paths as arrow strings, a directory at a time: a million names as
    # Python strings would hold ~130 MB more at the plan's peak.
    existing = [pa.array([], pa.large_string())]
    for directory in directories.to_pylist():
        if listed is not None:
            listed[directory] = (record.directory_state(root / directory), time.time_ns())
        try:
            names = pa.array(os.listdir(root / directory), pa.large_string())
        except OSError:
            continue
        existing.append(colwise.concat([f"{directory}/" if directory else "", names], len(names)))
    found = pc.is_in(paths_, value_set=pa.concat_arrays(existing))
    del existing, paths_
    colwise.release_memory()
    return pd.Series(~found.to_numpy(zero_copy_only=False), index=paths.index)


def group_batches(tasks: TaskTable, root: Path, max_batch_size: int | Mapping[str, int]) -> Plan:
    """The batches and the skipped rows. The rows move from ``tasks`` into the plan
    (``tasks.frame`` is left empty), so that a million rows are held once."""
    frame, listed = tasks.frame, {}
    missing = find_missing(frame["path"], Path(root), listed)
    skipped = frame[missing]
    skipped["reason"] = [f"file not found: {root}/{p}" for p in skipped["path"]]
    present = colwise.move_rows(frame, np.flatnonzero(~missing.to_numpy()))
    present["batch"] = assign_batches(present, max_batch_size)
    colwise.release_memory()
    return Plan(batches=present, skipped=skipped, listed=listed)


def check_model_files(
    plan: Plan, registry: Mapping[str, type[Analysis]], buildable: Iterable[str]
) -> None:
    """Every model file a batch needs must exist or be one the workflow can build;
    otherwise a TableError naming the first table row that asks for it (before any
    plan file is written, and before Snakemake meets a file no rule can make)."""
    buildable = set(buildable)
    problems, seen = [], set()
    # The first row of each batch, in batch order (no sub-frame per batch).
    for first in plan.batches.drop_duplicates("batch").to_dict("records"):
        cls = registry[first["analysis"]]
        params = {p.name: jsonable(first[p.name]) for p in cls.all_parameters()}
        for path in cls.model_files(params):
            if path in seen or path in buildable or Path(path).exists():
                continue
            seen.add(path)
            asked = ", ".join(f"{k}={v!r}" for k, v in params.items())
            problems.append(
                f"{first['source']} line {first['line']}: {cls.name} needs model file "
                f"{path}, which does not exist and which the workflow cannot build (it can "
                f"build: {', '.join(sorted(buildable)) or 'nothing'}); parameters: {asked}"
            )
    if problems:
        raise TableError(problems)


@dataclass
class BatchPlan:
    """One batch as the manifest and its plan files describe it."""

    batch: str
    analysis: str
    params: dict  # the significant parameters
    # Insignificant parameters take the first member's value (table order); they go to
    # the plan's insignificant.json (read.insignificant_file), so changing them reruns
    # nothing.
    insignificant: dict
    rows: np.ndarray  # the members' positions in Plan.batches, in table order

    @property
    def values(self) -> dict:
        return {**self.params, **self.insignificant}


def batch_plans(plan: Plan, registry: Mapping[str, type[Analysis]]) -> list[BatchPlan]:
    """Every batch, in order of first appearance in the table."""
    frame = plan.batches
    if frame.empty:
        return []
    codes, ids = colwise.factorize(frame["batch"])
    order = np.argsort(codes, kind="stable")
    positions = np.split(order, np.cumsum(np.bincount(codes))[:-1])
    firsts = frame.iloc[[p[0] for p in positions]].to_dict("records")
    out = []
    for batch, rows, first in zip(ids, positions, firsts, strict=True):
        cls = registry[first["analysis"]]
        values = {p.name: jsonable(first[p.name]) for p in cls.all_parameters()}
        params = {p.name: values[p.name] for p in cls.all_parameters() if p.significant}
        insignificant = {p.name: values[p.name] for p in cls.all_parameters() if not p.significant}
        out.append(BatchPlan(str(batch), cls.name, params, insignificant, rows))
    return out
