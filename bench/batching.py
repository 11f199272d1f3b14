"""Batching benchmark: the same N spectra fitted by gridfit (demo grid: loading the
grid is the set-up a batch pays once) in five ways, timed in one run:

  workflow, batched       the real Snakefile, max_batch_size as shipped (100)
  workflow, unsupervised  the same with supervise: false: the analysis in the batch
                          job's own process, no worker, no limits (what supervision costs)
  workflow, auto          max_batch_size: auto, calibrated: the batched run's workdir
                          re-planned with resize_batches (sizes from its measured
                          costs), timed as the run that redoes every batch
  workflow, one per obs   the same workflow with max_batch_size=1 (N batch jobs)
  bare loop               the physical limit: one process per core loads the grid once
                          and reads and fits its share of the files (no scheduler)
  luigi, batched          Astra's engine: one luigi task per observation, batched by
                          the scheduler (batch_method=tuple, max_batch_size=100)
  luigi, one per obs      the same luigi tasks with max_batch_size=1

Every variant is one command started fresh (Python start and imports included, as a
user runs it) on the same cores (--cores), the same files and the same analysis code
(GridFit.load / product.read / analyse_many); the fitted Teff must agree. luigi is
optional (pip install -r bench/requirements.txt); without it those rows say so.

    .venv/bin/python bench/batching.py [--n 200] [--cores 2] [--repeat 3]
        [--only bare,batched,unsupervised,auto,single,luigi,luigi_single]

The fast variants run in rounds (bare, batched, unsupervised, luigi, then again), so
that a shared machine slowing down over minutes shifts a round's variants alike; each
ratio is the median of the ratios within rounds; auto, single and luigi_single run once,
after them. Each workflow run prints where its wall time went, and the floor (measured
between the two): a rerun of the last batched workdir with nothing to do, Snakemake's own
start on this workflow, which every run pays. The last line printed is one JSON object: seconds per
variant and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from _common import (
    DEMO_CONFIG,
    Measured,
    fit_files,
    link_tree,
    machine,
    one_thread_env,
    print_table,
    real_config,
    scratch,
    snakemake_cmd,
    star_names,
    task_table,
    write_pool,
)

ROUNDS = ("bare", "batched", "unsupervised", "luigi")  # the fast variants, in rounds
BATCH_SIZE = 100  # gridfit's max_batch_size in the demo's config
VARIANTS = {
    "bare": "bare loop (load once per core)",
    "batched": f"workflow, batched (max_batch_size={BATCH_SIZE})",
    "unsupervised": f"workflow, batched (max_batch_size={BATCH_SIZE}), supervise: false",
    "auto": "workflow, batched (max_batch_size: auto, calibrated)",
    "single": "workflow, one job per obs (max_batch_size=1)",
    "luigi": f"luigi, batched (batch_method=tuple, max_batch_size={BATCH_SIZE})",
    "luigi_single": "luigi, one task per obs (max_batch_size=1)",
}
GRID = "demo"
GRID_FILE = f"resources/grids/{GRID}.npz"


# --- data and the grid ----------------------------------------------------------------


def prepare(base: Path, n: int, cores: int) -> tuple[Path, pd.DataFrame, float]:
    """The SAS tree, and the demo grid built once by the workflow's own rule (its build
    time is not part of any variant). Returns (root, stars, grid build seconds)."""
    stars = star_names(n)
    root = base / "sas"
    link_tree(root, stars, write_pool(base / "pool", min(n, 64)))
    grid_dir = base / "grid-build"
    _workflow_dir(grid_dir, root, stars, BATCH_SIZE, {})
    build = Measured(snakemake_cmd(grid_dir, cores, GRID_FILE, "--quiet", "all"), cwd=grid_dir)
    return root, stars, build.run().seconds


def _workflow_dir(
    workdir: Path, root: Path, stars: pd.DataFrame, batch_size: int, config: dict
) -> None:
    shipped = yaml.safe_load(DEMO_CONFIG.read_text())
    real_config(
        workdir,
        root,
        max_batch_size=batch_size,
        analyses={"gridfit": {"max_batch_size": batch_size}},
        grids={GRID: shipped["grids"][GRID]},
        **config,
    )
    task_table(stars, ["gridfit"]).to_csv(workdir / "config/observations.csv", index=False)


def _link_grid(base: Path, workdir: Path) -> None:
    target = workdir / GRID_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(base / "grid-build" / GRID_FILE, target)


# --- the variants ----------------------------------------------------------------------


def run_workflow(
    base, name, root, stars, batch_size, cores, *extra, label=None, config=None
) -> tuple[float, dict, dict]:
    workdir = base / name
    if not extra:  # a fresh run; with extra arguments, a rerun in the same workdir
        _workflow_dir(workdir, root, stars, batch_size, config or {})
        _link_grid(base, workdir)
    started = time.time()
    m = Measured(snakemake_cmd(workdir, cores, "--quiet", "all", *extra), cwd=workdir).run()
    planned = pd.read_csv(workdir / "results/plan/manifest.tsv", sep="\t")["batch"]
    jobs = [pd.read_csv(workdir / f"benchmarks/batches/{b}.tsv", sep="\t")["s"].iloc[0]
            for b in planned]  # fmt: skip
    phases = run_phases(workdir, started, m.seconds)
    print(
        f"  {label or name}: {m.seconds:.1f} s wall = start + plan {phases['start_plan']:.1f} s, "
        f"batches {phases['batches']:.1f} s, collection + plots + exit "
        f"{phases['after']:.1f} s; its {len(jobs)} analyse_batch jobs "
        f"took {sum(jobs):.1f} s summed (Snakemake benchmark files)",
        flush=True,
    )
    summary = pd.read_csv(workdir / "results/gridfit/summary.csv")
    return m.seconds, dict(zip(summary["obj"], summary["teff"], strict=True)), phases


def run_phases(workdir: Path, started: float, seconds: float) -> dict:
    """Where a run's wall time went, from when its outputs were written: Snakemake's
    start and the plan job (to the manifest), the batch jobs (to the last batch table),
    then the collection and plot jobs and Snakemake's exit."""
    planned = (workdir / "logs/plan.log").stat().st_mtime - started  # written by every plan
    tables = [f.stat().st_mtime for f in (workdir / "results/batches").glob("*.fits")]
    batches = max(tables, default=started + planned)
    batches -= started
    return {"start_plan": planned, "batches": batches - planned, "after": seconds - batches}


