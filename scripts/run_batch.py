"""Run one batch: load the analysis once, analyse every member, write its table.

CLI: python scripts/run_batch.py results/plan/batches/BATCH.json --root $SAS_BASE_DIR \
         --output results/batches/BATCH.fits
"""

import argparse

from starbatch.analyses.registry import load_registry
from starbatch.engine.entry import run_entry
from starbatch.engine.runner import read_plan, read_settings, run_batch


def from_snakemake(smk) -> None:
    c = smk.config  # run settings: not params, which would rerun batches when they change
    run_batch(
        read_plan(smk.input.plan),
        smk.params.root,
        smk.output[0],
        load_registry(c.get("analysis_modules", [])),
        max_failed_fraction=c["max_failed_fraction"],
        progress_seconds=c.get("progress_seconds", 10),
        settings=read_settings(smk.input.plan),
        checkpoint_every=c.get("checkpoint_every", 100),
        checkpoint_seconds=c.get("checkpoint_seconds", 300),
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan")
    ap.add_argument("--root", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--max-failed-fraction", type=float, default=0.5)
    ap.add_argument("--progress-seconds", type=float, default=30.0)
    ap.add_argument("--analysis-module", action="append", default=[], help="a user's analyses")
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--checkpoint-seconds", type=float, default=300.0)
    a = ap.parse_args()
    run_batch(
        read_plan(a.plan),
        a.root,
        a.output,
        load_registry(a.analysis_module),
        max_failed_fraction=a.max_failed_fraction,
        progress_seconds=a.progress_seconds,
        settings=read_settings(a.plan),
        checkpoint_every=a.checkpoint_every,
        checkpoint_seconds=a.checkpoint_seconds,
    )


run_entry(from_snakemake, cli, globals())
