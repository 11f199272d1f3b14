"""Run one batch: load the analysis once, analyse every member, write its table.

CLI: python $SCRIPTS/run_batch.py results/plan/batches/BATCH.json --root $SAS_BASE_DIR \
         --output results/batches/BATCH.fits
"""

import argparse
from functools import partial
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.engine.plan.read import read_insignificant, read_plan
from starbatch.engine.runner import RunSettings, run_batch


def analyses(modules):
    """The registry, imported only by the worker (the batch's supervisor never does)."""
    from starbatch.analyses.registry import load_registry

    return load_registry(modules)


def from_snakemake(smk) -> None:
    # Run settings come from the config, not params, which would rerun batches when
    # they change; the job's memory is its limit.
    plan = read_plan(smk.input.plan)
    plan_dir = Path(smk.input.plan).parent.parent
    run = RunSettings.from_config(
        smk.config, plan["analysis"], plan_dir, mem_mb=smk.resources.get("mem_mb")
    )
    registry = partial(analyses, smk.config.get("analysis_modules", []))
    run_batch(
        plan, smk.params.root, smk.output[0], registry, read_insignificant(smk.input.plan), run
    )


def cli() -> None:
    defaults = RunSettings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan")
    ap.add_argument("--root", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--max-failed-fraction", type=float, default=defaults.max_failed_fraction)
    ap.add_argument("--progress-seconds", type=float, default=defaults.progress_seconds)
    ap.add_argument("--analysis-module", action="append", default=[], help="a user's analyses")
    ap.add_argument("--journal-every", type=int, default=defaults.journal_every)
    ap.add_argument("--journal-seconds", type=float, default=defaults.journal_seconds)
    ap.add_argument("--time-limit-per-obs", type=float, help="seconds (default: derived)")
    ap.add_argument("--mem-mb", type=float, help="the analysis's memory limit")
    ap.add_argument("--no-supervise", action="store_true", help="analyse in this process")
    a = ap.parse_args()
    plan = read_plan(a.plan)
    config = {
        "max_failed_fraction": a.max_failed_fraction,
        "progress_seconds": a.progress_seconds,
        "journal_every": a.journal_every,
        "journal_seconds": a.journal_seconds,
        "supervise": not a.no_supervise,
        "time_limit_per_obs_s": a.time_limit_per_obs,
    }
    run = RunSettings.from_config(config, plan["analysis"], Path(a.plan).parent.parent, a.mem_mb)
    registry = partial(analyses, a.analysis_module)
    run_batch(plan, a.root, a.output, registry, read_insignificant(a.plan), run)


run_entry(from_snakemake, cli, globals())
