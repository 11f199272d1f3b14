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
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import columns as colwise
from . import plancache, previous
from .analysis import Analysis
from .atomic import write_text_if_changed
from .manifest import format_manifest, jsonable, settings_file
from .planfile import MEMBER_FIELDS, same_plan
from .plantext import members_texts, plan_text
from .tables import TableError, TaskTable, load_tasks

log = logging.getLogger("starbatch")


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
    the listing (plancache.py)."""
    paths_ = pa.array(paths, pa.large_string())
    directories = pc.unique(pc.replace_substring_regex(paths_, r"(^|/)[^/]*$", ""))
    # The existing paths as arrow strings, a directory at a time: a million names as
    # Python strings would hold ~130 MB more at the plan's peak.
    existing = [pa.array([], pa.large_string())]
    for directory in directories.to_pylist():
        if listed is not None:
            listed[directory] = (plancache.directory_state(root / directory), time.time_ns())
        try:
            names = pa.array(os.listdir(root / directory), pa.large_string())
        except OSError:
            continue
        existing.append(colwise.concat([f"{directory}/" if directory else "", names], len(names)))
    found = pc.is_in(paths_, value_set=pa.concat_arrays(existing))
    del existing, paths_
    colwise.release_memory()
    return pd.Series(~found.to_numpy(zero_copy_only=False), index=paths.index)


def make_plan(tasks: TaskTable, root: Path, max_batch_size: int | Mapping[str, int]) -> Plan:
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
    # the plan's settings.json (manifest.settings_file), so changing them reruns nothing.
    settings: dict
    rows: np.ndarray  # the members' positions in Plan.batches, in table order

    @property
    def values(self) -> dict:
        return {**self.params, **self.settings}


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
        settings = {p.name: values[p.name] for p in cls.all_parameters() if not p.significant}
        out.append(BatchPlan(str(batch), cls.name, params, settings, rows))
    return out


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
    Last, the record of what the plan was made from (``record_key``: plancache.plan_key;
    None: the next plan is a full one), which also seals it."""
    plan_dir = Path(plan_dir)
    plancache.forget(plan_dir)
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
        # A plan in an earlier format that lists the same members is kept: no rerun.
        written += write_text_if_changed(batch_dir / f"{b.batch}.json", text, same_plan)
    settings = {b.batch: b.settings for b in plans}
    write_text_if_changed(settings_file(plan_dir), json.dumps(settings, sort_keys=True) + "\n")
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
    plancache.save(  # the seal: last
        plan_dir,
        record_key,
        plan.listed,
        [*files, settings_file(plan_dir)],
        {
            os.path.relpath(path, plan_dir): hashlib.sha256(text.encode()).hexdigest()
            for path, text in texts.items()
        },
        [m for row in rows for m in row[3]],
        stats,
        batch_files=len(files),
    )
    return stats


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
    settings_digest: str = "",
) -> dict:
    """Read and validate the tables, plan the batches, write the plan files (the plan
    checkpoint). ``check_csv``: an extra check of the raw CSV frame (the workflow's
    schema; ``settings_digest`` must change whenever it does); ``buildable``: model
    files the workflow can make; if given, every other model file a batch needs must
    already exist. Nothing is read or written when nothing the last plan was made
    from has changed (plancache.py)."""
    root, started = Path(root), time.perf_counter()
    tables = [table, *specs] if table else list(specs)
    key = plancache.plan_key(tables, root, max_batch_size, registry, settings_digest)
    stats = plancache.unchanged(Path(plan_dir), key, root, buildable) if root.is_dir() else None
    if stats is not None:
        # Snakemake deleted the checkpoint's outputs before this job: the same again.
        previous.restore([manifest, skipped])
        log.info(
            "plan unchanged: same table, sizes, code and settings, and no listed directory "
            "changed (%s); nothing rewritten",
            Path(plan_dir) / plancache.RECORD,
        )
        stats = {**stats, "plan_files_written": 0, "plan_files_removed": 0, "unchanged": True}
        seconds = {"check": time.perf_counter() - started}
    else:
        tasks = load_tasks(table, specs, registry=registry, check_csv=check_csv)
        read = time.perf_counter()
        if not root.is_dir():
            raise FileNotFoundError(f"SAS root {root} is not a directory (set sas_base_dir)")
        result = make_plan(tasks, root, max_batch_size)
        if buildable is not None:
            check_model_files(result, registry, buildable)
        batched = time.perf_counter()
        stats = write_plan(
            result, Path(plan_dir), Path(manifest), Path(skipped), registry, record_key=key
        )
        stats["unchanged"] = False
        seconds = {
            "read": read - started,
            "batch": batched - read,
            "write": time.perf_counter() - batched,
        }
    stats["seconds"] = {phase: round(s, 3) for phase, s in seconds.items()}
    log.info(
        "planned %d task(s) into %d batch(es); %d plan file(s) written, %d removed (%s s)",
        stats["tasks"] - stats["skipped"],
        stats["batches"],
        stats["plan_files_written"],
        stats["plan_files_removed"],
        ", ".join(f"{k} {v:.1f}" for k, v in stats["seconds"].items()),
    )
    if stats["skipped"]:
        log.warning(
            "skipped %d task(s) whose spectrum file is missing: see %s", stats["skipped"], skipped
        )
    return stats
