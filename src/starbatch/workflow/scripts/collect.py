"""Merge result tables (one stage of the staged aggregation).

CLI: python $SCRIPTS/collect.py OUT.fits [--csv OUT.csv] [--parquet OUT.parquet] \
         [--failed FAILED.csv [--skipped results/plan/skipped.csv]] IN.fits ...
"""

import argparse

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine import previous
from starbatch.engine.atomic import write_atomic
from starbatch.engine.entry import run_entry
from starbatch.engine.results import failed_rows, merge, write_table


def collect(
    inputs, fits_out, csv_out=None, failed_csv=None, skipped_csv=None, parquet_out=None
) -> None:
    outputs = [p for p in (fits_out, csv_out, parquet_out, failed_csv) if p]
    try:
        table = merge(list(inputs))
        write_table(table, fits_out, csv_out, parquet_out)
        if failed_csv:
            failed = failed_rows(table, skipped_csv)
            write_atomic(failed_csv, lambda tmp: failed.to_csv(tmp, index=False))
    except BaseException:
        if failed_csv:  # the global summary: a failed run leaves the previous one
            previous.roll_back(outputs)
        raise
    if failed_csv:
        previous.keep(outputs)


def from_snakemake(smk) -> None:
    # Each stage names what it writes: a part (fits), a summary (+csv, parquet), the
    # global one (+failed, from the skipped rows too).
    out = smk.output
    skipped = smk.input.get("skipped")
    collect(
        smk.input.tables, out.fits, out.get("csv"), out.get("failed"), skipped, out.get("parquet")
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--parquet")
    ap.add_argument("--failed")
    ap.add_argument("--skipped", help="planning's skipped rows, added to --failed")
    a = ap.parse_args()
    collect(a.inputs, a.output, a.csv, a.failed, a.skipped, a.parquet)


run_entry(from_snakemake, cli, globals())
