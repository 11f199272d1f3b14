"""Cost of gridfit, apogeenet and cannon inside a batch (Snakemake `script:` or CLI):
set-up time, and time per spectrum handed over singly vs in vectorised chunks.

CLI (from the repository root; gridfit needs resources/grids/demo.npz):
    python $SCRIPTS/measure_cost.py results/evaluation/cost.tsv [--n 64] [--seed 778]
"""

import argparse
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.evaluation import cost, format_rows, write_tsv
from starbatch.resources import EMULATOR

log = logging.getLogger("starbatch")
COLUMNS = (
    "analysis",
    "n_spectra",
    "chunk_size",
    "setup_s",
    "single_s_per_spectrum",
    "vectorised_s_per_spectrum",
    "speedup",
)


def main(emulator, table, n, seed, names=LABEL_ANALYSES, params=None) -> str:
    rows = cost(Emulator.load(emulator), n, seed, names, params)
    write_tsv(rows, table)
    text = format_rows(rows, COLUMNS)
    log.info("cost per spectrum inside a batch (%d synthetic spectra, S/N 100):\n%s", n, text)
    print(text)
    return text


def from_snakemake(smk) -> None:
    main(
        smk.input.emulator,
        smk.output.table,
        smk.params.n,
        smk.params.seed,
        smk.params.analyses,
        dict(smk.params.analysis_params),
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", help="output TSV")
    ap.add_argument("--n", type=int, default=64, help="spectra per analysis")
    ap.add_argument("--seed", type=int, default=778)
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    ap.add_argument("--emulator", default=str(EMULATOR))
    a = ap.parse_args()
    main(a.emulator, a.table, a.n, a.seed, a.analyses)


run_entry(from_snakemake, cli, globals())
