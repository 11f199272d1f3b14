"""The summary's plots in one job (each job start costs a Python with matplotlib):
the Kiel diagram of the gridfit results, the per-batch timing, the flags per
analysis (a TSV and a bar chart), and what batching cost (a TSV, report/costs.py).

CLI: python $SCRIPTS/plot.py results/summary.fits results/plots/kiel.png \
         results/plots/timing.png [--flags-table results/flags.tsv] \
         [--flags results/plots/flags.png]
"""

import argparse

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.report.costs import cost_rows, write_cost_table
from starbatch.report.flag_counts import write_flag_summary
from starbatch.report.plots import batch_timing, kiel_diagram


def plot(summary, kiel, timing, flags_table=None, flags=None) -> None:
    kiel_diagram(summary, kiel)
    batch_timing(summary, timing)
    if flags_table and flags:
        write_flag_summary(summary, flags_table, flags)


def from_snakemake(smk) -> None:
    out, p = smk.output, smk.params
    plot(smk.input[0], out.kiel, out.timing, out.get("flags_table"), out.get("flags"))
    if out.get("costs"):
        rows = cost_rows(
            "results/batches", "benchmarks/batches", "results/plan", p.setup_share, p.batch_minutes
        )
        write_cost_table(out.costs, rows)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("kiel")
    ap.add_argument("timing")
    ap.add_argument("--flags-table", help="flags per analysis, TSV")
    ap.add_argument("--flags", help="flags per analysis, bar chart (PNG)")
    a = ap.parse_args()
    plot(a.summary, a.kiel, a.timing, a.flags_table, a.flags)


run_entry(from_snakemake, cli, globals())
