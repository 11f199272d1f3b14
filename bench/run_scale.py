"""The workflow at scale: 100,000 observations through the real Snakefile with the
cheap ``snr`` analysis, aggregated in stages (batches -> parts -> per analysis -> all).

Files are real-format apStar files in the SDSS layout under a temporary SAS root,
made cheap with hard links to a small pool. Steps, each timed as its own snakemake
command (wall time, peak RSS summed over the process tree):

1. the plan checkpoint (``--until plan``): reads the table, checks 100k files;
2. a dry run after planning (``-n``): the DAG build over every batch job, and the
   largest number of inputs any job has (read from the dry run's job listing);
3. the real run; then the summary's row count is checked against N.

    .venv/bin/python bench/run_scale.py [--n 100000] [--batch-size 1000] [--part 10]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from _common import (
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


def generate(workdir: Path, n: int, batch_size: int, part: int) -> None:
    stars = star_names(n)
    root = workdir / "sas"
    link_tree(root, stars, write_pool(workdir / "pool", 32))
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    task_table(stars, ["snr"]).to_csv(workdir / "config/observations.csv", index=False)
    real_config(
        workdir,
        root,
        max_batch_size=batch_size,
        tables_per_part=part,
        analyses={"snr": {"max_batch_size": batch_size}},
    )


def job_inputs(dry_run: str) -> dict[str, int]:
    """Largest input count per rule, from the job listing a dry run prints."""
    largest: dict[str, int] = {}
    rule = None
    for line in dry_run.splitlines():
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("input:"):
            n = len(line.split(":", 1)[1].split(","))
            largest[rule] = max(largest.get(rule, 0), n)
    return largest


def job_counts(dry_run: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    counts, in_stats = {}, False
    for line in dry_run.splitlines():
        parts = line.split()
        if line.startswith("Job stats"):
            in_stats = True
        elif in_stats and parts[:1] == ["total"]:
            break
        elif in_stats and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def summary_rows(workdir: Path) -> int:
    with open(workdir / "results/summary.csv") as fh:
        return sum(1 for _ in fh) - 1


def step(label: str, m: Measured) -> Measured:
    print(
        f"{label}: {m.seconds:.1f} s wall, peak RSS of the process tree {m.tree_peak_mb:,.0f} MB",
        flush=True,
    )
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="observations")
    ap.add_argument(
        "--batch-size", type=int, default=1000, help="max_batch_size for snr (as shipped)"
    )
    ap.add_argument("--part", type=int, default=10, help="tables_per_part")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dry-only", action="store_true", help="stop after the dry run")
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    a = ap.parse_args()

    with scratch(a.workdir, a.keep, "starbatch-run-") as workdir:
        logs = workdir / "bench-logs"
        logs.mkdir(exist_ok=True)
        print(f"machine: {machine()}")
        t0 = time.perf_counter()
        generate(workdir, a.n, a.batch_size, a.part)
        print(
            f"generated {a.n:,} observations (hard links) in {time.perf_counter() - t0:.0f} s "
            f"under {workdir}; max_batch_size {a.batch_size}, tables_per_part {a.part}"
        )

        def smk(name: str, *args: str) -> Measured:
            cmd = snakemake_cmd(workdir, a.cores, *args)
            return step(name, Measured(cmd, cwd=workdir, log=logs / f"{name}.log").run())

        smk("plan checkpoint (--until plan)", "--until", "plan")
        dry = smk("dry run after planning (DAG build)", "-n")
        counts = job_counts(dry.stdout)
        inputs = job_inputs(dry.stdout)
        print(
            f"jobs: {sum(counts.values()):,} ({', '.join(f'{r} {n:,}' for r, n in counts.items())})"
        )
        print(
            "largest input count per rule: "
            + ", ".join(f"{r} {n:,}" for r, n in sorted(inputs.items(), key=lambda x: -x[1]))
        )
        figures = {
            "benchmark": "run_scale",
            "n": a.n,
            "batch_size": a.batch_size,
            "tables_per_part": a.part,
            "jobs": sum(counts.values()),
            "dag_s": round(dry.seconds, 2),
            "max_inputs_per_job": max(inputs.values()) if inputs else 0,
        }
        if not a.dry_only:
            run = smk("real run", "--quiet", "progress")
            rows = summary_rows(workdir)
            ok = "OK" if rows == a.n else "MISMATCH"
            print(f"summary rows: {rows:,} (expected {a.n:,}) -> {ok}")
            print(
                f"throughput: {a.n / run.seconds:,.0f} observations/s "
                f"({1000 * run.seconds / a.n:.2f} ms each on {a.cores} cores)"
            )
            figures.update(
                run_s=round(run.seconds, 1),
                peak_tree_rss_mb=round(run.tree_peak_mb),
                ms_per_observation=round(1000 * run.seconds / a.n, 3),
                rows_ok=rows == a.n,
            )
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
