"""Label recovery of gridfit on synthetic spectra: bias and scatter per label per S/N.

Draws N labels uniformly in the emulator's trained region (grid.in_trained_region),
makes synthetic apStar spectra (synthetic.make_synthetic_star: emulator x continuum +
noise, bad pixels, chip gaps) at each S/N, fits them against a grid built from the same
emulator, and prints median(fit - true), robust std (1.4826 MAD) of fit - true, the
median reported error and the robust std of (fit - true) / error (~1 if errors are right).

Usage: python scripts/gridfit_accuracy.py [--n 200] [--snr 20 50 100] [--grid GRID.npz]
       [--emulator resources/emulator/apstar-cannon.npz] [--seed 1] [--cont-degree 4]
Without --grid the demo grid (grid.DEMO_GRID) is built in memory (< 1 s).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from starbatch import gridfit  # noqa: E402
from starbatch.emulator import Emulator  # noqa: E402
from starbatch.grid import AXES, DEMO_GRID, ModelGrid, build_grid, in_trained_region  # noqa: E402
from starbatch.readers import bad_pixels  # noqa: E402
from starbatch.spectrum import Spectrum  # noqa: E402
from starbatch.synthetic import make_synthetic_star  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EMULATOR = ROOT / "resources" / "emulator" / "apstar-cannon.npz"


def draw_trained_labels(emulator: Emulator, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) labels uniform over the box, redrawn where the emulator is untrained."""
    out = np.empty((0, 3))
    while len(out) < n:
        draw = rng.uniform(emulator.label_min, emulator.label_max, size=(2 * n, 3))
        out = np.vstack(
            [out, draw[in_trained_region(draw, emulator.label_min, emulator.label_max)]]
        )
    return out[:n]


def synthetic_spectrum(emulator: Emulator, labels, snr: float, rng) -> Spectrum:
    flux, error, bitmask = make_synthetic_star(emulator, labels, snr, rng)
    bad = bad_pixels(flux, error, bitmask)
    return Spectrum(emulator.wavelength, flux, np.where(bad, np.inf, error), bad)


def robust_std(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def accuracy(
    emulator: Emulator,
    grid: ModelGrid,
    n: int,
    snrs,
    seed: int = 1,
    cont_degree: int = gridfit.CONT_DEGREE,
) -> list[dict]:
    """One row per (snr, label): bias, scatter, median error, pull scatter, n_edge, seconds."""
    rng = np.random.default_rng(seed)
    truth = draw_trained_labels(emulator, n, rng)
    rows = []
    for snr in snrs:
        spectra = [synthetic_spectrum(emulator, t, snr, rng) for t in truth]
        start = time.perf_counter()
        fits = gridfit.fit_many(grid, spectra, cont_degree=cont_degree)
        seconds = time.perf_counter() - start
        edge = np.array([f["at_edge"] for f in fits])
        for i, name in enumerate(AXES):
            fit = np.array([f[name] for f in fits])
            err = np.array([f[name + "_err"] for f in fits])
            delta = fit - truth[:, i]
            rows.append(
                dict(
                    snr=snr,
                    label=name,
                    bias=float(np.median(delta)),
                    scatter=robust_std(delta),
                    max_abs=float(np.abs(delta).max()),
                    median_err=float(np.median(err)),
                    pull=robust_std(delta / err),
                    n_edge=int(edge.sum()),
                    seconds=seconds,
                )
            )
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'snr':>5} {'label':>5} {'bias':>9} {'scatter':>9} {'max|d|':>9} "
        f"{'med err':>9} {'pull':>5} {'edge':>5} {'fit s':>6}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['snr']:>5g} {r['label']:>5} {r['bias']:>9.4g} {r['scatter']:>9.4g} "
            f"{r['max_abs']:>9.4g} {r['median_err']:>9.4g} {r['pull']:>5.2f} "
            f"{r['n_edge']:>5d} {r['seconds']:>6.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 50.0, 100.0])
    ap.add_argument("--emulator", type=Path, default=DEFAULT_EMULATOR)
    ap.add_argument("--grid", type=Path, help="grid .npz (default: build the demo grid)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cont-degree", type=int, default=gridfit.CONT_DEGREE)
    a = ap.parse_args(argv)
    emulator = Emulator.load(a.emulator)
    if a.grid:
        from starbatch.grid import load_grid

        grid = load_grid(a.grid)
    else:
        grid = build_grid(emulator, DEMO_GRID)
    rows = accuracy(emulator, grid, a.n, a.snr, a.seed, a.cont_degree)
    print(f"N={a.n} labels uniform in the trained region; grid {grid.shape}; seed {a.seed}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
