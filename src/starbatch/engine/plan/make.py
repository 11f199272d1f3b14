"""Making a plan: the one entry point (``make_plan``) that the plan checkpoint and the
CLI call. It chooses the batch sizes (engine/plan/sizing.py), reads and validates the
tables (table.py), groups the tasks into batches (batches.py) and writes the plan's
files (files.py), or writes nothing when nothing it was made from changed (record.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import previous
from ..analysis import Analysis
from . import record
from .batches import check_model_files, group_batches
from .files import write_plan
from .read import MANIFEST
from .sizing import (
    DEFAULT_BATCH_MINUTES,
    DEFAULT_SETUP_SHARE,
    declared_costs,
    plan_sizes,
    write_sizes,
)
from .table import analysis_counts, load_tasks

log = logging.getLogger("starbatch")
SKIPPED = "skipped.csv"


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is made from, besides the files it finds."""

    table: str | Path | None  # the observation table (CSV)
    specs: Sequence[str | Path]  # batch-mode YAML task specs
    root: Path  # the SAS root the observations resolve under
    plan_dir: Path
    # {analysis: a number, or "auto"} (engine/plan/sizing.py)
    batch_sizes: Mapping[str, int | str]
    analyses_config: Mapping = field(default_factory=dict)  # the config's analyses:
    resize: bool = False  # choose auto sizes anew
    setup_share: float = DEFAULT_SETUP_SHARE
    batch_minutes: float = DEFAULT_BATCH_MINUTES
    parallel: int = 1  # batch jobs at once, to balance auto sizes
    batch_dir: Path = Path("results/batches")  # finished batches: measured costs
    bench_dir: Path | None = None  # their Snakemake benchmark files
    # An extra check of the raw CSV table (the workflow's schema); workflow_digest must
    # change whenever it does.
    check_csv: Callable | None = None
    # Model files the workflow can build; if given, every other one a batch needs must
    # exist already.
    buildable: Sequence[str] | None = None
    workflow_digest: str = ""  # what else the plan depends on (schema, project models)

    @property
    def manifest(self) -> Path:
        return Path(self.plan_dir) / MANIFEST

    @property
    def skipped(self) -> Path:
        return Path(self.plan_dir) / SKIPPED


def make_plan(request: PlanRequest, registry: Mapping[str, type[Analysis]]) -> dict:
    """Size, plan and write; the plan's counts and timings. The sizes' record is
    written after the plan, so a failed plan changes nothing."""
    sizes, records = plan_sizes(
        request.batch_sizes,
        declared_costs(registry, request.analyses_config),
        request.plan_dir,
        request.batch_dir,
        request.bench_dir,
        resize=request.resize,
        setup_share=request.setup_share,
        batch_minutes=request.batch_minutes,
        rows=lambda: analysis_counts(request.table, list(request.specs)),
        parallel=request.parallel,
    )
    stats = _plan(request, sizes, registry)
    write_sizes(request.plan_dir, records)
    return stats


def _plan(request: PlanRequest, sizes: Mapping[str, int], registry) -> dict:
    root, plan_dir, started = Path(request.root), Path(request.plan_dir), time.perf_counter()
    tables = [request.table, *request.specs] if request.table else list(request.specs)
    key = record.plan_key(tables, root, sizes, registry, request.workflow_digest)
    stats = record.unchanged(plan_dir, key, root, request.buildable) if root.is_dir() else None
    if stats is not None:
        # Snakemake deleted the checkpoint's outputs before this job: the same again.
        previous.roll_back([request.manifest, request.skipped])
        log.info(
            "plan unchanged: same table, sizes, code and workflow, and no listed directory "
            "changed (%s); nothing rewritten",
            plan_dir / record.RECORD,
        )
        stats = {**stats, "plan_files_written": 0, "plan_files_removed": 0, "unchanged": True}
        seconds = {"check": time.perf_counter() - started}
    else:
        tasks = load_tasks(
            request.table, request.specs, registry=registry, check_csv=request.check_csv
        )
        read = time.perf_counter()
        if not root.is_dir():
            raise FileNotFoundError(f"SAS root {root} is not a directory (set sas_base_dir)")
        result = group_batches(tasks, root, sizes)
        if request.buildable is not None:
            check_model_files(result, registry, request.buildable)
        batched = time.perf_counter()
        stats = write_plan(
            result, plan_dir, request.manifest, request.skipped, registry, record_key=key
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
            "skipped %d task(s) whose spectrum file is missing: see %s",
            stats["skipped"],
            request.skipped,
        )
    return stats
