"""The robustness benchmark (Snakemake `script:` or CLI): gridfit, apogeenet and cannon on
held-out synthetic spectra made with perturbations training never used (other continuum
shapes, line-spread widths outside the training range, RV offsets, correlated
heavy-tailed noise; starbatch.offline.augment); bias, scatter, median error and pull per
label per analysis per S/N, then the targets (|bias| at S/N 100; apogeenet's scatter
within 1.5x cannon's at S/N 50) with the measured values.

CLI (gridfit needs resources/grids/demo.npz):
    python $SCRIPTS/evaluate_robustness.py results/evaluation/robustness.tsv \
        [--n 100] [--snr 20 50 100 200] [--seed 4242]
"""

import argparse
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.evaluation import ROW_COLUMNS, add_set_arguments, format_rows, write_tsv
from starbatch.offline.robustness import check_targets, robustness

log = logging.getLogger("starbatch")


def main(emulator, table, n, snrs, seed, names=LABEL_ANALYSES) -> str:
    rows, _ = robustness(Emulator.load(emulator), n, snrs, seed, names)
    write_tsv(rows, table)
    targets = check_targets(rows)
    text = format_rows(rows, ROW_COLUMNS) + "\n\n" + format_rows(targets, tuple(targets[0]))
    log.info("robustness on %d perturbed held-out stars per S/N (seed %d):\n%s", n, seed, text)
    print(text)
    return text


def from_snakemake(smk) -> None:
    main(smk.input.emulator, smk.output.table, smk.params.n, smk.params.snr, smk.params.seed)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", help="output TSV")
    add_set_arguments(ap, seed=4242)
    a = ap.parse_args()
    main(a.emulator, a.table, a.n, a.snr, a.seed, a.analyses)


run_entry(from_snakemake, cli, globals())
