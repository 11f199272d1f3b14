"""gridfit, apogeenet and cannon on the four real DR17 files shipped with starbatch
(starbatch.resources.REAL_SAS), beside the labels in the files' own headers (CLI):
prints the Markdown table of docs/analyses.md, then the goodness of fit of spectra
outside the models (offline.out_of_model).

CLI (in a project; gridfit needs resources/grids/demo.npz, built by
`starbatch run resources/grids/demo.npz`; $SCRIPTS: the workflow's scripts folder):
    python $SCRIPTS/real_spectra_table.py [--sas SAS_ROOT]
"""

import argparse
import logging
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.evaluation import (
    format_real,
    format_rows,
    out_of_model_results,
    real_results,
)
from starbatch.resources import EMULATOR, REAL_SAS

log = logging.getLogger("starbatch")


def main(sas) -> str:
    rows = real_results(sas)
    failed = [r for r in rows if "error" in r]
    ood = out_of_model_results(Emulator.load(EMULATOR))
    text = format_real(rows) + "\n\nOut-of-model spectra (S/N 200):\n\n"
    text += format_rows(ood, ("analysis", "spectrum", "fit_chi2", "line_snr", "flags"))
    print(text)
    if failed:
        raise ValueError(f"{len(failed)} analyses failed on real files: {failed[0]['error']}")
    return text


def from_snakemake(smk) -> None:
    Path(smk.output[0]).write_text(main(smk.params.sas) + "\n")


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sas", default=str(REAL_SAS))
    main(ap.parse_args().sas)


run_entry(from_snakemake, cli, globals())
