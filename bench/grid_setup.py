"""Set-up of a FERRE-sized gridfit grid (config `grids: large:`, ~2 GB), stored so that
`load` memory-maps it: the first batch's set-up with the file out of the page cache, a
second batch's set-up while the first still holds the grid (both alive: they share one
copy, so each one's proportional share of the file pages is about half), and the cost per
spectrum batched vs one job per observation on it.

    .venv/bin/python bench/grid_setup.py [--grid large] [--n 16] [--workdir DIR] [--keep]

With --keep, a later run with the same --workdir reuses the built grid.

The last line printed is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _common import DEMO_CONFIG, machine, scratch

from starbatch.resources import EMULATOR


def memory_mb() -> dict:
    """This process's resident memory: anonymous (its own), file-backed (mapped pages),
    and PSS, its proportional share of pages it shares with other processes."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) / 1024
    return {
        "rss_mb": round(fields["Rss"]),
        "anon_mb": round(fields["Anonymous"]),
        "file_mb": round(fields["Rss"] - fields["Anonymous"]),
        "pss_mb": round(fields["Pss"]),
    }


def child(grid_path: str, n: int, ready: str, others: str) -> dict:
    """One batch job's view: load (set-up), fit n spectra, fit one; memory once every
    sibling has fitted too (so their mappings overlap in time)."""
    from starbatch.methods.emulator import Emulator
    from starbatch.methods.gridfit.fit import fit_many
    from starbatch.methods.gridfit.grid import load_grid
    from starbatch.offline.training_set import make_random_set

    spectra = make_random_set(Emulator.load(EMULATOR), n, 100.0, seed=5).spectra()
    t0 = time.perf_counter()
    grid = load_grid(grid_path)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    fit_many(grid, spectra)
    fit_n = time.perf_counter() - t1
    t2 = time.perf_counter()
    fit_many(grid, spectra[:1])
    fit_1 = time.perf_counter() - t2
    Path(ready).touch()
    deadline = time.monotonic() + 600
    while not all(Path(p).exists() for p in others.split(",") if p) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"setup_s": setup, "fit_n_s": fit_n, "fit_1_s": fit_1, **memory_mb()}


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages; no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def spawn(grid: Path, n: int, ready: Path, others: list[Path]) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", str(grid), str(n), str(ready)]
    cmd.append(",".join(str(o) for o in others))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{out}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="large", help="a grid of the demo's config")
    ap.add_argument("--n", type=int, default=16, help="spectra per batch")
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        grid, n, ready, others = a.child
        print(json.dumps(child(grid, int(n), ready, others)))
        return

    from starbatch.methods.emulator import Emulator
    from starbatch.methods.gridfit.grid import GridSpec, save_grid
    from starbatch.offline.grids import build_grid

    spec = yaml.safe_load(DEMO_CONFIG.read_text())["grids"][a.grid]
    spec = GridSpec(**{k: tuple(v) for k, v in spec.items()})
    with scratch(a.workdir, a.keep, "starbatch-grid-") as workdir:
        print(f"machine: {machine()}")
        path = workdir / f"{a.grid}.npz"
        t0 = time.perf_counter()
        if not path.exists():  # a kept --workdir keeps its grid (the build takes minutes)
            save_grid(path, build_grid(Emulator.load(EMULATOR), spec))
        size_mb = path.stat().st_size / 2**20
        print(f"grid {a.grid}: {spec.shape} nodes, {size_mb:,.0f} MB, built or found in "
              f"{time.perf_counter() - t0:.0f} s (not counted)", flush=True)  # fmt: skip

        evict(path)
        first = result(spawn(path, a.n, workdir / "ready-0", []))
        print(f"first batch, grid not in the page cache: {first}", flush=True)
        ready = [workdir / "ready-a", workdir / "ready-b"]
        pair = [spawn(path, a.n, ready[k], [ready[1 - k]]) for k in range(2)]
        both = [result(p) for p in pair]
        print(f"two concurrent batches (grid in the page cache): {both}", flush=True)

        warm = min(b["setup_s"] for b in both)
        batched = (warm + both[0]["fit_n_s"]) / a.n
        single = warm + both[0]["fit_1_s"]
        figures = {
            "benchmark": "grid_setup",
            "grid": a.grid,
            "nodes": int(spec.shape[0] * spec.shape[1] * spec.shape[2]),
            "grid_mb": round(size_mb),
            "n": a.n,
            "first_setup_s": round(first["setup_s"], 3),
            "concurrent_setup_s": [round(b["setup_s"], 3) for b in both],
            "first_memory": {k: first[k] for k in ("rss_mb", "anon_mb", "file_mb", "pss_mb")},
            "concurrent_pss_mb": [b["pss_mb"] for b in both],
            "concurrent_file_mb": [b["file_mb"] for b in both],
            "s_per_spectrum_batched": round(batched, 3),
            "s_per_spectrum_one_per_obs": round(single, 3),
            "ratios": {
                "one_per_obs/batched": round(single / batched, 2),
                "concurrent_pss/grid": round(max(b["pss_mb"] for b in both) / size_mb, 2),
            },
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
