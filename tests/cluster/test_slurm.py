"""The demo on a real one-node SLURM, through profiles/slurm, gives the same
results as the local run (docs/cluster.md).

The module fixture starts munged, slurmctld and slurmd with tests/cluster/slurm/start.sh
(installing the Debian packages if needed) and stops them afterwards. It needs
root: without root the test is skipped, unless CI is set, where it fails. If
SLURM does not come up, the test fails with start.sh's reason and daemon logs.
"""

import csv
import os
import re
import subprocess
import sys
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from smk import REPO, snakemake, tiny_config
from starbatch.engine.analysis import PROVENANCE
from starbatch.engine.results import read_table
from starbatch.offline.demo import TEST_ANALYSES, demo_stars, demo_table
from starbatch.workflow import PROFILES

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPTS = REPO / "tests" / "cluster" / "slurm"
PROFILE = PROFILES / "slurm"
# The test cluster's non-default partition (start.sh): selected through the
# profile's knob, so the jobs landing there shows that the knob reaches sbatch.
PARTITION = "batch"
# Not compared: timings, and the file facts of inputs each run made afresh.
TIMING = ("time_s", "setup_share_s", *PROVENANCE)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node SLURM: the environment that reaches it, and its CPUs."""
    if os.geteuid() != 0:
        reason = "the SLURM test starts munged, slurmctld and slurmd, which needs root"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so this fails instead of skipping")
        pytest.skip(f"{reason} (run pytest as root, or set CI to make this a failure)")
    state = tmp_path_factory.mktemp("slurm")
    try:
        start = subprocess.run(
            [str(SCRIPTS / "start.sh"), str(state)], capture_output=True, text=True, timeout=900
        )
        if start.returncode != 0:
            pytest.fail(f"SLURM did not start (tests/cluster/slurm/start.sh):\n{start.stderr}")
        env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
        cpus = subprocess.run(
            ["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, env=env, check=True
        ).stdout.split()[0]
        yield env, int(cpus)
    finally:
        subprocess.run([str(SCRIPTS / "stop.sh"), str(state)], timeout=120)


# Per-analysis memory from the config (Analysis.resources, workflow/rules/resources.smk): small, so
# the jobs fit a small CI machine side by side, and distinct, to see it reach sbatch.
MEM_MB = {"gridfit": 1000, "snr": 500}


def _workdir(tmp_path_factory, name):
    workdir = tmp_path_factory.mktemp(name)
    analyses = {"gridfit": {"mem_mb": MEM_MB["gridfit"]}, "snr": {"mem_mb": MEM_MB["snr"]}}
    analyses["snr"]["max_batch_size"] = 5
    config = tiny_config(workdir, n_stars=6, analyses=analyses)
    stars = demo_stars(config["demo"]["n_stars"], config["demo"]["seed"], config["demo"]["snr"])
    demo_table(stars, *TEST_ANALYSES).to_csv(workdir / "config/observations.csv", index=False)
    return workdir


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):
    env, cpus = slurm
    local = _workdir(tmp_path_factory, "local")
    snakemake(local, timeout=600)

    # As the README says: `starbatch run --profile slurm` finds the shipped profile.
    on_slurm = _workdir(tmp_path_factory, "on_slurm")
    proc = subprocess.run(
        [sys.executable, "-m", "starbatch.cli", "run", *slurm_args(cpus, profile="slurm")],
        cwd=on_slurm,
        env={**env, "STARBATCH_SLURM_PARTITION": PARTITION},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert str(PROFILE) in proc.stderr  # Snakemake names the profile it used
    return local, on_slurm, proc, env


def slurm_args(cpus: int, profile: str = str(PROFILE)) -> list[str]:
    """Snakemake's arguments for the test cluster, through the SLURM profile."""
    return [
        "--profile",
        profile,
        "--workflow-profile",
        "none",
        # The test cluster has no accounting (sacct does not work) and a large
        # MinJobAge: job states come from squeue.
        "--slurm-status-command",
        "squeue",
        # Poll soon after submitting (the plugin's default waits 40 s).
        "--slurm-init-seconds-before-status-checks",
        "2",
        # No job may ask for more CPUs than the node has.
        "--cores",
        str(cpus),
    ]


def _slurm_jobs(proc, env):
    """Every SLURM job of the run (squeue keeps them for MinJobAge; the plugin
    names them by the run ID): comment (rule_<group>_<rule>), partition, state, CPUs,
    memory (MB)."""
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stdout + proc.stderr)
    assert run_id, "no 'SLURM run ID' in Snakemake's output: did it use the slurm executor?"
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "--name", run_id.group(1), "-o", "%k|%P|%T|%C|%m"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    jobs = []
    for line in out.splitlines():
        comment, partition, state, cpus, mem = line.split("|")
        assert mem.endswith("M"), line
        jobs.append((comment, partition, state, int(cpus), int(mem[:-1])))
    return jobs


def test_batches_ran_as_slurm_jobs_with_their_resources(runs):
    _, on_slurm, proc, env = runs
    manifest = pd.read_csv(on_slurm / "results/plan/manifest.tsv", sep="\t")
    jobs = _slurm_jobs(proc, env)
    # One SLURM job per batch (the profile packs none: see
    # test_batches_run_side_by_side) ...
    assert len(manifest) > len(manifest["analysis"].unique())
    assert sorted(job[0] for job in jobs) == sorted(
        f"rule_batches_{a}_analyse_batch" for a in manifest["analysis"]
    )
    for comment, partition, state, cpus, mem in jobs:
        analysis = comment.removeprefix("rule_batches_").removesuffix("_analyse_batch")
        # ... in the partition from the profile's knob, with its analysis's one
        # thread and memory.
        assert (partition, state, cpus) == (PARTITION, "COMPLETED", 1), comment
        assert mem == MEM_MB[analysis], (comment, mem)
    for batch in manifest["batch"]:
        assert (on_slurm / f"logs/batches/{batch}.log").stat().st_size > 0


