"""Build a gridfit model grid from the emulator (Snakemake `script:` or CLI).

CLI: python $SCRIPTS/build_grid.py EMULATOR.npz OUT.npz --teff 3500 7000 250 \
         --logg 0 5 0.5 --feh -2.5 0.5 0.25
"""

import argparse
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.methods.gridfit.grid import GridSpec, save_grid
from starbatch.offline.grids import build_grid

log = logging.getLogger("starbatch")


def build(emulator_path, output, spec: dict) -> None:
    spec = GridSpec(**{k: tuple(spec[k]) for k in ("teff", "logg", "feh")})
    emulator = Emulator.load(emulator_path)
    log.info("building grid %s: %s nodes, %.0f MB", output, spec.shape, spec.nbytes(8575) / 1e6)
    save_grid(output, build_grid(emulator, spec))
    log.info("wrote %s", output)


def from_snakemake(smk) -> None:
    build(smk.input[0], smk.output[0], dict(smk.params.spec))


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("emulator")
    ap.add_argument("output")
    for axis in ("teff", "logg", "feh"):
        ap.add_argument(f"--{axis}", nargs=3, type=float, required=True)
    a = ap.parse_args()
    build(a.emulator, a.output, {"teff": a.teff, "logg": a.logg, "feh": a.feh})


run_entry(from_snakemake, cli, globals())
