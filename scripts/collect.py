"""Merge result tables (one stage of the staged aggregation).

CLI: python scripts/collect.py OUT.fits [--csv OUT.csv] [--failed FAILED.csv] IN.fits ...
"""

import argparse

from starbatch.atomic import write_atomic
from starbatch.entry import run_entry
from starbatch.results import failed_rows, merge, write_table


def collect(inputs, fits_out, csv_out=None, failed_csv=None) -> None:
    table = merge(list(inputs))
    write_table(table, fits_out, csv_out)
    if failed_csv:
        write_atomic(failed_csv, lambda tmp: failed_rows(table).write(tmp, format="ascii.csv"))


def from_snakemake(smk) -> None:
    collect(smk.input, smk.output.fits, smk.output.get("csv"), smk.output.get("failed"))


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--failed")
    a = ap.parse_args()
    collect(a.inputs, a.output, a.csv, a.failed)


run_entry(from_snakemake, cli, globals())
