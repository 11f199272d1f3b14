"""Model-error terms of the label analyses, calibrated on held-out clean synthetic spectra
(starbatch.offline.calibration; CLI): prints, per analysis, the term (Teff K, logg, [Fe/H])
that makes the normalised residuals' robust std 1 pooled over S/N 20, 50, 100, 200.
apogeenet and cannon store theirs in the model file at training time (this recomputes
them on other seeds, as a check); gridfit's is methods/gridfit/fit.py MODEL_ERROR.

CLI (gridfit needs resources/grids/demo.npz):
    python scripts/calibrate_model_error.py [--n 100] [--seed 3000] [--analyses gridfit]
"""

import argparse

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.offline.calibration import calibrate_analysis
from starbatch.resources import EMULATOR


def main(names, n, seed, emulator=EMULATOR) -> dict:
    em = Emulator.load(emulator)
    out = {}
    for name in names:
        out[name] = calibrate_analysis(name, em, n, seed)
        teff, logg, feh = out[name]
        print(f"{name}: model error Teff {teff:.1f} K, logg {logg:.4f}, [Fe/H] {feh:.4f}")
    return out


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="stars per S/N")
    ap.add_argument("--seed", type=int, default=3000)
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    a = ap.parse_args()
    main(a.analyses, a.n, a.seed)


run_entry(None, cli, globals())
