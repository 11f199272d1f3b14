"""Planning at scale: a 1,000,000-row task table (gridfit and snr on 500,000 stars)
through the engine's planning call, plan() (read and validate, batch, write; the
workflow adds its schema check and auto sizing around it), timed phase by phase, with
peak memory.

The stars' files exist (hard links to a few real-format apStar files, in the SDSS
layout) except one in 1000, so the missing-file check and the skipped report do real
work. Planning runs in a fresh process so its peak RSS is planning alone; it runs
three times: from nothing, on the same table (the plan's record says nothing changed:
nothing is read or rewritten), and on the table with one row appended (a full plan
that rewrites only what changed). The floor, measured in the same run (the faster of
two runs, so that its listings are as warm in the kernel's cache as the plans' are), is
reading the table with pyarrow's CSV reader and listing the directories it points into.
The bound is the least a plan of this table does beyond the floor, in pyarrow alone
(measure_bound): how close to the floor any plan in Python can come on this machine.
Last, the same table in a project through the workflow, as a user runs it: the plan
(`--until plan`: Snakemake's start, the schema check, the plan) and the DAG of every
batch job that a plain run then builds (a dry run), each with the peak summed RSS of
its process tree. The last line printed is one JSON object with the figures and the
ratios to the floor.

    .venv/bin/python bench/plan_scale.py [--rows 1000000] [--workdir DIR] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml
from _common import (
    DEMO_CONFIG,
    Measured,
    link_tree,
    machine,
    real_config,
    scratch,
    self_peak_mb,
    snakemake_cmd,
    star_names,
    task_table,
    write_pool,
)

from starbatch.engine.plan.record import RACY_S

ANALYSES = ["gridfit", "snr"]
BATCH_SIZES = {"gridfit": 100, "snr": 1000}  # the demo's config
MISSING_EVERY = 1000


def generate(workdir: Path, rows: int, reuse: bool = False) -> tuple[Path, Path]:
    root, table = workdir / "sas", workdir / "observations.csv"
    done = workdir / f".generated-{rows}"  # written last: an interrupted run is redone
    if reuse and done.exists():
        return table, root
    stars = star_names(rows // len(ANALYSES))
    # ext4 allows 65,000 links per file: 10^7 rows (5 x 10^6 stars) need 84 pool files
    pool = write_pool(workdir / "pool", max(32, len(stars) // 60_000 + 1))
    present = stars[stars.index % MISSING_EVERY != MISSING_EVERY - 1]
    link_tree(root, present, pool)
    task_table(stars, ANALYSES).to_csv(table, index=False)
    done.touch()
    return table, root


def measure(table: Path, root: Path, plan_dir: Path) -> dict:
    """The measured part (run in a child process): the workflow's planning call, its
    phases timed by plan() itself."""
    from starbatch.analyses.registry import BUILTIN as registry
    from starbatch.engine.plan.make import PlanRequest, make_plan

    figures = {"rss_before_mb": self_peak_mb()}
    t0 = time.perf_counter()
    sizes = {name: BATCH_SIZES.get(name, 100) for name in registry}
    request = PlanRequest(table, [], root, plan_dir, sizes, batch_dir=plan_dir / "no-batches")
    stats = make_plan(request, registry)
    figures.update(total_s=time.perf_counter() - t0, peak_rss_mb=self_peak_mb(), **stats)
    return figures


def measure_floor(table: Path, root: Path) -> dict:
    """What planning cannot beat: read the table with pyarrow's CSV reader and list
    every directory it points into."""
    import pyarrow.compute as pc
    import pyarrow.csv

    from starbatch.offline.demo import apstar_relpath

    t0 = time.perf_counter()
    frame = pyarrow.csv.read_csv(table)
    fields = pc.unique(frame["field"]).to_pylist()
    listed = sum(len(os.listdir(root / Path(apstar_relpath(f, "x")).parent)) for f in fields)
    return {"floor_s": time.perf_counter() - t0, "floor_files_listed": listed}


def measure_bound(table: Path, root: Path, out: Path) -> dict:
    """The work no plan of this table can skip, each step one or a few vectorised arrow
    calls and nothing else: read the table, join every row's path, test the paths
    against the directory listings, find repeated rows, number each analysis's rows into
    batches, and write every batch's member list (lines and paths, as JSON). It checks
    no cell, keeps no record and knows only this table's product (apStar, default
    release and apred), so it is a lower bound on planning, not a planner."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv

    seconds, t = {}, time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[phase] = round(now - t, 3)
        t = now

    frame = pyarrow.csv.read_csv(table, convert_options=pyarrow.csv.ConvertOptions(
        column_types=dict.fromkeys(["release", "apred", "field", "obj"], pa.string())))  # fmt: skip
    lap("read")
    col = {name: frame[name].combine_chunks() for name in frame.column_names}
    release, apred = (pc.coalesce(pc.if_else(pc.equal(col[k], ""), None, col[k]), "dr17")
                      for k in ("release", "apred"))  # fmt: skip
    prefix = pc.if_else(pc.starts_with(col["telescope"], "lco"), "as", "ap")
    directory = pc.binary_join_element_wise(
        release, "/apogee/spectro/redux/", apred, "/stars/", col["telescope"], "/", col["field"], ""
    )
    paths = pc.binary_join_element_wise(
        directory, "/", prefix, "Star-", apred, "-", col["obj"], ".fits", ""
    )
    lap("paths")
    # One hash of the million paths serves both the existence test (of the distinct
    # paths) and the repeats (of integer codes).
    distinct = pc.dictionary_encode(paths)
    listed = []
    for name in pc.unique(directory).to_pylist():
        try:
            names = pa.array(os.listdir(root / name))
        except OSError:
            continue
        listed.append(pc.binary_join_element_wise(f"{name}/", names, ""))
    found = pc.is_in(distinct.dictionary, value_set=pa.concat_arrays(listed))
    present = found.to_numpy(zero_copy_only=False)[distinct.indices.to_numpy()]
    lap("exists")
    analyses = pc.dictionary_encode(col["analysis"])
    codes, names = analyses.indices.to_numpy(), analyses.dictionary.to_pylist()
    pairs = distinct.indices.to_numpy().astype(np.int64) * len(names) + codes
    repeated = int(np.count_nonzero(np.bincount(pairs) > 1))
    lap("duplicates")
    batch, ids = np.full(len(codes), -1), []
    for k, name in enumerate(names):
        rows = np.flatnonzero((codes == k) & present)
        batch[rows] = len(ids) + np.arange(len(rows)) // BATCH_SIZES[name]
        ids += [f"{name}-{i:04d}" for i in range((len(rows) - 1) // BATCH_SIZES[name] + 1)]
    order = np.argsort(batch, kind="stable")[np.count_nonzero(batch < 0) :]
    offsets = pa.array(np.concatenate([[0], np.cumsum(np.bincount(batch[order]))]), pa.int32())
    lap("batches")

    def joined(values) -> list[str]:
        return pc.binary_join(
            pa.ListArray.from_arrays(offsets, values.take(order)), ","
        ).to_pylist()

    lines = joined(pc.cast(pa.array(np.arange(len(codes)) + 2), pa.string()))
    quoted = joined(pc.binary_join_element_wise('"', paths, '"', ""))
    lap("texts")
    out.mkdir(parents=True)
    for batch_id, line, path in zip(ids, lines, quoted, strict=True):
        tmp = out / f".{batch_id}.tmp"  # atomic, as plan files are written
        tmp.write_text(f'{{"batch":"{batch_id}","line":[{line}],"path":[{path}]}}\n')
        os.replace(tmp, out / f"{batch_id}.json")
    lap("write")
    return {"bound_s": sum(seconds.values()), "seconds": seconds, "batches": len(ids),
            "repeated": repeated}  # fmt: skip


def run_child(table: Path, root: Path, plan_dir: Path | None, mode: str = "plan") -> dict:
    """One measurement in a fresh interpreter: planning into plan_dir, the floor (no
    plan_dir), or the bound (mode "bound", writing into plan_dir)."""
    target = str(plan_dir or "-") if mode == "plan" else f"bound:{plan_dir}"
    # Written data still waiting for the disk slows the next writes by seconds (writing
    # a plan's 125 MB took 0.3-3.2 s here): every measurement starts with none.
    os.sync()
    cmd = [sys.executable, __file__, "--measure", str(table), str(root), target]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def through_workflow(table: Path, root: Path, project: Path) -> dict:
    """The table planned by the workflow in a project, then the DAG of its batch jobs."""
    (project / "config").mkdir(parents=True)
    os.link(table, project / "config/observations.csv")
    sizes = {name: {"max_batch_size": size} for name, size in BATCH_SIZES.items()}
    demo_grid = yaml.safe_load(DEMO_CONFIG.read_text())["grids"]["demo"]  # built by a rule
    real_config(project, root, analyses=sizes, grids={"demo": demo_grid})
    os.sync()
    plan = Measured(snakemake_cmd(project, 2, "--until", "plan"), cwd=project).run()
    dag = Measured(snakemake_cmd(project, 2, "-n", "--quiet", "rules"), cwd=project).run()
    jobs = len((project / "results/plan/manifest.tsv").read_text().splitlines()) - 1
    print(
        f"through the workflow: plan (--until plan) {plan.seconds:.1f} s, "
        f"{plan.tree_peak_mb:,.0f} MB; DAG of its {jobs:,} batch jobs (dry run) "
        f"{dag.seconds:.1f} s, {dag.tree_peak_mb:,.0f} MB"
    )
    return {
        "workflow_plan_s": round(plan.seconds, 2),
        "workflow_plan_peak_mb": round(plan.tree_peak_mb),
        "batch_jobs": jobs,
        "dag_s": round(dag.seconds, 2),
        "dag_peak_mb": round(dag.tree_peak_mb),
    }


def report(label: str, f: dict) -> None:
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in f["seconds"].items())
    what = "unchanged, nothing read" if f["unchanged"] else f"{f['batches']:,} batches"
    print(
        f"{label}: {f['tasks']:,} rows -> {what}, {f['skipped']:,} skipped; {phases} "
        f"({f['plan_files_written']:,} plan files written); total {f['total_s']:.1f} s; "
        f"peak RSS {f['peak_rss_mb']:,.0f} MB (interpreter + imports {f['rss_before_mb']:.0f} MB)"
    )


def set_aside(path: Path, trash: Path) -> None:
    """Move ``path`` into ``trash``, removed after the measurements: deleting 10^4 files
    just before a measured write slows that write by seconds (the file system is still
    busy freeing them)."""
    if path.exists():
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{path.name}-{time.time_ns()}")


@contextmanager
def one_row_appended(table: Path):
    """The table with one row appended (a star without a file), then as it was."""
    size = table.stat().st_size
    with open(table, "a") as fh:
        fh.write("gridfit,,,apo25m,000+00,2M99999999+9999999\n")
    try:
        yield table
    finally:
        os.truncate(table, size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse the data a --keep run left in --workdir"
    )
    ap.add_argument(
        "--measure", nargs=3, metavar=("TABLE", "ROOT", "PLAN_DIR"), help=argparse.SUPPRESS
    )
    a = ap.parse_args()
    if a.measure:
        table, root, plan_dir = a.measure
        if plan_dir == "-":
            print(json.dumps(measure_floor(Path(table), Path(root))))
        elif plan_dir.startswith("bound:"):
            print(json.dumps(measure_bound(Path(table), Path(root), Path(plan_dir[6:]))))
        else:
            print(json.dumps(measure(Path(table), Path(root), Path(plan_dir))))
        return

    with scratch(a.workdir, a.keep, "starbatch-plan-") as workdir:
        print(f"machine: {machine()}")
        t0 = time.perf_counter()
        table, root = generate(workdir, a.rows, a.reuse)
        print(
            f"generated {a.rows:,} rows and their files in {time.perf_counter() - t0:.0f} s "
            f"under {workdir}"
        )
        plan_dir, trash = workdir / "plan", workdir / "set-aside"
        set_aside(plan_dir, trash)  # the first plan starts from nothing
        # Directories changed in the last seconds are not trusted by the plan's record
        # (engine/plan/record.py); a survey's files are not that fresh when it plans.
        time.sleep(RACY_S)
        floor = min((run_child(table, root, None) for _ in range(2)), key=lambda f: f["floor_s"])
        print(f"floor (pyarrow CSV read + directory listings): {floor['floor_s']:.2f} s")
        first = run_child(table, root, plan_dir)
        report("first plan", first)
        again = run_child(table, root, plan_dir)
        report("re-plan, same table", again)
        with one_row_appended(table):
            edited = run_child(table, root, plan_dir)
        report("re-plan, one row appended", edited)
        # Last: its files, written and removed, must not slow the plans' writes.
        set_aside(workdir / "bound", trash)
        bound = run_child(table, root, workdir / "bound", mode="bound")
        set_aside(workdir / "bound", trash)
        phases = ", ".join(f"{k} {v:.2f}" for k, v in bound["seconds"].items())
        print(
            f"bound (the same table's paths, existence, repeats, batches and member lists in "
            f"pyarrow alone, no checks): {bound['bound_s']:.2f} s = "
            f"{bound['bound_s'] / floor['floor_s']:.1f}x the floor ({phases} s)"
        )
        workflow = through_workflow(table, root, workdir / "project")
        set_aside(workdir / "project", trash)
        figures = {
            "benchmark": "plan_scale",
            "rows": a.rows,
            "floor_s": round(floor["floor_s"], 2),
            "bound_s": round(bound["bound_s"], 2),
            "first_plan_s": round(first["total_s"], 2),
            "replan_s": round(again["total_s"], 2),
            "edited_replan_s": round(edited["total_s"], 2),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in (first, again, edited))),
            **workflow,
            "ratios": {
                "first_plan/floor": round(first["total_s"] / floor["floor_s"], 2),
                "bound/floor": round(bound["bound_s"] / floor["floor_s"], 2),
                "first_plan/bound": round(first["total_s"] / bound["bound_s"], 2),
                "replan/floor": round(again["total_s"] / floor["floor_s"], 2),
                "edited_replan/floor": round(edited["total_s"] / floor["floor_s"], 2),
            },
        }
        print(json.dumps(figures))
        shutil.rmtree(trash, ignore_errors=True)


if __name__ == "__main__":
    main()
