"""Re-run the batches that hold failed observations (after you fixed the cause).

Usage: python scripts/rerun_failed.py [extra snakemake arguments, e.g. --cores 4]

Reads results/failed.csv and forces Snakemake to rerun exactly those batches; if
rows were skipped at planning (missing files), it also re-plans, so files that
have appeared since are picked up (only batches whose members change rerun).
"""

import subprocess
import sys

from starbatch.engine.rerun import rerun_targets


def main(argv: list[str]) -> int:
    targets = rerun_targets("results/failed.csv", "results/plan/skipped.csv")
    if not targets:
        print("nothing to rerun: results/failed.csv and results/plan/skipped.csv are empty")
        return 0
    print(f"rerunning {len(targets)} target(s): {' '.join(targets[:10])}")
    # Batch IDs are validated identifiers, and no shell is involved.
    cmd = [sys.executable, "-m", "snakemake", *argv, "--forcerun", *targets]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
