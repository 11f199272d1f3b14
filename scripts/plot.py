"""The summary's plots in one job (each job start costs a Python with matplotlib):
the Kiel diagram of the gridfit results and the per-batch timing.

CLI: python scripts/plot.py results/summary.fits results/plots/kiel.png \
         results/plots/timing.png
"""

import argparse

from starbatch.engine.entry import run_entry
from starbatch.report.plots import batch_timing, kiel_diagram


def plot(summary, kiel, timing) -> None:
    kiel_diagram(summary, kiel)
    batch_timing(summary, timing)


def from_snakemake(smk) -> None:
    plot(smk.input[0], smk.output.kiel, smk.output.timing)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("kiel")
    ap.add_argument("timing")
    a = ap.parse_args()
    plot(a.summary, a.kiel, a.timing)


run_entry(from_snakemake, cli, globals())