def noop_rerun(workdir: Path, cores: int) -> float:
    """Seconds of a rerun with nothing to do: what starting Snakemake on this workflow
    costs (imports, parsing, the DAG), paid by every run however small; no job runs."""
    return Measured(snakemake_cmd(workdir, cores, "--quiet", "all"), cwd=workdir).run().seconds


def run_auto(base, root, stars, cores) -> tuple[float, dict]:
    """Calibrated auto sizing: the last batched run's workdir (its batches measured),
    max_batch_size: auto, re-planned with resize_batches; every batch reruns."""
    done = sorted(base.glob("wf-batched-*"))
    if not done:
        return "needs the batched variant first (its batches are the measurement)"
    workdir = done[-1]
    config_path = workdir / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["analyses"]["gridfit"]["max_batch_size"] = "auto"
    config_path.write_text(yaml.safe_dump(config))
    # Every batch is redone, also when the new size equals the old (then the plan files
    # do not change and nothing else would rerun).
    result = run_workflow(
        base, workdir.name, root, stars, 0, cores, "--forcerun", "plan", "analyse_batch",
        "--config", "resize_batches=True", label=f"auto (in {workdir.name})",
    )  # fmt: skip
    sizes = json.loads((workdir / "results/plan/sizes.json").read_text())["gridfit"]
    print(f"  auto: max_batch_size {sizes['max_batch_size']} ({sizes['why']})", flush=True)
    return result


def _fit_share(args) -> dict:
    return fit_files(*args)


def bare_loop(workdir: Path, root: Path, stars: pd.DataFrame, cores: int) -> dict:
    """In the worker process: one process per core fits its share of the files."""
    from starbatch.offline.demo import apstar_relpath

    members = [(o, apstar_relpath(f, o)) for f, o in zip(stars["field"], stars["obj"], strict=True)]
    size = math.ceil(len(members) / cores)
    shares = [(workdir, root, members[i : i + size]) for i in range(0, len(members), size)]
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        parts = pool.map(_fit_share, shares)
    return {k: v for part in parts for k, v in part.items()}


def run_worker(base, name, root, stars, batch_size, cores, kind) -> tuple[float, dict] | str:
    """A bare-loop or luigi variant as a fresh process (this script, --worker)."""
    if kind == "luigi":
        try:
            import luigi  # noqa: F401
        except ImportError:
            return "luigi not installed (pip install -r bench/requirements.txt)"
    workdir = base / name
    _link_grid(base, workdir)
    stars_csv = workdir / "stars.csv"
    stars.to_csv(stars_csv, index=False)
    cmd = [sys.executable, __file__, "--worker", kind, str(workdir), str(root), str(stars_csv),
           str(batch_size), str(cores)]  # fmt: skip
    m = Measured(cmd, cwd=workdir, env=one_thread_env()).run()
    return m.seconds, json.loads(m.stdout.strip().splitlines()[-1])


