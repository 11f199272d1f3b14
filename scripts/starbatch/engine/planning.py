"""Planning: turn validated tasks into batches and write the plan files.

A batch is a run of tasks of one analysis whose significant parameters are
equal, at most ``max_batch_size`` long. Batch IDs are ``{analysis}-{hash}-{k}``:
the hash is of the significant parameters, k counts chunks of the group in table
order, so appending rows only changes the group's last chunk (or adds chunks)
and every other batch keeps its ID and its member list, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import Analysis
from .atomic import write_text_if_changed
from .manifest import format_manifest, jsonable, settings_path
from .tables import TableError, TaskTable, load_tasks

log = logging.getLogger("starbatch")


@dataclass
class Plan:
    batches: pd.DataFrame  # one row per task that will run, with its batch ID
    skipped: pd.DataFrame  # tasks whose file is missing, with the reason


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
    order = frame.groupby("group", sort=False).cumcount()
    sizes = frame["analysis"].map(limit)
    chunk = order // sizes
    prefix = frame["analysis"] + "-" + frame["group"].map(group_hash)
    return prefix + "-" + chunk.map("{:04d}".format)


def find_missing(paths: pd.Series, root: Path) -> pd.Series:
    """True where the file does not exist. Lists each directory once rather
    than stat-ing every file: a million files in a few thousand directories."""
    listings: dict[str, set[str] | None] = {}

    def exists(rel: str) -> bool:
        directory, _, name = rel.rpartition("/")
        if directory not in listings:
            try:
                listings[directory] = set(os.listdir(root / directory))
            except OSError:
                listings[directory] = None
        names = listings[directory]
        return names is not None and name in names

    return ~paths.map(exists).astype(bool)


def make_plan(tasks: TaskTable, root: Path, max_batch_size: int | Mapping[str, int]) -> Plan:
    frame = tasks.frame
    missing = find_missing(frame["path"], Path(root))
    skipped = frame[missing].copy()
    skipped["reason"] = [f"file not found: {root}/{p}" for p in skipped["path"]]
    present = frame[~missing].copy()
    present["batch"] = assign_batches(present, max_batch_size)
    return Plan(batches=present, skipped=skipped)


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


def batch_documents(plan: Plan, registry: Mapping[str, type[Analysis]]) -> dict[str, dict]:
    """The JSON-able member list of each batch (what the batch job reads)."""
    frame = plan.batches
    columns: dict[str, list] = {}

    def column(name: str) -> list:  # each column as plain Python values, made once
        if name not in columns:
            columns[name] = [jsonable(v) for v in frame[name].tolist()]
        return columns[name]

    docs = {}
    for batch, positions in _batch_positions(frame["batch"]):
        first = positions[0]
        cls = registry[column("analysis")[first]]
        keys = {k: column(k) for k in cls.product.key_names}
        significant = [p for p in cls.all_parameters() if p.significant]
        insignificant = [p for p in cls.all_parameters() if not p.significant]
        line, source, path = column("line"), column("source"), column("path")
        docs[batch] = {
            "batch": batch,
            "analysis": cls.name,
            "params": {p.name: column(p.name)[first] for p in significant},
            # Insignificant parameters take the first member's value (table order); they
            # go to a file of their own (settings_path), so changing them reruns nothing.
            "settings": {p.name: column(p.name)[first] for p in insignificant},
            "members": [
                {
                    "line": int(line[i]),
                    "source": source[i],
                    "path": path[i],
                    "keys": {k: values[i] for k, values in keys.items()},
                }
                for i in positions
            ],
        }
    return docs


def _batch_positions(batch: pd.Series) -> list[tuple[str, list[int]]]:
    """(batch ID, its rows' positions in table order) for each batch, in order of first
    appearance: groupby(sort=False) without a sub-frame per batch (1e5 batches)."""
    if batch.empty:
        return []
    codes, ids = pd.factorize(batch)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    return [(str(b), p.tolist()) for b, p in zip(ids, np.split(order, bounds), strict=True)]


def model_files(cls: type[Analysis], doc: dict) -> list[str]:
    return cls.model_files({**doc["params"], **doc["settings"]})


def write_plan(
    plan: Plan,
    plan_dir: Path,
    manifest: Path,
    skipped_csv: Path,
    registry: Mapping[str, type[Analysis]],
) -> dict:
    """Write one JSON per batch (only where it changed, so unchanged batches keep
    their mtime and do not rerun), remove plans of batches that no longer exist,
    write the skipped-rows report, and the manifest last (the checkpoint output)."""
    batch_dir = Path(plan_dir) / "batches"
    docs = batch_documents(plan, registry)
    # Everything that can fail is computed before the first file is written, so a
    # failed plan leaves the previous one intact.
    rows = [
        (b, d["analysis"], len(d["members"]), model_files(registry[d["analysis"]], d))
        for b, d in docs.items()
    ]
    batch_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for batch, doc in docs.items():
        settings = doc.pop("settings")
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        written += write_text_if_changed(batch_dir / f"{batch}.json", text)
        settings_text = json.dumps(settings, sort_keys=True) + "\n"
        write_text_if_changed(settings_path(batch_dir / f"{batch}.json"), settings_text)
    removed = 0
    for stale in batch_dir.glob("*.json"):
        if stale.stem not in docs:
            stale.unlink()
            settings_path(stale).unlink(missing_ok=True)
            removed += 1

    skipped = plan.skipped
    key_cols = [c for c in skipped.columns if c not in ("group", "reason")]
    skipped_table = (
        skipped[key_cols + ["reason"]]
        if len(skipped)
        else pd.DataFrame(columns=["source", "line", "analysis", "path", "reason"])
    )
    write_text_if_changed(Path(skipped_csv), skipped_table.to_csv(index=False))
    write_text_if_changed(Path(manifest), format_manifest(rows))
    return {
        "tasks": len(plan.batches) + len(skipped),
        "batches": len(docs),
        "skipped": len(skipped),
        "plan_files_written": written,
        "plan_files_removed": removed,
    }


def plan(
    table,
    specs,
    root,
    plan_dir,
    manifest,
    skipped,
    max_batch_size,
    registry: Mapping[str, type[Analysis]],
    check_csv=None,
    buildable: Iterable[str] | None = None,
) -> dict:
    """Read and validate the tables, plan the batches, write the plan files (the plan
    checkpoint). ``check_csv``: an extra check of the raw CSV frame (the workflow's
    schema); ``buildable``: model files the workflow can make; if given, every other
    model file a batch needs must already exist."""
    tasks = load_tasks(table, specs, registry=registry, check_csv=check_csv)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SAS root {root} is not a directory (set sas_base_dir)")
    result = make_plan(tasks, root, max_batch_size)
    if buildable is not None:
        check_model_files(result, registry, buildable)
    stats = write_plan(result, Path(plan_dir), Path(manifest), Path(skipped), registry)
    log.info(
        "planned %d task(s) into %d batch(es); %d plan file(s) written, %d removed",
        stats["tasks"] - stats["skipped"],
        stats["batches"],
        stats["plan_files_written"],
        stats["plan_files_removed"],
    )
    if stats["skipped"]:
        log.warning(
            "skipped %d task(s) whose spectrum file is missing: see %s", stats["skipped"], skipped
        )
    return stats
