"""Plan batches from the observation table: the checkpoint's entry point.

CLI: python $SCRIPTS/plan.py --table config/observations.csv --root $SAS_BASE_DIR \
         --plan-dir results/plan --max-batch-size 100
"""

import argparse
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import load_registry
from starbatch.engine.entry import run_entry
from starbatch.engine.plan.make import PlanRequest, make_plan
from starbatch.engine.plan.sizing import AUTO, DEFAULT_BATCH_MINUTES, DEFAULT_SETUP_SHARE
from starbatch.engine.provenance import file_sha256
from starbatch.resources import project_models_state


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
    # Sizing settings come from the config, not params: changing them (or the one-run
    # resize flag) must not rerun the plan; a resize is asked for with --forcerun plan.
    schema, c = smk.params.schema, smk.config
    request = PlanRequest(
        table=smk.input.table,
        specs=list(smk.input.specs),
        root=Path(smk.params.root),
        plan_dir=Path(smk.params.plan_dir),
        batch_sizes=dict(smk.params.max_batch_size),
        analyses_config=c.get("analyses", {}),
        resize=bool(c.get("resize_batches", False)),
        setup_share=c.get("target_setup_share", DEFAULT_SETUP_SHARE),
        batch_minutes=c.get("target_batch_minutes", DEFAULT_BATCH_MINUTES),
        parallel=int(c.get("parallel_batches", 1)),
        bench_dir=Path("benchmarks/batches"),
        check_csv=lambda raw: check_schema(raw, schema),
        buildable=list(smk.params.buildable),
        workflow_digest=file_sha256(schema) + project_models_state(),
    )
    make_plan(request, load_registry(smk.params.analysis_modules))


def batch_size(text: str) -> int | str:
    return AUTO if text == AUTO else int(text)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--spec", action="append", default=[], help="batch-mode YAML task spec")
    ap.add_argument("--root", required=True, help="SAS root (SAS_BASE_DIR)")
    ap.add_argument("--plan-dir", default="results/plan")
    ap.add_argument(
        "--max-batch-size", type=batch_size, default=100, help="a number, or auto (sizing.py)"
    )
    ap.add_argument("--resize", action="store_true", help="choose auto sizes anew")
    ap.add_argument(
        "--parallel-batches", type=int, default=1, help="batch jobs at once (balances auto sizes)"
    )
    ap.add_argument("--analysis-module", action="append", default=[], help="a user's analyses")
    a = ap.parse_args()
    plan_dir = Path(a.plan_dir)
    registry = load_registry(a.analysis_module)
    request = PlanRequest(
        table=a.table,
        specs=a.spec,
        root=Path(a.root),
        plan_dir=plan_dir,
        batch_sizes=dict.fromkeys(registry, a.max_batch_size),
        resize=a.resize,
        parallel=a.parallel_batches,
        batch_dir=plan_dir.parent / "batches",
        workflow_digest=project_models_state(),
    )
    make_plan(request, registry)


run_entry(from_snakemake, cli, globals())
