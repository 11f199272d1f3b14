"""Flags per analysis (how many rows carry each flag bit): a TSV and a bar chart.

CLI: python scripts/flag_summary.py [results/summary.fits] [--table results/flags.tsv]
         [--plot results/plots/flags.png]
"""

import argparse

from starbatch.engine.entry import run_entry
from starbatch.report.flags import write_flag_summary


def from_snakemake(smk) -> None:
    write_flag_summary(smk.input[0], smk.output.table, smk.output.plot)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary", nargs="?", default="results/summary.fits")
    ap.add_argument("--table", default="results/flags.tsv")
    ap.add_argument("--plot", default="results/plots/flags.png")
    a = ap.parse_args()
    write_flag_summary(a.summary, a.table, a.plot)


run_entry(from_snakemake, cli, globals())
