"""Plan batches from the observation table: the checkpoint's entry point.

CLI: python scripts/plan.py --table config/observations.csv --root $SAS_BASE_DIR \
         --plan-dir results/plan --max-batch-size 100
"""

import argparse
from pathlib import Path

from starbatch.analyses.registry import load_registry
from starbatch.engine.entry import run_entry
from starbatch.engine.planning import plan


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


def from_snakemake(smk) -> None:
    schema = smk.params.schema
    plan(
        smk.input.table,
        list(smk.input.specs),
        smk.params.root,
        smk.params.plan_dir,
        smk.output.manifest,
        smk.output.skipped,
        dict(smk.params.max_batch_size),
        load_registry(smk.params.analysis_modules),
        check_csv=lambda raw: check_schema(raw, schema),
        buildable=list(smk.params.buildable),
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--spec", action="append", default=[], help="batch-mode YAML task spec")
    ap.add_argument("--root", required=True, help="SAS root (SAS_BASE_DIR)")
    ap.add_argument("--plan-dir", default="results/plan")
    ap.add_argument("--max-batch-size", type=int, default=100)
    ap.add_argument("--analysis-module", action="append", default=[], help="a user's analyses")
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
        load_registry(a.analysis_module),
    )


run_entry(from_snakemake, cli, globals())
