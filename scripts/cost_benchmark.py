"""Cost of gridfit, apogeenet and cannon inside a batch (Snakemake `script:` or CLI):
set-up time, and time per spectrum handed over singly vs in vectorised chunks.

CLI (from the repository root; gridfit needs resources/grids/demo.npz):
    python scripts/cost_benchmark.py results/benchmarks/cost.tsv [--n 64] [--seed 778]
"""

import argparse
import logging
from pathlib import Path

from starbatch.benchmark import ANALYSIS_NAMES, cost, format_rows, write_tsv
from starbatch.emulator import Emulator
from starbatch.entry import run_entry

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


def main(emulator, table, n, seed, names=ANALYSIS_NAMES, params=None) -> str:
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
    ap.add_argument("--analyses", nargs="+", default=list(ANALYSIS_NAMES))
    repo = Path(__file__).resolve().parents[1]
    ap.add_argument("--emulator", default=str(repo / "resources/emulator/apstar-cannon.npz"))
    a = ap.parse_args()
    main(a.emulator, a.table, a.n, a.seed, a.analyses)


run_entry(from_snakemake, cli, globals())
