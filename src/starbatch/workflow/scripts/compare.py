"""The star-by-star comparison of the label analyses (Parquet, FITS) and its
interactive HTML page.

CLI: python $SCRIPTS/compare.py --parquet results/compare/labels.parquet \
         --fits results/compare/labels.fits --html results/plots/compare.html \
         results/gridfit/summary.parquet results/apogeenet/summary.parquet ...
"""

import argparse

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.report.compare import write_comparison
from starbatch.report.interactive import comparison_page


def compare(summaries, parquet_out, fits_out, html_out) -> None:
    write_comparison(summaries, parquet_out, fits_out)
    comparison_page(parquet_out, html_out)


def from_snakemake(smk) -> None:
    out = smk.output
    compare(smk.input.summaries, out.parquet, out.fits, out.html)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summaries", nargs="+", help="per-analysis summary.parquet files")
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--fits", required=True)
    ap.add_argument("--html", required=True)
    a = ap.parse_args()
    compare(a.summaries, a.parquet, a.fits, a.html)


run_entry(from_snakemake, cli, globals())
