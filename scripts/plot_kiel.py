"""Kiel diagram (Teff vs logg coloured by [Fe/H]) of gridfit results.

CLI: python scripts/plot_kiel.py results/summary.fits results/plots/kiel.png
"""

import argparse

from starbatch.engine.entry import run_entry
from starbatch.report.plots import kiel_diagram


def from_snakemake(smk) -> None:
    kiel_diagram(smk.input[0], smk.output[0])


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("output")
    a = ap.parse_args()
    kiel_diagram(a.summary, a.output)


run_entry(from_snakemake, cli, globals())
