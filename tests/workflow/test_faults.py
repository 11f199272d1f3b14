"""Faults outside the happy path, injected for real through the workflow: a user's
analysis that segfaults, hangs or eats memory on one star, a batch job killed twice on
the same member, a disk that fills during the plan, a batch or the collection, the whole
run killed at several moments, a model file that appears after a run, a read-only SAS
tree, a working directory whose path has a space and a non-ASCII letter, and spectrum
paths that are a symlink loop or a dangling link.

The data: links to a real DR17 apStar file under made-up star names, analysed by a user
analysis (analysis_modules) that misbehaves on the star its ``poison`` parameter names."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from faults import kill_group, run_snakemake, science, start_snakemake, wait_for
from smk import snakemake_cmd
from starbatch.engine import flags
from starbatch.engine.results import read_table
from user_projects import real_star, user_project

pytestmark = pytest.mark.slow

FAULTY = """
import ctypes
import os
import signal
import time

import numpy as np

from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.sdss.products import APSTAR


class Faulty(Analysis):
    \"\"\"Median S/N; on the star named by ``poison`` it does ``fault``.\"\"\"

    name = "faulty"
    product = APSTAR
    parameters = (Parameter("fault", str, "none"), Parameter("poison", str, ""))
    columns = (Column("snr", "", "median flux / error"),)
    resources = {"runtime_per_obs_s": 0.05, "mem_mb": 600}

    def analyse(self, model, task):
        if task.keys["obj"] == task.params["poison"]:
            fault = task.params["fault"]
            if fault == "segfault":
                ctypes.string_at(0)
            elif fault == "hang":
                time.sleep(3600)
            elif fault == "memory":
                hog = []
                while True:
                    hog.append(np.ones(50_000_000 // 8))  # 50 MB a step, touched
            elif fault == "kill_job":  # the batch job's own process, as a lost node would
                os.kill(os.getppid(), signal.SIGKILL)
                time.sleep(3600)
        s = task.spectrum
        return {"snr": float(np.median(s.flux[~s.bad] / s.error[~s.bad]))}


class FaultyChunked(Faulty):
    name = "faulty_chunked"
    chunk_size = 4
"""
TARGETS = ("results/summary.fits", "results/failed.csv")


def obj(i: int) -> str:
    return f"2M{i:08d}+0000000"


def make_project(workdir: Path, groups: dict, sas: Path | None = None, **config) -> Path:
    """``groups``: {(analysis, fault): (n members, poisoned member or None)}; every
    member a link to the real file (in ``sas``, default workdir/sas)."""
    sas = sas or workdir / "sas"
    rows, start = [], 0
    for (analysis, fault), (n, poisoned) in groups.items():
        for k in range(n):
            real_star(sas, obj(start + k))
            poison = obj(start + poisoned) if poisoned is not None else ""
            rows.append(f"{analysis},apo25m,F0,{obj(start + k)},{fault},{poison}")
        start += n
    header = "analysis,telescope,field,obj,fault,poison"
    limits = {"analyses": {"faulty": {"time_limit_per_obs_s": 4}}}
    return user_project(workdir, "faulty.py", FAULTY, header, rows, sas, **{**limits, **config})


def rows_by_obj(workdir: Path) -> dict:
    table = read_table(workdir / "results/summary.fits")
    return {(r["analysis"], r["fault"], r["obj"]): r for r in table}


# --- poison members: one flagged row each, the rest analysed, in the first run -------------


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    groups = {
        ("faulty", "segfault"): (5, 2),
        ("faulty", "hang"): (5, 2),
        ("faulty", "memory"): (5, 2),
        ("faulty_chunked", "segfault"): (6, 4),
    }
    workdir = make_project(tmp_path_factory.mktemp("poisoned"), groups)
    started = time.monotonic()
    proc = run_snakemake(workdir, *TARGETS)
    return workdir, proc, time.monotonic() - started


@pytest.mark.parametrize(
    "analysis, fault, flag, says",
    [
        ("faulty", "segfault", flags.CRASHED, ["SIGSEGV"]),
        ("faulty", "hang", flags.TIMEOUT, ["time limit 4 s per observation", "time_limit"]),
        ("faulty", "memory", flags.OUT_OF_MEMORY, ["mem_mb=600"]),
        ("faulty_chunked", "segfault", flags.CRASHED, ["SIGSEGV"]),
    ],
)
def test_a_poison_member_costs_one_flagged_row_in_the_first_run(
    poisoned, analysis, fault, flag, says
):
    workdir, proc, _ = poisoned
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {k: r for k, r in rows_by_obj(workdir).items() if k[:2] == (analysis, fault)}
    bad = {k[2]: r for k, r in rows.items() if r["flag"] & flags.FAILED}
    assert list(bad) == [rows[next(iter(rows))]["poison"]]  # the poisoned star alone
    (row,) = bad.values()
    assert row["flag"] == flag, row["error"]
    assert row["path"] in row["error"] and all(s in row["error"] for s in says), row["error"]
    good = [r for r in rows.values() if not r["flag"] & flags.FAILED]
    assert len(good) == len(rows) - 1 and all(np.isfinite(r["snr"]) for r in good)


def test_the_batch_log_says_what_happened_and_set_up_is_paid_again(poisoned):
    workdir, proc, seconds = poisoned
    for log in (workdir / "logs/batches").glob("faulty*.log"):
        text = log.read_text()
        if "hang" in text:
            assert "time limit: 4 s per observation (config analyses.faulty" in text
        if "FaultyChunked" in text or log.name.startswith("faulty_chunked"):
            assert "each is tried again alone" in text
    assert seconds < 120  # the hang cost its time limit, not an hour


def test_a_member_the_whole_job_died_on_twice_is_flagged_not_run_again(tmp_path):
    """The batch job itself is killed on the same star (as a lost node or SLURM's kill
    would): the retry analyses that star alone, dies again, and the third attempt flags
    it instead of a third death; every other member has its result."""
    make_project(tmp_path, {("faulty", "kill_job"): (5, 3)})
    proc = run_snakemake(tmp_path, *TARGETS, "--retries", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_by_obj(tmp_path)
    bad = [r for r in rows.values() if r["flag"] & flags.FAILED]
    assert [r["obj"] for r in bad] == [obj(3)]
    assert bad[0]["flag"] == flags.CRASHED and "killed 2 times" in bad[0]["error"]
    (log,) = (tmp_path / "logs/batches").glob("faulty-*.log")
    assert "each is analysed alone" in log.read_text() or "killed 2 times" in log.read_text()


CGROUP_MB = 1500


@pytest.fixture
def memory_limited():
    """A memory cgroup of CGROUP_MB (v1 or v2, as a SLURM job's memory limit is): a
    command that runs its arguments inside it."""
    _root()
    name = f"starbatch-test-{os.getpid()}"
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    if (v1 / "memory.limit_in_bytes").exists():
        group, limit = v1 / name, "memory.limit_in_bytes"
    elif "memory" in (v2 / "cgroup.subtree_control").read_text().split():
        group, limit = v2 / name, "memory.max"
    else:
        pytest.skip("no memory cgroup controller to limit a run with")
    group.mkdir()
    (group / limit).write_text(str(CGROUP_MB << 20))
    yield ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs")]
    deadline = time.monotonic() + 30
    while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    group.rmdir()


def test_a_member_the_kernel_stops_at_the_jobs_memory_limit_is_out_of_memory(
    tmp_path, memory_limited
):
    """The job's cgroup limit is below what its mem_mb says (a node's limit, another
    job's share): the kernel's OOM killer, not the supervisor, stops the worker on the
    poisoned star. That star is an OUT_OF_MEMORY row saying so, the others are done."""
    make_project(
        tmp_path,
        {("faulty", "memory"): (5, 2)},
        analyses={"faulty": {"time_limit_per_obs_s": 60, "mem_mb": 64000}},
    )
    proc = subprocess.run(
        [*memory_limited, *snakemake_cmd(tmp_path, *TARGETS, "--cores", "1")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_by_obj(tmp_path)
    bad = [r for r in rows.values() if r["flag"] & flags.FAILED]
    assert [r["obj"] for r in bad] == [obj(2)]
    assert bad[0]["flag"] == flags.OUT_OF_MEMORY, bad[0]["error"]
    assert "OOM killer" in bad[0]["error"] and "SIGKILL" in bad[0]["error"]


# --- a full disk: nothing half-written, the earlier summary kept, the next run completes ---


def _root():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")


class Filler:
    """Fills a file system and keeps it full (taking whatever is freed) from the moment
    ``trigger()`` first returns true, until stopped."""

    def __init__(self, mount: Path, trigger):
        self.path, self.trigger = mount / "filler", trigger
        self.filled = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set() and not self.trigger():
            time.sleep(0.002)
        with open(self.path, "ab", buffering=0) as fh:
            while not self.stop.is_set():
                try:
                    fh.write(b"\0" * (1 << 16))
                except OSError:
                    self.filled.set()
                    try:
                        fh.write(b"\0" * 4096)
                    except OSError:
                        time.sleep(0.002)

    def free(self):
        self.stop.set()
        self.thread.join(timeout=10)
        self.path.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path):
    _root()
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fits_files_open(workdir: Path) -> list[str]:
    """Every FITS file under results/ that cannot be read whole (none may be)."""
    from astropy.io import fits

    broken = []
    for path in (workdir / "results").rglob("*.fits"):
        try:
            with fits.open(path) as hdus:
                for hdu in hdus:
                    hdu.data  # noqa: B018 (reads it)
        except Exception as exc:
            broken.append(f"{path}: {exc}")
    return broken


MOMENTS = {
    "plan": lambda w: (w / "logs/plan.log").exists(),
    "batch": lambda w: any("set-up (load) took" in p.read_text() for p in _logs(w, "batches")),
    "collection": lambda w: any(_logs(w, "collect")),
}


def _logs(workdir: Path, kind: str) -> list[Path]:
    try:
        return [p for p in (workdir / "logs" / kind).rglob("*.log")]
    except OSError:
        return []


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_disk_that_fills_loses_nothing(small_disk, moment):
    sas = small_disk.parent / "sas"
    groups = {("faulty", "none"): (8, None)}
    workdir = make_project(small_disk / "work", groups, sas=sas, max_batch_size=4)
    assert run_snakemake(workdir, *TARGETS).returncode == 0
    before = (workdir / "results/summary.fits").read_bytes()
    # Two rows more, then a run during which the disk fills.
    make_project(workdir, {("faulty", "none"): (10, None)}, sas=sas, max_batch_size=4)
    for log in (workdir / "logs").rglob("*.log"):
        log.unlink()
    filler = Filler(small_disk, lambda: MOMENTS[moment](workdir))
    try:
        failed = run_snakemake(workdir, *TARGETS)
    finally:
        filler.free()
    assert filler.filled.is_set(), "the disk never filled"
    assert failed.returncode != 0
    assert (workdir / "results/summary.fits").read_bytes() == before
    assert _fits_files_open(workdir) == []
    run_snakemake(workdir, "--unlock")
    again = run_snakemake(workdir, *TARGETS)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(read_table(workdir / "results/summary.fits")) == 10
    assert _fits_files_open(workdir) == []


# --- the whole run killed at several moments: the rerun's summary is an uninterrupted one's ---


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = make_project(tmp_path_factory.mktemp("reference"), {("faulty", "none"): (12, None)})
    workdir = _config(workdir)
    assert run_snakemake(workdir, *TARGETS).returncode == 0
    return workdir


def _config(workdir: Path) -> Path:
    config = workdir / "config/config.yaml"
    text = config.read_text().replace("max_batch_size: 1000", "max_batch_size: 3")
    config.write_text(text)
    return workdir


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_killed_as_a_whole_resumes_to_the_same_summary(tmp_path, uninterrupted, moment):
    workdir = _config(make_project(tmp_path, {("faulty", "none"): (12, None)}))
    proc = start_snakemake(workdir, *TARGETS, log=tmp_path / "killed.log")
    caught = wait_for(lambda: MOMENTS[moment](workdir), proc)
    kill_group(proc)
    assert caught, f"the run ended before the {moment}"
    assert run_snakemake(workdir, "--unlock").returncode == 0
    rerun = run_snakemake(workdir, *TARGETS, "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert science(workdir / "results/summary.fits") == science(
        uninterrupted / "results/summary.fits"
    )


# --- a failed plan never drops a table edit ------------------------------------------------


def test_a_plan_killed_after_it_began_writing_is_made_again(tmp_path):
    workdir = make_project(tmp_path, {("faulty", "none"): (4, None)}, max_batch_size=2)
    assert run_snakemake(workdir, *TARGETS).returncode == 0
    # What a plan killed half-way leaves: its record gone, the old manifest back.
    make_project(workdir, {("faulty", "none"): (6, None)}, max_batch_size=2)
    manifest = workdir / "results/plan/manifest.tsv"
    old_mtime = manifest.stat().st_mtime_ns
    (workdir / "results/plan/record.json").unlink()
    os.utime(workdir / "config/observations.csv", ns=(old_mtime - 10**9, old_mtime - 10**9))
    proc = run_snakemake(workdir, *TARGETS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "planning again" in proc.stderr
    assert len(read_table(workdir / "results/summary.fits")) == 6


# --- a model file that appears after a run, and a damaged one ------------------------------


def test_a_model_file_placed_after_a_run_makes_its_rows_stale(tmp_path):
    from starbatch.resources import MODELS

    workdir = tmp_path / "proj"
    workdir.mkdir()
    make_project(workdir, {("faulty", "none"): (2, None)})
    table = workdir / "config/observations.csv"
    rows = [f"cannon,apo25m,F0,{obj(k)},," for k in range(2)]
    table.write_text(table.read_text() + "\n".join(rows) + "\n")
    assert run_snakemake(workdir).returncode == 0
    starbatch = [sys.executable, "-m", "starbatch.cli"]
    status = [*starbatch, "status"]
    before = subprocess.run(status, cwd=workdir, capture_output=True, text=True, check=True)
    assert _stale(before.stdout, "cannon") == 0

    # A project's own model (what train_cannon writes): another file, same name.
    models = workdir / "resources/models"
    models.mkdir(parents=True)
    with np.load(MODELS / "cannon-v2.npz") as shipped:
        arrays = dict(shipped)
    arrays["theta"] = arrays["theta"] * 1.0001
    np.savez(models / "cannon-v2.npz", **arrays)
    after = subprocess.run(status, cwd=workdir, capture_output=True, text=True, check=True)
    assert after.stdout.count("\n") == before.stdout.count("\n")  # the table, printed once
    assert _stale(after.stdout, "cannon") == 2 and _stale(after.stdout, "faulty") == 0
    plain = run_snakemake(workdir)
    assert plain.returncode == 0
    assert "2 row(s) were made with a model file other than" in plain.stderr
    assert "rerun them with: starbatch rerun stale" in plain.stderr

    # Rerun them from the project directory, without naming the workflow.
    rerun = subprocess.run(
        [*starbatch, "rerun", "stale", "--cores", "2"], cwd=workdir,
        capture_output=True, text=True,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = subprocess.run(status, cwd=workdir, capture_output=True, text=True, check=True)
    assert _stale(final.stdout, "cannon") == 0

    # A damaged model file: one line naming it.
    (models / "cannon-v2.npz").write_bytes(b"not a model")
    broken = subprocess.run(
        [*starbatch, "rerun", "stale", "--cores", "2"], cwd=workdir,
        capture_output=True, text=True,
    )  # fmt: skip
    assert broken.returncode != 0
    (log,) = (workdir / "logs/batches").glob("cannon-*.log")
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "resources/models/cannon-v2.npz" in errors[0], errors


def _stale(status_text: str, analysis: str) -> int:
    for line in status_text.splitlines():
        parts = line.split()
        if parts and parts[0] == analysis:
            return int(parts[5])  # stale model
    return 0


# --- odd places: a read-only SAS tree, a path with a space and a non-ASCII letter, bad links --


def test_odd_paths_and_links_are_rows_not_failures(tmp_path):
    _root()
    sas = tmp_path / "sas ro"
    workdir = tmp_path / "a work dir ü"
    workdir.mkdir()
    make_project(workdir, {("faulty", "none"): (6, None)}, sas=sas)
    links = {}
    for k, how in ((4, "loop"), (5, "dangling")):
        path = real_star(sas, obj(k))
        path.unlink()
        if how == "loop":
            path.symlink_to(path.name)
        else:
            path.symlink_to(tmp_path / "gone.fits")
        links[obj(k)] = how
    subprocess.run(["mount", "--bind", str(sas), str(sas)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(sas)], check=True)
        with pytest.raises(OSError):
            (sas / "probe").write_text("x")
        proc = run_snakemake(workdir)
    finally:
        subprocess.run(["umount", "-l", str(sas)], check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["obj"]: r for r in read_table(workdir / "results/summary.fits")}
    for name in links:
        assert rows[name]["flag"] == flags.READ_ERROR, rows[name]["error"]
        assert name in rows[name]["error"]
    assert sum(not r["flag"] for r in rows.values()) == 4
    assert (workdir / "results/plots/flags.png").exists()


def test_journal_counts_survive_a_rewrite(tmp_path):
    """The journal's memory of deaths outlives the rewrite each resumed run makes."""
    from starbatch.engine.journal import Journal

    journal = Journal(tmp_path / "j", "d")
    journal.start({}, {}, 1)
    journal.in_hand([3, 4])
    journal.close()
    past = Journal(tmp_path / "j", "d").read()
    assert past.died == {3: 1, 4: 1} and past.attempts == 1
    again = Journal(tmp_path / "j", "d")
    again.start({}, past.died, 2)
    again.in_hand([3])
    again.close()
    past = Journal(tmp_path / "j", "d").read()
    assert past.died == {3: 2, 4: 1} and past.attempts == 2
    text = (tmp_path / "j").read_text().splitlines()
    assert json.loads(text[1]) == {"attempt": 2, "died": {"3": 1, "4": 1}}
