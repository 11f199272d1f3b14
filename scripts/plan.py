"""Plan batches from the observation table: the checkpoint's entry point.

CLI: python scripts/plan.py --table config/observations.csv --root $SAS_BASE_DIR \
         --plan-dir results/plan --max-batch-size 100
"""

import argparse
import logging
from pathlib import Path

from starbatch.entry import run_entry
from starbatch.planning import check_model_files, make_plan, write_plan
from starbatch.tasks import load_tasks

log = logging.getLogger("starbatch")


def check_schema(raw, schema) -> None:
    """snakemake.utils.validate on the raw table's distinct rows (our own validation,
    which names line and column, has already checked every cell)."""
    from snakemake.utils import validate

    raw = raw.drop(columns=["source", "line"])
    # Per-observation identifiers would make every row distinct (our own validation
    # has checked each of them); the schema checks the rest.
    ids = [c for c in ("obj", "plate", "mjd", "fiber") if c in raw]
    distinct = raw.drop(columns=ids).drop_duplicates()
    validate(distinct.reset_index(drop=True), schema)


def plan(
    table, specs, root, plan_dir, manifest, skipped, max_batch_size, schema=None, buildable=None
) -> dict:
    """``buildable``: model files the workflow can make; if given, every other model
    file a batch needs must already exist."""
    from starbatch.analyses import ANALYSES

    check = (lambda raw: check_schema(raw, schema)) if schema else None
    tasks = load_tasks(table, specs, ANALYSES, check_csv=check)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SAS root {root} is not a directory (set sas_base_dir)")
    result = make_plan(tasks, root, max_batch_size)
    if buildable is not None:
        check_model_files(result, ANALYSES, buildable)
    stats = write_plan(result, Path(plan_dir), Path(manifest), Path(skipped), ANALYSES)
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


def from_snakemake(smk) -> None:
    plan(
        smk.input.table,
        list(smk.input.specs),
        smk.params.root,
        smk.params.plan_dir,
        smk.output.manifest,
        smk.output.skipped,
        dict(smk.params.max_batch_size),
        smk.params.schema,
        list(smk.params.buildable),
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--spec", action="append", default=[], help="batch-mode YAML task spec")
    ap.add_argument("--root", required=True, help="SAS root (SAS_BASE_DIR)")
    ap.add_argument("--plan-dir", default="results/plan")
    ap.add_argument("--max-batch-size", type=int, default=100)
    a = ap.parse_args()
    plan_dir = Path(a.plan_dir)
    plan(
        a.table,
        a.spec,
        a.root,
        plan_dir,
        plan_dir / "manifest.tsv",
        plan_dir / "skipped.csv",
        a.max_batch_size,
    )


run_entry(from_snakemake, cli, globals())
