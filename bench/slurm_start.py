"""How fast a SLURM batch job gets to work at scale: a plan of 10^4 batches (10^6 `snr`
rows, batches of 100), then a few of its batch jobs run on the one-node test SLURM
(tests/cluster/slurm/start.sh; root) through the shipped profile. Each job the plugin
submits runs its own Snakemake, which parses the Snakefile and reads the plan before
the batch starts (the plugin's issues report ~100 s and 2 GB per job on large
workflows). Measured per job, from the processes on the node:

- start -> first spectrum: from the start of the job's Snakemake process to the batch
  log's "first observation(s) done" line;
- memory beyond the analysis's: the peak summed RSS of the job's processes other than
  the analysis's worker (the job's Snakemake, the batch's supervisor, the shells).

Also the submitting side at 10^4 batch jobs: the plan, and a dry run's DAG build (wall
time and peak RSS of its process tree).

    .venv/bin/python bench/slurm_start.py [--rows 1000000] [--batch-size 100] [--jobs 4]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

from _common import (
    REPO,
    Measured,
    link_tree,
    machine,
    real_config,
    scratch,
    snakemake_cmd,
    star_names,
    task_table,
    write_pool,
)

from starbatch.workflow import PROFILES

SLURM = REPO / "tests" / "cluster" / "slurm"
CLOCK = os.sysconf("SC_CLK_TCK")


def boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime"):
            return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def processes() -> dict[int, dict]:
    """{pid: {ppid, start (epoch s), rss_kb, cmdline}} of every process now."""
    out, boot = {}, boot_time()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            status = (entry / "status").read_text()
            rss = re.search(r"VmRSS:\s+(\d+)", status)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        out[int(entry.name)] = {
            "ppid": int(fields[1]),
            "start": boot + int(fields[19]) / CLOCK,
            "rss_kb": int(rss.group(1)) if rss else 0,
            "cmdline": cmdline,
        }
    return out


def descendants(procs: dict, root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += [p for p, info in procs.items() if info["ppid"] == pid]
    return out


class JobWatcher:
    """Samples, every 0.1 s, each batch job's Snakemake process tree on this node."""

    def __init__(self, batches: list[str]):
        self.batches = batches
        self.start: dict[str, float] = {}
        self.peak_kb: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            procs = processes()
            for pid, info in procs.items():
                cmd = info["cmdline"]
                if "snakemake" not in cmd or "--target-jobs" not in cmd:
                    continue
                batch = next((b for b in self.batches if b in cmd), None)
                if batch is None:
                    continue
                self.start.setdefault(batch, info["start"])
                tree = descendants(procs, pid)
                # The worker: a child of the supervisor (the rule script) with its cmdline.
                scripts = [p for p in tree if "run_batch.py" in procs[p]["cmdline"]]
                workers = {p for p in scripts if procs[p]["ppid"] in scripts}
                rss = sum(procs[p]["rss_kb"] for p in tree if p not in workers)
                self.peak_kb[batch] = max(self.peak_kb.get(batch, 0), rss)
            time.sleep(0.1)

    def done(self):
        self.stop.set()
        self.thread.join()


def first_done(log: Path) -> float | None:
    """The epoch time of the batch log's first-observation line."""
    for line in log.read_text().splitlines():
        if "first observation(s) done" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=4, help="batch jobs run on SLURM")
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("slurm_start.py starts a test SLURM (munged, slurmctld, slurmd): root")
    with scratch(a.workdir, a.keep, "starbatch-slurm-") as base:
        print(f"machine: {machine()}", flush=True)
        workdir = base / "project"
        stars = star_names(a.rows)
        t0 = time.perf_counter()
        link_tree(workdir / "sas", stars, write_pool(base / "pool", 32))
        (workdir / "config").mkdir(parents=True, exist_ok=True)
        task_table(stars, ["snr"]).to_csv(workdir / "config/observations.csv", index=False)
        real_config(workdir, workdir / "sas", analyses={"snr": {"max_batch_size": a.batch_size}})
        print(f"{a.rows:,} rows made in {time.perf_counter() - t0:.0f} s", flush=True)

        plan = Measured(snakemake_cmd(workdir, 2, "--until", "plan"), cwd=workdir).run()
        dry = Measured(snakemake_cmd(workdir, 2, "-n", "--quiet", "rules"), cwd=workdir).run()
        manifest = (workdir / "results/plan/manifest.tsv").read_text().splitlines()[1:]
        batches = [line.split("\t")[0] for line in manifest]
        print(
            f"plan: {plan.seconds:.1f} s, {plan.tree_peak_mb:,.0f} MB; {len(batches):,} batch "
            f"jobs; DAG of the submitting Snakemake (dry run): {dry.seconds:.1f} s, "
            f"{dry.tree_peak_mb:,.0f} MB",
            flush=True,
        )
        state = base / "slurm"
        state.mkdir()
        subprocess.run([str(SLURM / "start.sh"), str(state)], check=True, timeout=900)
        try:
            env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
            cpus = subprocess.run(
                ["sinfo", "-h", "-o", "%c"], env=env, capture_output=True, text=True, check=True
            ).stdout.split()[0]
            chosen = batches[: a.jobs]
            watcher = JobWatcher(chosen)
            targets = [f"results/batches/{b}.fits" for b in chosen]
            args = [
                "--profile", str(PROFILES / "slurm"), "--workflow-profile", "none",
                "--slurm-status-command", "squeue",
                "--slurm-init-seconds-before-status-checks", "2", "--cores", cpus, *targets,
            ]  # fmt: skip
            run = Measured(snakemake_cmd(workdir, 2, *args), cwd=workdir, env=env).run()
            watcher.done()
        finally:
            subprocess.run([str(SLURM / "stop.sh"), str(state)], timeout=120)
        rows = []
        for b in chosen:
            first = first_done(workdir / "logs/batches" / f"{b}.log")
            began = watcher.start.get(b)
            rows.append(
                {
                    "batch": b,
                    "start_to_first_s": round(first - began, 2) if first and began else None,
                    "beyond_analysis_mb": round(watcher.peak_kb.get(b, 0) / 1024, 1),
                }
            )
            print(
                f"  {b}: start -> first spectrum {rows[-1]['start_to_first_s']} s, "
                f"memory beyond the analysis {rows[-1]['beyond_analysis_mb']} MB",
                flush=True,
            )
        firsts = sorted(r["start_to_first_s"] for r in rows if r["start_to_first_s"] is not None)
        mems = sorted(r["beyond_analysis_mb"] for r in rows)
        summary = {
            "benchmark": "slurm_start",
            "rows": a.rows,
            "batch_jobs": len(batches),
            "plan_s": round(plan.seconds, 2),
            "plan_peak_mb": round(plan.tree_peak_mb),
            "dag_s": round(dry.seconds, 2),
            "dag_peak_mb": round(dry.tree_peak_mb),
            "slurm_run_s": round(run.seconds, 2),
            "start_to_first_s_max": firsts[-1] if firsts else None,
            "beyond_analysis_mb_max": mems[-1] if mems else None,
            "jobs": rows,
        }
        print(
            f"slowest start -> first spectrum {summary['start_to_first_s_max']} s (target <= 5), "
            f"largest memory beyond the analysis {summary['beyond_analysis_mb_max']} MB "
            "(target <= 300)"
        )
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