def test_slurm_results_equal_the_local_run(runs):
    local, on_slurm, *_ = runs
    for name in ("results/plan/manifest.tsv", "results/plan/skipped.csv", "results/failed.csv"):
        with open(local / name) as a, open(on_slurm / name) as b:
            assert list(csv.reader(a)) == list(csv.reader(b)), name

    expected = read_table(local / "results/summary.fits")
    got = read_table(on_slurm / "results/summary.fits")
    assert got.colnames == expected.colnames
    assert len(got) == len(expected) > 0
    assert (expected["flag"] != 0).any() and (expected["flag"] == 0).any()
    for name in expected.colnames:
        if name in TIMING:
            continue
        a, b = np.asarray(expected[name]), np.asarray(got[name])
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=0, equal_nan=True, err_msg=name)
        else:
            assert a.tolist() == b.tolist(), name


def test_a_batch_that_hits_its_time_limit_resumes_in_the_retry(slurm, tmp_path):
    """SLURM's TIMEOUT sends SIGTERM (then SIGKILL): the batch saves its journal, the
    profile resubmits it with a doubled time limit, and the retry resumes."""
    from user_projects import analysed, make_project

    env, cpus = slurm
    # 100 s of work against a 1-minute limit (2 minutes for the retry).
    resources = {"runtime_setup_s": 0, "runtime_per_obs_s": 0.6, "mem_mb": 500}
    workdir = make_project(
        tmp_path, n=100, pause=1.0, min_runtime_minutes=1, analyses={"slow": resources}
    )
    snakemake(
        workdir,
        *slurm_args(cpus),
        env=env,
        timeout=900,
    )
    slurm_logs = "".join(p.read_text() for p in workdir.glob(".snakemake/slurm_logs/**/*.log"))
    assert "CANCELLED" in slurm_logs and "DUE TO TIME LIMIT" in slurm_logs, slurm_logs[-3000:]
    assert "stopped by SIGTERM after" in slurm_logs  # the first attempt saved its journal
    logs = (workdir / "logs/batches").glob("*.log")  # the retry's (Snakemake replaced the first)
    logs = "".join(p.read_text() for p in logs)
    resumed = re.search(r"resumed: (\d+) of 100 members already done", logs)
    assert resumed and int(resumed.group(1)) >= 30, logs[-3000:]
    assert len(analysed(workdir)) <= 100 + 10  # at most one checkpoint redone
    summary = read_table(workdir / "results/summary.fits")
    assert len(summary) == 100 and (np.asarray(summary["flag"]) == 0).all()


def _log_interval(log):
    """A batch's (first, last) timestamp in its log (logs/batches/<batch>.log)."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log.read_text(), re.M)
    assert stamps, f"no timestamped lines in {log}"
    return tuple(
        datetime.strptime(x, "%Y-%m-%d %H:%M:%S,%f").timestamp() for x in (stamps[0], stamps[-1])
    )


def test_batches_run_side_by_side(slurm, tmp_path):
    """Two 1-CPU batches of ~4.5 s each on the 2-CPU node, through the profile, with
    the packing it gives gridfit's batches: their runs overlap. A packed group job
    runs its batches one after another (plugin 2.8.0, jobstep 0.6.1: a blocking
    srun per batch under --jobs 1), which fails this test."""
    from user_projects import make_project

    env, cpus = slurm
    assert cpus >= 2, "side by side needs a node with 2 CPUs (STARBATCH_SLURM_CPUS)"
    resources = {"runtime_setup_s": 0, "runtime_per_obs_s": 1, "mem_mb": 300}
    workdir = make_project(tmp_path, n=6, pause=1.5, max_batch_size=3, analyses={"slow": resources})
    # The slow batches join gridfit's group, so the profile's group-components
    # for gridfit (the real analysis) decides whether they are packed. The
    # target skips the summary and plots (seconds, and not under test).
    snakemake(
        workdir,
        "results/slow/summary.fits",
        *slurm_args(cpus),
        "--groups",
        "analyse_batch=batches_gridfit",
        env=env,
        timeout=600,
    )
    logs = sorted((workdir / "logs/batches").glob("*.log"))
    assert len(logs) == 2, logs
    (start_a, end_a), (start_b, end_b) = sorted(_log_interval(log) for log in logs)
    shorter = min(end_a - start_a, end_b - start_b)
    assert shorter >= 3, f"a batch ran {shorter:.1f} s, expected ~4.5 s: nothing to compare"
    # Sequential runs overlap by nothing (the second starts after the first ends).
    overlap = min(end_a, end_b) - max(start_a, start_b)
    assert overlap >= shorter / 2, (
        "the two batches ran one after another, not side by side: from 0.0 to "
        f"{end_a - start_a:.1f} s and from {start_b - start_a:.1f} to {end_b - start_a:.1f} s "
        f"(overlap {overlap:.1f} s); a packed group job runs its batches in sequence "
        "(profiles/slurm: group-components)"
    )
