"""Per-batch timing: set-up vs per-observation work.

CLI: python scripts/plot_timing.py results/summary.fits results/plots/timing.png
"""

import argparse

from starbatch.engine.entry import run_entry
from starbatch.report.plots import batch_timing


def from_snakemake(smk) -> None:
    batch_timing(smk.input[0], smk.output[0])


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("output")
    a = ap.parse_args()
    batch_timing(a.summary, a.output)


run_entry(from_snakemake, cli, globals())
