"""What the engine costs per observation, with an analysis that costs nearly nothing
(`snr`: a median over the pixels): N apStar files from the page cache, on --cores
cores, timed as one command each, in paired rounds:

  bare loop, astropy     one process per core reads each file with astropy.io.fits (as
                         Astra's loaders do: open, three HDUs, row 0) and does snr's
                         arithmetic; no scheduler, no journal, no table
  bare loop, starbatch   the same with starbatch's own reader (APSTAR.read)
  workflow               the real workflow in a fresh project: plan, batch jobs (each a
                         supervised worker: read, analyse, journal, provenance, its
                         table), collection, comparison, plots

For the workflow it prints where the time went per observation: Snakemake's start and
the plan; inside the batch jobs reading, analysing, the engine's own work in the member
loop (records, the journal, the worker's messages), the job's fixed cost (start,
imports, worker, the table write); collection and plots after the batches.

    .venv/bin/python bench/engine_cost.py [--n 20000] [--cores 2] [--repeat 3]
        [--batch-size 10000]

The last line printed is one JSON object: seconds per variant, ms per observation by
phase, and the ratios (workflow / each bare loop, the median of the paired ratios).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
from _common import (
    Measured,
    link_tree,
    machine,
    print_table,
    real_config,
    scratch,
    snakemake_cmd,
    star_names,
    task_table,
    write_pool,
)

VARIANTS = {
    "astropy": "bare loop, astropy.io.fits",
    "starbatch": "bare loop, starbatch's reader",
    "workflow": "workflow (plan, supervised batches, collection, plots)",
}


# --- the bare loops ---------------------------------------------------------------------


def _snr(flux, error, bad) -> tuple[float, float, int]:
    """snr's arithmetic (analyses/snr.py), on arrays."""
    good = ~bad
    return float(np.median(flux[good] / error[good])), float(np.median(flux[good])), good.sum()


def _astropy_share(paths: list[str]) -> int:
    from astropy.io import fits

    from starbatch.sdss.readers import BAD_PIXEL_MASK

    n = 0
    for path in paths:
        with fits.open(path, memmap=False) as hdus:
            flux = np.asarray(hdus[1].data, dtype=float)
            error = np.asarray(hdus[2].data, dtype=float)
            mask = np.asarray(hdus[3].data)
        if flux.ndim == 2:
            flux, error, mask = flux[0], error[0], mask[0]
        _snr(flux, error, (mask & BAD_PIXEL_MASK) != 0)
        n += 1
    return n


def _starbatch_share(paths: list[str]) -> int:
    from starbatch.sdss.products import APSTAR

    for path in paths:
        s = APSTAR.read(Path(path), apstar_row=0)
        _snr(s.flux, s.error, s.bad)
    return len(paths)


