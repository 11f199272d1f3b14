"""kill -9 of a running batch job, then a rerun: finished batches are not
recomputed, no partial output remains, and the results equal an uninterrupted run.

The rerun is what docs/troubleshooting.md tells users to do after an interrupted
run: `snakemake --unlock`, then the same command again. `--rerun-incomplete` is
passed explicitly here because the tests do not use profiles/default (which sets it):
a job killed after writing its output but before Snakemake recorded it as finished
would otherwise stop the rerun with an IncompleteFilesException.
"""

import time
from pathlib import Path

import pytest

from faults import (
    TARGETS,
    complete_batch_files,
    finished_run,
    kill_group,
    leftovers,
    run_snakemake,
    science,
    setup_workdir,
    start_snakemake,
    wait_for,
)

pytestmark = pytest.mark.slow


def _batch_caught_mid_analysis(workdir, since):
    """A gridfit batch past its set-up but not yet done, once another batch has finished."""

    def batch_mid_analysis():
        done = {p.stem for p in (workdir / "results/batches").glob("*.fits")}
        if not done:
            return None
        for log in sorted((workdir / "logs/batches").glob("gridfit-*.log")):
            try:  # Snakemake removes a job's old log when it starts the job
                if log.stem in done or log.stat().st_mtime < since:
                    continue  # finished, or a log left by an earlier attempt
                text = log.read_text()
            except FileNotFoundError:
                continue
            if "set-up (load) took" in text and "progress" not in text:
                return log.stem
        return None

    return batch_mid_analysis


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    reference = finished_run(tmp_path_factory)
    workdir = tmp_path_factory.mktemp("interrupted")
    setup_workdir(workdir)
    for attempt in range(4):
        since = time.time() - 1
        proc = start_snakemake(
            workdir, *TARGETS, "--rerun-incomplete", log=workdir / f"attempt{attempt}.log"
        )
        caught = wait_for(_batch_caught_mid_analysis(workdir, since), proc)
        kill_group(proc)
        if caught and not (workdir / f"results/batches/{caught}.fits").exists():
            break
        # Too late (the batch finished before the kill): unlock and try the next one.
        assert run_snakemake(workdir, "--unlock").returncode == 0
    else:
        pytest.fail("never caught a batch mid-analysis in 4 attempts")
    after_kill = {
        "batches": complete_batch_files(workdir),
        "mtimes": {
            p.stem: p.stat().st_mtime_ns for p in (workdir / "results/batches").glob("*.fits")
        },
        "stray_temporaries": [
            tmp
            for tmp in leftovers(workdir / "results")
            if not Path(tmp).name.startswith(".")
            or Path(tmp).with_name(Path(tmp).name[1:-4]).exists()
        ],
        "summary_exists": (workdir / "results/summary.fits").exists(),
    }
    locked = run_snakemake(workdir, *TARGETS, "--rerun-incomplete")
    unlock = run_snakemake(workdir, "--unlock")
    rerun = run_snakemake(workdir, *TARGETS, "--rerun-incomplete")
    return workdir, reference, caught, after_kill, locked, unlock, rerun


def test_kill_leaves_only_complete_batch_tables(interrupted):
    workdir, _, caught, after_kill, *_ = interrupted
    assert caught not in after_kill["batches"]  # it was killed mid-analysis
    assert after_kill["batches"], "no batch had finished before the kill"
    # A partial write lives only under a hidden temporary name next to a missing
    # output (there is none unless the kill hit a write); the rerun replaces it.
    assert after_kill["stray_temporaries"] == []
    assert not after_kill["summary_exists"]


def test_rerun_after_kill_needs_unlock_and_says_so(interrupted):
    *_, locked, unlock, rerun = interrupted
    # kill -9 leaves Snakemake's lock behind; the next run names the cure.
    assert locked.returncode != 0
    assert "cannot be locked" in locked.stderr and "--unlock" in locked.stderr
    assert unlock.returncode == 0
    assert rerun.returncode == 0, rerun.stderr[-3000:]


def test_rerun_does_not_recompute_finished_batches(interrupted):
    workdir, _, caught, after_kill, *_ = interrupted
    now = {p.stem: p.stat().st_mtime_ns for p in (workdir / "results/batches").glob("*.fits")}
    assert {b: now[b] for b in after_kill["mtimes"]} == after_kill["mtimes"]
    assert caught in now
    # Only the interrupted and the never-started batches ran again.
    rerun_log = (workdir / "logs/batches" / f"{caught}.log").read_text()
    assert "wrote results/batches" in rerun_log


def test_results_after_rerun_equal_an_uninterrupted_run(interrupted):
    workdir, reference, *_ = interrupted
    complete_batch_files(workdir)
    assert leftovers(workdir / "results") == []
    got = science(workdir / "results/summary.fits")
    expected = science(reference / "results/summary.fits")
    assert got.keys() == expected.keys()
    assert got == expected
    failed = (workdir / "results/failed.csv").read_text()
    assert failed == (reference / "results/failed.csv").read_text()
