"""Two invocations on one directory: the second refuses cleanly (Snakemake's lock),
the first is not disturbed and finishes with the same results as an undisturbed run."""

import shutil

import pytest

from faults import (
    TARGETS,
    complete_batch_files,
    copy_run,
    digests,
    finished_run,
    leftovers,
    run_snakemake,
    science,
    start_snakemake,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    reference = finished_run(tmp_path_factory)
    workdir = copy_run(reference, tmp_path_factory.mktemp("concurrent") / "run")
    # Work for the first run (~10 s): every batch and everything downstream.
    gone = sorted((workdir / "results/batches").glob("*.fits"))
    for path in gone:
        path.unlink()
    shutil.rmtree(workdir / "results/collect", ignore_errors=True)  # only with many batches
    for path in workdir.glob("results/**/summary.*"):
        path.unlink()
    first = start_snakemake(workdir, *TARGETS, log=workdir / "first.log")
    try:

        def first_run_holds_the_lock():
            return list((workdir / ".snakemake/locks").glob("*"))

        assert wait_for(first_run_holds_the_lock, first), (workdir / "first.log").read_text()
        before = digests(workdir / "results")
        second = run_snakemake(workdir, *TARGETS)
        after = digests(workdir / "results")
        first.wait(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    return workdir, reference, gone, first, second, before, after


def test_second_invocation_refuses_with_the_lock_message(two_runs):
    *_, second, before, after = two_runs
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stderr
    assert "Traceback" not in second.stderr
    # It refused before touching anything. The first run goes on meanwhile: files it
    # finishes appear, Snakemake deletes an output when the job rewriting it starts, and
    # the first run's plan seals itself anew (its record names the copied directories'
    # times), so the other files present both times are compared, and no plan file may go.
    kept = (before.keys() & after.keys()) - {"plan/record.json"}
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert {k for k in before if k.startswith("plan/")} <= kept | {"plan/record.json"}


def test_first_invocation_finishes_correctly(two_runs):
    workdir, reference, gone, first, *_ = two_runs
    assert first.returncode == 0, (workdir / "first.log").read_text()[-3000:]
    batches = complete_batch_files(workdir)
    assert all(p.stem in batches for p in gone)
    assert leftovers(workdir / "results") == []
    assert science(workdir / "results/summary.fits") == science(reference / "results/summary.fits")
