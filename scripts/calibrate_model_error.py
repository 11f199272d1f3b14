"""Model-error terms of the label analyses, calibrated on held-out clean synthetic spectra
(starbatch.offline.calibration; CLI): prints, per analysis, the term (Teff K, logg, [Fe/H])
that makes the normalised residuals' robust std 1 pooled over S/N 20, 50, 100, 200.
apogeenet and cannon store theirs in the model file at training time (this recomputes
them on other seeds, as a check); gridfit's is methods/gridfit/fit.py MODEL_ERROR.
With --excess: the EXCESS_SCALE of the fits (gridfit, cannon) instead, on held-out
perturbed spectra (seed 5000).

CLI (gridfit needs resources/grids/demo.npz):
    python scripts/calibrate_model_error.py [--n 100] [--seed 3000] [--analyses gridfit]
    python scripts/calibrate_model_error.py --excess [--n 100] [--seed 5000]
"""

import argparse

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.calibration import calibrate_analysis, calibrate_excess
from starbatch.resources import EMULATOR

EXCESS_ANALYSES = ["gridfit", "cannon"]  # the fits: their widening has a scale


def main(names, n, seed, emulator=EMULATOR) -> dict:
    em = Emulator.load(emulator)
    out = {}
    for name in names:
        out[name] = calibrate_analysis(name, em, n, seed)
        teff, logg, feh = out[name]
        print(f"{name}: model error Teff {teff:.1f} K, logg {logg:.4f}, [Fe/H] {feh:.4f}")
    return out


def excess(names, n, seed, emulator=EMULATOR) -> dict:
    em = Emulator.load(emulator)
    out = {}
    for name in names:
        out[name] = calibrate_excess(name, em, n, seed)
        print(f"{name}: EXCESS_SCALE = ({', '.join(f'{k:.2f}' for k in out[name])})")
    return out


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="stars per S/N")
    ap.add_argument("--seed", type=int, help="default 3000 (5000 with --excess)")
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    ap.add_argument("--excess", action="store_true", help="the fits' EXCESS_SCALE instead")
    a = ap.parse_args()
    if a.excess:
        names = [x for x in a.analyses if x in EXCESS_ANALYSES]
        excess(names or EXCESS_ANALYSES, a.n, 5000 if a.seed is None else a.seed)
    else:
        main(a.analyses, a.n, 3000 if a.seed is None else a.seed)


run_entry(None, cli, globals())
