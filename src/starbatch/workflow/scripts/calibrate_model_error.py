"""Model-error terms of the label analyses, calibrated on held-out clean synthetic spectra
(starbatch.offline.calibration; CLI): prints, per analysis, the term (Teff K, logg, [Fe/H])
that makes the normalised residuals' robust std 1 pooled over S/N 20, 50, 100, 200.
apogeenet and cannon store theirs in the model file at training time (this recomputes
them on other seeds, as a check); gridfit's is methods/gridfit/fit.py MODEL_ERROR.
With --excess: the scale of the fits' error widening instead (goodness.widening), on
held-out perturbed spectra (seed 5000): gridfit's is methods/gridfit/fit.py
EXCESS_SCALE, cannon stores its own in the model file at training time (the same seeds:
this prints it again). With --excess --store, cannon's is written into the model file it
loads (and its scores JSON), as training does: for a file made before training did.

CLI (gridfit needs resources/grids/demo.npz):
    python $SCRIPTS/calibrate_model_error.py [--n 100] [--seed 3000] [--analyses gridfit]
    python $SCRIPTS/calibrate_model_error.py --excess [--n 100] [--seed 5000]
"""

import argparse

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.calibration import (
    EXCESS_SEED,
    WIDENING,
    calibrate_analysis,
    calibrate_excess,
    store_excess_scale,
)
from starbatch.resources import EMULATOR


def main(names, n, seed, emulator=EMULATOR) -> dict:
    em = Emulator.load(emulator)
    out = {}
    for name in names:
        out[name] = calibrate_analysis(name, em, n, seed)
        teff, logg, feh = out[name]
        print(f"{name}: model error Teff {teff:.1f} K, logg {logg:.4f}, [Fe/H] {feh:.4f}")
    return out


def excess(names, n, seed, emulator=EMULATOR, store=False) -> dict:
    em = Emulator.load(emulator)
    out = {}
    for name in names:
        into_file = store and name == "cannon"
        out[name] = store_excess_scale(em, n) if into_file else calibrate_excess(name, em, n, seed)
        where = " (stored in its model file)" if into_file else ""
        print(f"{name}: excess scale ({', '.join(f'{k:.2f}' for k in out[name])}){where}")
    return out


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="stars per S/N")
    ap.add_argument("--seed", type=int, help="default 3000 (5000 with --excess)")
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    ap.add_argument("--excess", action="store_true", help="the excess scales instead")
    ap.add_argument(
        "--store", action="store_true", help="with --excess: write cannon's into its model file"
    )
    a = ap.parse_args()
    if a.excess:
        if a.store and a.seed not in (None, EXCESS_SEED):
            ap.error(f"--store calibrates on the seeds training uses ({EXCESS_SEED})")
        names = [x for x in a.analyses if x in WIDENING]
        seed = EXCESS_SEED if a.seed is None else a.seed
        excess(names or list(WIDENING), a.n, seed, store=a.store)
    else:
        main(a.analyses, a.n, 3000 if a.seed is None else a.seed)


run_entry(None, cli, globals())
