"""What the results say, and rerun exactly what needs it (Snakemake target `status`,
or CLI): per analysis, tasks done, failed (by flag), not run (file missing at
planning), and stale (input file or model file changed since the row was made).

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

import yaml

from starbatch.engine.entry import run_entry
from starbatch.engine.status import format_status, rerun_targets, status

log = logging.getLogger("starbatch")
SUMMARY, SKIPPED = "results/summary.fits", "results/plan/skipped.csv"


def report(summary, skipped, root) -> dict:
    result = status(summary, skipped, root)
    text = format_status(result)
    log.info("status of %s:\n%s", summary, text)
    print(text)
    return result


def from_snakemake(smk) -> None:
    report(smk.input.summary, smk.input.skipped, smk.params.root)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rerun", choices=("failed", "stale"))
    ap.add_argument("--config", default="config/config.yaml", help="for sas_base_dir")
    ap.add_argument("--snakefile", help="the workflow's Snakefile, when it is not here")
    ap.add_argument("snakemake_args", nargs="*", help="after --: passed to snakemake")
    a = ap.parse_args()
    with open(a.config) as fh:
        root = yaml.safe_load(fh).get("sas_base_dir") or os.environ.get("SAS_BASE_DIR", "")
    result = report(SUMMARY, SKIPPED, root)
    if not a.rerun:
        return
    targets = rerun_targets(result, a.rerun)
    if not targets:
        print(f"nothing to rerun: no {a.rerun} rows")
        return
    print(f"rerunning {len(targets)} target(s): {' '.join(targets[:10])}")
    # Batch IDs are validated identifiers, and no shell is involved.
    cmd = [sys.executable, "-m", "snakemake", *(["-s", a.snakefile] if a.snakefile else [])]
    cmd += [*a.snakemake_args, "--forcerun", *targets]
    sys.exit(subprocess.call(cmd))


run_entry(from_snakemake, cli, globals())
