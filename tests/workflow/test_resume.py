"""Nothing lost, nothing stale, on the real workflow: a batch killed (kill -9, SIGTERM)
half-way through resumes from its journal; changing only an insignificant parameter
reruns nothing; degenerate plans end cleanly; the status target reports the run.

The data: tests/slow_project.py."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from faults import kill_group, run_snakemake, science, start_snakemake, wait_for
from smk import planned_jobs
from user_projects import N, analysed, make_project

pytestmark = pytest.mark.slow


def batch_log(workdir: Path) -> str:
    (log,) = (workdir / "logs/batches").glob("slow-*.log")
    return log.read_text()


def batch_job_pid(workdir: Path) -> int | None:
    """The running batch job: a python running run_batch in ``workdir``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if "run_batch.py" in cmdline and Path(os.readlink(entry / "cwd")) == workdir:
                return int(entry.name)
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = make_project(tmp_path_factory.mktemp("reference"))
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def half_done(workdir):
    def condition():
        return len(analysed(workdir)) >= N // 2

    return condition


def test_kill_9_half_way_resumes_from_the_journal(tmp_path, reference):
    workdir = make_project(tmp_path)
    proc = start_snakemake(workdir, log=tmp_path / "killed.log")
    assert wait_for(half_done(workdir), proc, timeout=300)
    kill_group(proc)
    before = analysed(workdir)
    assert len(before) < N
    assert run_snakemake(workdir, "--unlock").returncode == 0
    rerun = run_snakemake(workdir, "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    log = batch_log(workdir)
    resumed = int(log.split("resumed: ")[1].split(" of ")[0])
    # Journaled every 10 members: at most the last 10 analysed were lost with the kill.
    assert len(before) - 10 <= resumed <= len(before) and resumed >= N // 2 - 10
    assert f"resumed: {resumed} of {N} members already done" in log
    after = analysed(workdir)[len(before) :]
    assert sorted(after) == list(range(resumed + 2, N + 2))  # table lines start at 2
    assert science(workdir / "results/summary.fits") == science(reference / "results/summary.fits")
    assert not list((workdir / "results/batches").glob(".*journal*"))


def test_sigterm_half_way_saves_the_journal_and_the_rerun_resumes(tmp_path, reference):
    workdir = make_project(tmp_path)
    proc = start_snakemake(workdir, log=tmp_path / "terminated.log")
    assert wait_for(half_done(workdir), proc, timeout=300)
    pid = wait_for(lambda: batch_job_pid(workdir), proc, timeout=30)
    os.kill(pid, signal.SIGTERM)
    assert proc.wait(timeout=120) != 0  # the job failed; Snakemake says so and stops
    stopped = batch_log(workdir)
    done = int(stopped.split("stopped by SIGTERM after ")[1].split(" of ")[0])
    assert done == len(analysed(workdir))  # SIGTERM flushes everything finished

    rerun = run_snakemake(workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed: {done} of {N} members already done" in batch_log(workdir)
    assert len(analysed(workdir)) == N  # nobody analysed twice
    assert science(workdir / "results/summary.fits") == science(reference / "results/summary.fits")


def test_changing_only_an_insignificant_parameter_reruns_nothing(tmp_path):
    workdir = make_project(tmp_path, n=12)
    assert run_snakemake(workdir).returncode == 0
    (batch,) = (workdir / "results/batches").glob("*.fits")
    mtime = batch.stat().st_mtime_ns
    time.sleep(1.1)
    make_project(tmp_path, n=12, device="cuda:1")  # the table changes only in `device`
    assert run_snakemake(workdir).returncode == 0  # re-plans, reruns no batch
    assert batch.stat().st_mtime_ns == mtime
    assert planned_jobs(workdir) == {}
    (settings,) = json.loads((workdir / "results/plan/insignificant.json").read_text()).values()
    assert settings["device"] == "cuda:1"


def test_a_plan_with_nothing_to_run_ends_cleanly(tmp_path):
    workdir = make_project(tmp_path, n=5, missing=5)
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 failed observation(s)" in proc.stderr and "5 not run for missing files" in proc.stderr
    failed = (workdir / "results/failed.csv").read_text().splitlines()
    assert len(failed) == 1 + 5 and all("NOT_RUN" in line for line in failed[1:])
    status = run_snakemake(workdir, "status")
    assert status.returncode == 0, status.stderr[-3000:]
    assert "slow" in (workdir / "logs/status.log").read_text()


def test_status_target_counts_the_run(tmp_path):
    workdir = make_project(tmp_path, n=6, missing=1)
    assert run_snakemake(workdir).returncode == 0
    assert run_snakemake(workdir, "status").returncode == 0
    text = (workdir / "logs/status.log").read_text()
    row = next(line for line in text.splitlines() if line.startswith("slow "))
    assert row.split()[1:6] == ["5", "0", "1", "0", "0"]
