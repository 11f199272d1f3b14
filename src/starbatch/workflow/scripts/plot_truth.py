"""Truth vs estimate for the demo's synthetic spectra (every labelling analysis).

CLI: python $SCRIPTS/plot_truth.py resources/demo/truth.csv results/summary.fits OUT.png
"""

import argparse

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.report.plots import truth_vs_fit


def from_snakemake(smk) -> None:
    truth_vs_fit(smk.input.truth, smk.input.summary, smk.output[0])


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("truth")
    ap.add_argument("summary")
    ap.add_argument("output")
    a = ap.parse_args()
    truth_vs_fit(a.truth, a.summary, a.output)


run_entry(from_snakemake, cli, globals())
