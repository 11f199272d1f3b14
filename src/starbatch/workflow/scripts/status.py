"""What the results say, and rerun exactly what needs it (Snakemake target `status`,
or CLI): per analysis, tasks done, failed (by flag), not run (file missing at
planning), and stale (input file changed since the row was made, or the model the next
run would load is not the one it was made with).

CLI (in the working directory):
    python scripts/status.py                    # the table
    python scripts/status.py --rerun failed     # rerun the batches with failed rows
    python scripts/status.py --rerun stale -- --cores 8   # ... or with stale rows
Arguments after -- go to snakemake.
"""

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)
import yaml

from starbatch.analyses.registry import load_registry
from starbatch.engine.entry import run_entry
from starbatch.engine.status import format_status, rerun_targets, status

log = logging.getLogger("starbatch")
SUMMARY, SKIPPED = "results/summary.fits", "results/plan/skipped.csv"
# The workflow this script belongs to.
SNAKEFILE = Path(__file__).resolve().parents[1] / "workflow" / "Snakefile"


def from_snakemake(smk) -> None:
    registry = load_registry(smk.config.get("analysis_modules", []))
    result = status(smk.input.summary, smk.input.skipped, smk.params.root, registry)
    log.info("status of %s:\n%s", smk.input.summary, format_status(result))


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rerun", choices=("failed", "stale"))
    ap.add_argument("--config", default="config/config.yaml", help="for sas_base_dir")
    ap.add_argument("--snakefile", default=str(SNAKEFILE), help="the workflow's Snakefile")
    ap.add_argument("snakemake_args", nargs="*", help="after --: passed to snakemake")
    a = ap.parse_args()
    with open(a.config) as fh:
        config = yaml.safe_load(fh) or {}
    root = config.get("sas_base_dir") or os.environ.get("SAS_BASE_DIR", "")
    registry = load_registry(config.get("analysis_modules", []))
    result = status(SUMMARY, SKIPPED, root, registry)
    print(format_status(result))
    if not a.rerun:
        return
    targets = rerun_targets(result, a.rerun)
    if not targets:
        print(f"nothing to rerun: no {a.rerun} rows")
        return
    print(f"rerunning {len(targets)} target(s): {' '.join(targets[:10])}")
    # Batch IDs are validated identifiers, and no shell is involved.
    cmd = [sys.executable, "-m", "snakemake", "-s", a.snakefile, *a.snakemake_args]
    sys.exit(subprocess.call([*cmd, "--forcerun", *targets]))


run_entry(from_snakemake, cli, globals())
