"""Derive the committed apStar-grid emulator from Doppler's cool-star Cannon model.

Usage: python $SCRIPTS/derive_emulator.py SRC.npz OUT.npz [--resolution 22500]
(see src/starbatch/resources/emulator/README.md for the exact command used).
"""

import argparse
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)
import numpy as np

from starbatch.engine.atomic import save_npz
from starbatch.offline.emulator_derive import (
    APOGEE_RESOLUTION,
    as_float32,
    derive,
    float32_flux_error,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="source Cannon model npz (air, 0.1 A steps)")
    parser.add_argument("out", type=Path, help="output emulator npz (apStar vacuum grid)")
    parser.add_argument("--resolution", type=float, default=APOGEE_RESOLUTION)
    args = parser.parse_args(argv)

    with np.load(args.src, allow_pickle=False) as d:
        src = {k: d[k] for k in d.files}
    derived = derive(src, resolution=args.resolution)
    stored = as_float32(derived)
    error = float32_flux_error(stored, derived["theta"])
    save_npz(args.out, stored)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.2f} MB, {stored['theta'].shape} theta)")
    print(f"max |flux float32 - float64| over the label grid: {error:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