def worker(kind, workdir, root, stars_csv, batch_size, cores) -> None:
    stars = pd.read_csv(stars_csv, dtype=str)
    if kind == "bare":
        teff = bare_loop(Path(workdir), Path(root), stars, int(cores))
    else:
        from luigi_tasks import run

        teff = run(Path(workdir), Path(root), stars, int(batch_size), int(cores))
    print(json.dumps(teff))


# --- report ------------------------------------------------------------------------------


def agreement(reference: dict, other: dict) -> str:
    """Largest |Teff difference| against the bare loop, over all N stars."""
    if set(reference) != set(other):
        return f"DIFFERENT STARS ({len(other)} vs {len(reference)})"
    worst = max(abs(reference[k] - other[k]) for k in reference)
    return f"{worst:.2g} K"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="spectra")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--repeat", type=int, default=3, help="rounds of the fast variants (medians, paired ratios)"
    )
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument(
        "--only", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}"
    )
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return
    if a.repeat < 1:
        ap.error("--repeat: at least 1 round")
    only = [v.strip() for v in a.only.split(",") if v.strip()]
    unknown = sorted(set(only) - set(VARIANTS))
    if unknown:
        ap.error(f"--only: unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    with scratch(a.workdir, a.keep, "starbatch-batching-") as base:
        print(f"machine: {machine()}")
        root, stars, build_s = prepare(base, a.n, a.cores)
        print(
            f"N={a.n} spectra (gridfit, {GRID} grid, built once in {build_s:.1f} s, not "
            f"counted), {a.cores} cores",
            flush=True,
        )
        runs = {
            "bare": lambda k: run_worker(base, f"bare-{k}", root, stars, 0, a.cores, "bare"),
            "batched": lambda k: run_workflow(
                base, f"wf-batched-{k}", root, stars, BATCH_SIZE, a.cores
            ),
            "unsupervised": lambda k: run_workflow(
                base,
                f"wf-unsupervised-{k}",
                root,
                stars,
                BATCH_SIZE,
                a.cores,
                config={"supervise": False},
            ),  # fmt: skip
            "luigi": lambda k: run_worker(
                base, f"luigi-batched-{k}", root, stars, BATCH_SIZE, a.cores, "luigi"
            ),
            "auto": lambda k: run_auto(base, root, stars, a.cores),
            "single": lambda k: run_workflow(base, "wf-single", root, stars, 1, a.cores),
            "luigi_single": lambda k: run_worker(
                base, "luigi-single", root, stars, 1, a.cores, "luigi"
            ),
        }
        rounds, skipped = run_rounds(runs, [v for v in only if v in ROUNDS], a.repeat)
        # The floor, before auto re-plans the last batched workdir.
        last_batched = base / f"wf-batched-{a.repeat - 1}"
        floor = noop_rerun(last_batched, a.cores) if "batched" in rounds[-1] else None
        once, skipped_once = run_rounds(runs, [v for v in only if v not in ROUNDS], 1)
        skipped |= skipped_once
        results = {}
        for v in (v for v in VARIANTS if v in only):
            ran = sorted((r[v] for r in rounds + once if v in r), key=lambda r: r[0])
            results[v] = skipped[v] if v in skipped else lower_median(ran)
        report(results, rounds, floor, a.n, a.cores)


def run_rounds(runs: dict, variants: list[str], repeat: int) -> tuple[list[dict], dict]:
    """``repeat`` rounds of ``variants`` (bare, batched, luigi, then again): a shared
    machine that slows down over minutes then shifts a round's variants alike, and the
    ratios are taken within rounds. Returns ([{variant: (seconds, teff)} per round],
    {variant: why it was skipped})."""
    rounds: list[dict] = [{} for _ in range(repeat)]
    skipped = {}
    for k, done in enumerate(rounds):
        for v in variants:
            if v in skipped:
                continue
            result = runs[v](k)
            if isinstance(result, str):
                skipped[v] = result
                continue
            print(f"{VARIANTS[v]}, run {k + 1}: {result[0]:.1f} s", flush=True)
            done[v] = result
    return rounds, skipped


def paired_ratio(rounds: list[dict], a: str, b: str) -> float | None:
    """The median over rounds of a's time over b's in the same round (lower_median, as
    for the runs themselves)."""
    pairs = sorted(r[a][0] / r[b][0] for r in rounds if a in r and b in r)
    return lower_median(pairs) if pairs else None


def lower_median(ordered: list):
    """The middle item of a sorted list, the lower of the two for an even length: always
    one that was measured (a run keeps its Teff)."""
    return ordered[(len(ordered) - 1) // 2]


def bound(rounds: list[dict], floor: float, seconds: dict, auto=None) -> dict:
    """About the soonest a run of this workflow could end: its floor (Snakemake's start,
    DAG and exit, which every run pays) plus its batch jobs (a run's batches phase, from
    the plan to the last batch table), as if the plan, collection and plot jobs were
    free. The batched runs' against the bare loop and luigi in the same rounds; the auto
    run's (``auto``, run once) against their medians. {} without a batched run."""
    batched = [r for r in rounds if "batched" in r]
    if not batched:
        return {}
    least = [floor + r["batched"][2]["batches"] for r in batched]
    seconds["bound"] = round(lower_median(sorted(least)), 2)
    ratios = {}
    for other in ("bare", "luigi"):
        pairs = sorted(b / r[other][0] for b, r in zip(least, batched, strict=True) if other in r)
        if pairs:
            ratios[f"bound/{other}"] = round(lower_median(pairs), 3)
    if auto is not None:
        seconds["bound_auto"] = round(floor + auto[2]["batches"], 2)
        for other in ("bare", "luigi"):
            if other in seconds:
                ratios[f"bound_auto/{other}"] = round(seconds["bound_auto"] / seconds[other], 3)

    def against(name: str) -> str:
        return ", ".join(
            f"{ratios[f'{name}/{o}']:.2f}x {'the bare loop' if o == 'bare' else o}"
            for o in ("bare", "luigi")
            if f"{name}/{o}" in ratios
        )

    print(
        f"bound: the floor plus the batched run's batches phase is {seconds['bound']:.1f} s = "
        f"{against('bound')}: about what a run would take with its plan, collection and "
        "plot jobs free"
    )
    if auto is not None:
        print(f"bound of the auto run: {seconds['bound_auto']:.1f} s = {against('bound_auto')}")
    return ratios


def report(results: dict, rounds: list[dict], floor: float | None, n: int, cores: int) -> None:
    ran = {k: v for k, v in results.items() if not isinstance(v, str)}
    seconds = {k: round(v[0], 2) for k, v in ran.items()}

    def ratio(a: str, b: str) -> float | None:
        """Paired within rounds where both ran in them, else of the medians."""
        if a not in seconds or b not in seconds:
            return None
        return paired_ratio(rounds, a, b) or seconds[a] / seconds[b]

    reference = ran.get("bare")
    rows = []
    for key, result in results.items():
        if isinstance(result, str):
            rows.append([VARIANTS[key], result, "", "", "", ""])
            continue
        to_bare, to_batched = ratio(key, "bare"), ratio(key, "batched")
        rows.append(
            [
                VARIANTS[key],
                f"{result[0]:.1f}",
                f"{1000 * result[0] / n:.0f}",
                f"{to_bare:.2f}" if to_bare else "",
                f"{to_batched:.2f}" if to_batched else "",
                agreement(reference[1], result[1]) if reference else "",
            ]
        )
    print()
    print(
        f"{len(rounds)} round(s) of {', '.join(v for v in ROUNDS if v in rounds[0])}; wall s: "
        "the median run (the lower middle one for an even count); ratios: the median of the "
        "ratios within rounds, for a variant run once after the rounds the ratio of medians"
    )
    print_table(
        rows,
        ["variant", "wall s", "ms/spectrum", "x bare loop", "x workflow batched",
         "max |dTeff| vs bare"],
    )  # fmt: skip
    ratios = {}
    for a, b in (("batched", "bare"), ("batched", "luigi"), ("auto", "bare"), ("auto", "luigi"),
                 ("single", "batched"), ("luigi", "bare"), ("luigi_single", "luigi"),
                 ("batched", "unsupervised")):  # fmt: skip
        if (r := ratio(a, b)) is not None:
            ratios[f"{a}/{b}"] = round(r, 3)
    if "batched/unsupervised" in ratios:
        print(
            f"\nsupervision: the batched workflow takes {ratios['batched/unsupervised']:.3f}x the "
            "same workflow with supervise: false (median of the paired ratios within rounds)"
        )
    if floor is not None:
        seconds["snakemake_noop"] = round(floor, 2)
        share = f" = {floor / reference[0]:.2f}x the bare loop" if reference else ""
        print(
            f"\nfloor: a rerun of the batched workdir with nothing to do takes {floor:.1f} s"
            f"{share}: Snakemake's start on this workflow, paid by every run"
        )
        if reference:
            ratios["snakemake_noop/bare"] = round(floor / reference[0], 3)
        ratios |= bound(rounds, floor, seconds, ran.get("auto"))
    print(
        json.dumps(
            {
                "benchmark": "batching",
                "n": n,
                "cores": cores,
                "rounds": len(rounds),
                "seconds": seconds,
                "ms_per_spectrum": {k: round(1000 * v[0] / n, 1) for k, v in ran.items()},
                "ratios": ratios,
                "skipped": {k: v for k, v in results.items() if isinstance(v, str)},
            }
        )
    )


if __name__ == "__main__":
    main()