def bare(kind: str, paths: list[str], cores: int) -> float:
    """Seconds for ``cores`` processes (started fresh: imports included) to do every file."""
    work = _astropy_share if kind == "astropy" else _starbatch_share
    shares = [paths[k::cores] for k in range(cores)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        done = sum(pool.map(work, shares))
    assert done == len(paths)
    return time.perf_counter() - t0


# --- the workflow -----------------------------------------------------------------------


def workflow(base: Path, k: int, root: Path, stars, cores: int, batch_size: int) -> dict:
    workdir = base / f"wf-{k}"
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    task_table(stars, ["snr"]).to_csv(workdir / "config/observations.csv", index=False)
    real_config(workdir, root, analyses={"snr": {"max_batch_size": batch_size}})
    started = time.time()
    m = Measured(snakemake_cmd(workdir, cores, "--quiet", "all"), cwd=workdir).run()
    return {"seconds": m.seconds, **phases(workdir, started, m.seconds)}


def phases(workdir: Path, started: float, seconds: float) -> dict:
    """Where the run's time went (seconds), from its files and the batch headers."""
    from astropy.io import fits

    planned = (workdir / "logs/plan.log").stat().st_mtime - started
    tables = sorted((workdir / "results/batches").glob("*.fits"))
    last_batch = max(t.stat().st_mtime for t in tables) - started
    inside = {"read": 0.0, "analyse": 0.0, "loop": 0.0, "setup": 0.0, "job": 0.0, "n": 0}
    for table in tables:
        header = fits.getheader(table, 1)
        inside["read"] += header["READ_S"]
        inside["analyse"] += header["ANAL_S"]
        inside["loop"] += header["LOOP_S"]
        inside["setup"] += header["SETUP_S"]
        inside["n"] += header["NMEMBER"]
        bench = (workdir / "benchmarks/batches" / f"{table.stem}.tsv").read_text()
        inside["job"] += float(bench.splitlines()[1].split("\t")[0])
    # The loop's own work: what is left of it beyond reading and analysing. Reading the
    # next chunk ahead overlaps analysing only where neither holds the GIL, so this is a
    # lower bound on the engine's share (a serial upper one: the loop less the larger).
    engine = inside["loop"] - inside["read"] - inside["analyse"]
    return {
        "start_plan": planned,
        "batches": last_batch - planned,
        "after": seconds - last_batch,
        "batch_jobs": len(tables),
        # summed over the batch jobs (core-seconds)
        "read": inside["read"],
        "analyse": inside["analyse"],
        "engine_loop": max(engine, 0.0),
        "job_fixed": inside["job"] - inside["loop"],
        "members": inside["n"],
    }


def lower_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="observations")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (paired ratios)")
    ap.add_argument("--batch-size", type=int, default=0, help="snr's max_batch_size (0: N / cores)")
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    a = ap.parse_args()
    batch_size = a.batch_size or -(-a.n // a.cores)
    with scratch(a.workdir, a.keep, "starbatch-engine-") as base:
        print(f"machine: {machine()}")
        stars = star_names(a.n)
        root = base / "sas"
        link_tree(root, stars, write_pool(base / "pool", 32))
        from starbatch.offline.demo import apstar_relpath

        pairs = zip(stars["field"], stars["obj"], strict=True)
        paths = [str(root / apstar_relpath(f, o)) for f, o in pairs]
        bare("starbatch", paths[: a.cores * 50], a.cores)  # files and imports warm
        print(
            f"N={a.n} snr on {a.cores} cores; max_batch_size {batch_size}; files in the page cache"
        )
        rounds = []
        for k in range(a.repeat):
            r = {
                "astropy": bare("astropy", paths, a.cores),
                "starbatch": bare("starbatch", paths, a.cores),
                "workflow": workflow(base, k, root, stars, a.cores, batch_size),
            }
            rounds.append(r)
            print(
                f"round {k + 1}: astropy {r['astropy']:.1f} s, starbatch {r['starbatch']:.1f} s, "
                f"workflow {r['workflow']['seconds']:.1f} s",
                flush=True,
            )
        seconds = {
            "astropy": lower_median([r["astropy"] for r in rounds]),
            "starbatch": lower_median([r["starbatch"] for r in rounds]),
            "workflow": lower_median([r["workflow"]["seconds"] for r in rounds]),
        }
        ratios = {
            f"workflow/{b}": round(
                lower_median([r["workflow"]["seconds"] / r[b] for r in rounds]), 3
            )
            for b in ("astropy", "starbatch")
        }
        middle = sorted(rounds, key=lambda r: r["workflow"]["seconds"])[(a.repeat - 1) // 2]
        wf = middle["workflow"]
        per_obs = {  # ms per observation; the batch jobs' parts are core-seconds
            "start_plan": wf["start_plan"],
            "batches (wall)": wf["batches"],
            "  read (in jobs)": wf["read"],
            "  analyse (in jobs)": wf["analyse"],
            "  engine in the member loop (in jobs)": wf["engine_loop"],
            "  job fixed cost (in jobs)": wf["job_fixed"],
            "collection, plots, exit": wf["after"],
        }
        per_obs = {k: 1000 * v / a.n for k, v in per_obs.items()}
        print()
        print_table(
            [
                [VARIANTS[v], f"{seconds[v]:.1f}", f"{1000 * seconds[v] / a.n:.3f}"]
                for v in VARIANTS
            ],
            ["variant", "wall s (median)", "ms per observation"],
        )
        print()
        print(
            f"the workflow's time per observation (the median run, {wf['batch_jobs']} batch jobs):"
        )
        print_table([[k, f"{v:.3f}"] for k, v in per_obs.items()], ["phase", "ms per observation"])
        print(
            f"\nworkflow / bare loop with astropy.io.fits: {ratios['workflow/astropy']:.2f}x "
            f"(target < 1); / bare loop with starbatch's reader: "
            f"{ratios['workflow/starbatch']:.2f}x (median of the paired ratios)"
        )
        print(
            json.dumps(
                {
                    "benchmark": "engine_cost",
                    "n": a.n,
                    "cores": a.cores,
                    "rounds": a.repeat,
                    "batch_size": batch_size,
                    "seconds": {k: round(v, 2) for k, v in seconds.items()},
                    "ms_per_obs": {k.strip(): round(v, 4) for k, v in per_obs.items()},
                    "ratios": ratios,
                }
            )
        )


if __name__ == "__main__":
    main()
