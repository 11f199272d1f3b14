"""Accuracy of gridfit, apogeenet and cannon on held-out synthetic spectra (Snakemake
`script:` or CLI): bias, scatter, median error and pull ((estimate - truth) / error: its
robust std is 1 when the uncertainties are right) per label per analysis per S/N, and
truth-vs-estimate plots.

CLI (gridfit needs resources/grids/demo.npz, built by
`snakemake resources/grids/demo.npz`):
    python $SCRIPTS/evaluate_accuracy.py results/evaluation/accuracy.tsv \
        results/evaluation/accuracy.png [--n 100] [--snr 20 50 100 200] [--seed 777]
"""

import argparse
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.evaluation import (
    ROW_COLUMNS,
    accuracy,
    accuracy_plot,
    add_set_arguments,
    format_rows,
    write_tsv,
)

log = logging.getLogger("starbatch")


def main(emulator, table, plot, n, snrs, seed, names=LABEL_ANALYSES, params=None) -> str:
    rows, raw = accuracy(Emulator.load(emulator), n, snrs, seed, names, params)
    write_tsv(rows, table)
    accuracy_plot(raw, plot)
    text = format_rows(rows, ROW_COLUMNS)
    log.info("accuracy on %d held-out synthetic stars per S/N (seed %d):\n%s", n, seed, text)
    print(text)
    return text


def from_snakemake(smk) -> None:
    main(
        smk.input.emulator,
        smk.output.table,
        smk.output.plot,
        smk.params.n,
        smk.params.snr,
        smk.params.seed,
        smk.params.analyses,
        dict(smk.params.analysis_params),
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", help="output TSV")
    ap.add_argument("plot", help="output PNG")
    add_set_arguments(ap, seed=777)
    a = ap.parse_args()
    main(a.emulator, a.table, a.plot, a.n, a.snr, a.seed, a.analyses)


run_entry(from_snakemake, cli, globals())
