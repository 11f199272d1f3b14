"""Helpers for the fault-injection tests (bad inputs, kill -9, concurrent runs).

One finished run of the tiny workflow is made once per test session and copied
wherever a test needs a workdir with results to damage or to compare against.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from smk import snakemake, snakemake_cmd, tiny_config
from starbatch.engine.plan.read import read_plan
from starbatch.engine.results import read_table
from starbatch.offline.demo import TEST_ANALYSES, demo_stars, demo_table

N_STARS = 12
# 12 synthetic + 2 real + 1 corrupt star per analysis (the missing one is skipped):
# gridfit and snr both in batches of 5, so 6 batches of several seconds each.
BATCH_SIZES = {"gridfit": {"max_batch_size": 5}, "snr": {"max_batch_size": 5}}
# Everything but the plots: what the fault tests compare (plots take seconds).
TARGETS = ("results/summary.fits", "results/failed.csv")
SCIENCE = ("analysis", "batch", "obj", "field", "teff", "teff_err", "logg", "feh")
SCIENCE += ("chi2_red", "n_pix", "snr_median", "n_good", "flag", "flag_names", "error")

_FINISHED: dict[str, Path] = {}


def setup_workdir(workdir: Path) -> dict:
    """The fault tests' tiny config and demo table in ``workdir``."""
    config = tiny_config(workdir, n_stars=N_STARS, analyses=BATCH_SIZES, tables_per_part=10)
    demo = config["demo"]
    table = demo_table(demo_stars(N_STARS, demo["seed"], demo["snr"]), *TEST_ANALYSES)
    table.to_csv(workdir / "config/observations.csv", index=False)
    return config


def run_snakemake(workdir: Path, *args: str, env: dict | None = None):
    return snakemake(workdir, *args, check=False, env=env)


def start_snakemake(workdir: Path, *args: str, log: Path) -> subprocess.Popen:
    """Snakemake in its own process group (session), so the whole tree can be killed."""
    with open(log, "w") as fh:
        return subprocess.Popen(
            snakemake_cmd(workdir, *args),
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 the process group of ``proc`` (Snakemake and every job it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(condition: Callable[[], object], proc: subprocess.Popen, timeout: float = 120):
    """Poll ``condition`` until it returns something truthy; None if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            return condition() or None
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition.__name__}")


def finished_run(tmp_path_factory) -> Path:
    """A complete, uninterrupted run (made once per session). Do not modify it:
    copy it with copy_run()."""
    if "run" not in _FINISHED:
        workdir = tmp_path_factory.mktemp("finished")
        setup_workdir(workdir)
        proc = run_snakemake(workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _FINISHED["run"] = workdir
    return _FINISHED["run"]


def copy_run(src: Path, dst: Path) -> Path:
    """A copy with modification times kept, so Snakemake sees a finished run."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def digests(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (relative path -> digest); a file that
    vanishes while being listed (a concurrent writer's temporary) is left out."""
    out = {}
    for path in sorted(directory.rglob("*")):
        try:
            out[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
        except (FileNotFoundError, IsADirectoryError):
            continue
    return out


def science(path: Path) -> dict[tuple, tuple]:
    """The result rows of a summary, keyed by (analysis, obj), without timings."""
    table = read_table(path)
    cols = [c for c in SCIENCE if c in table.colnames]
    rows = {}
    for row in table:
        values = []
        for c in cols:
            v = row[c]
            if np.ma.is_masked(v):
                v = None
            elif isinstance(v, (float, np.floating)):
                v = None if np.isnan(v) else round(float(v), 9)
            else:
                v = v.item() if hasattr(v, "item") else v
            values.append(v)
        rows[(row["analysis"], row["obj"])] = tuple(values)
    return rows


def complete_batch_files(workdir: Path) -> dict[str, int]:
    """Every batch table present: it must open and hold one row per planned member.
    Returns {batch: rows}."""
    out = {}
    for path in sorted((workdir / "results/batches").glob("*.fits")):
        table = read_table(path)
        plan = read_plan(workdir / "results/plan/batches" / f"{path.stem}.json")
        assert len(table) == table.meta["NMEMBER"] == len(plan["members"]), path
        done = np.isfinite(np.asarray(table["time_s"])) & (np.asarray(table["flag"]) >= 0)
        assert done.all(), path
        out[path.stem] = len(table)
    return out


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted writer could leave behind."""
    return sorted(str(p) for p in directory.rglob("*") if p.name.endswith(".tmp"))
