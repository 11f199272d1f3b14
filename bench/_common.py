"""Shared helpers for the benchmarks: real-format data sets made cheap with hard
links, task tables, the workflow command line, and honest time/memory figures."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from starbatch.offline.workflow import snakemake_command, write_config
from starbatch.resources import EMULATOR, PROJECT
from starbatch.workflow import SNAKEFILE

REPO = Path(__file__).resolve().parents[1]
# The demo's config (starbatch demo), whose grids and batch sizes the benchmarks use.
DEMO_CONFIG = PROJECT / "demo.yaml"

STARS_PER_FIELD = 500  # SDSS fields hold hundreds of stars; also bounds directory sizes
TABLE_COLUMNS = ["analysis", "release", "apred", "telescope", "field", "obj"]


@contextmanager
def scratch(workdir: Path | None, keep: bool, prefix: str):
    """A benchmark's working directory: ``workdir`` or a new temporary one, removed at the
    end (also after a failure) unless ``keep``."""
    path = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


# --- data -------------------------------------------------------------------------------


def field_name(k: int) -> str:
    return f"{k // 2 % 360:03d}{'+-'[k % 2]}{k // 720:02d}"


def star_names(n: int) -> pd.DataFrame:
    """``n`` distinct (field, obj) pairs shaped like APOGEE ones, deterministic."""
    i = pd.RangeIndex(n).to_series()
    fields = (i // STARS_PER_FIELD).map(field_name)
    objs = "2M" + (i % 10**8).map("{:08d}".format) + "+" + (i * 7919 % 10**7).map("{:07d}".format)
    return pd.DataFrame({"field": fields.to_numpy(), "obj": objs.to_numpy()})


def task_table(stars: pd.DataFrame, analyses: list[str]) -> pd.DataFrame:
    """One row per (analysis, star), analyses outermost, like the demo table."""
    parts = []
    for name in analyses:
        part = stars.assign(analysis=name, release="", apred="", telescope="apo25m")
        parts.append(part[TABLE_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def write_pool(directory: Path, n_files: int, seed: int = 1) -> list[Path]:
    """A few genuine synthetic apStar files (emulator spectra + noise) to link to."""
    import numpy as np

    from starbatch.methods.emulator import Emulator
    from starbatch.offline.demo import demo_stars
    from starbatch.offline.synthetic import make_synthetic_star, write_apstar

    emulator = Emulator.load(EMULATOR)
    stars = demo_stars(n_files, seed, (40, 200))
    paths = []
    for i, star in enumerate(stars.itertuples(index=False)):
        path = Path(directory) / f"pool-{i:03d}.fits"
        if not path.exists():
            rng = np.random.default_rng([seed, i])
            labels = [star.teff, star.logg, star.feh]
            flux, error, bitmask = make_synthetic_star(emulator, labels, star.snr, rng)
            meta = {"FIELD": star.field, "OBJID": star.obj, "SNR": float(star.snr)}
            write_apstar(path, flux, error, bitmask, meta)
        paths.append(path)
    return paths


def link_tree(root: Path, stars: pd.DataFrame, pool: list[Path]) -> None:
    """Hard-link every star's apStar path (the real SDSS layout) to a pool file:
    100k files cost directory entries, not 100k x 500 kB."""
    from starbatch.offline.demo import apstar_relpath

    made = set()
    for i, (field, obj) in enumerate(zip(stars["field"], stars["obj"], strict=True)):
        path = Path(root) / apstar_relpath(field, obj)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if not path.exists():
            os.link(pool[i % len(pool)], path)


def fit_files(workdir: Path, root: Path, members: list[tuple[str, str]]) -> dict[str, float]:
    """gridfit on (obj, relpath) members in one process, as a batch does it: load the
    grid once (model files are relative to ``workdir``), then read and fit each file
    in chunks with the analysis's own code. Returns {obj: teff}."""
    from starbatch.analyses.registry import BUILTIN
    from starbatch.engine.analysis import Task

    cls = BUILTIN["gridfit"]
    params = {p.name: p.default for p in cls.all_parameters()}
    analysis = cls()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        model = analysis.load(params)
    finally:
        os.chdir(cwd)
    teff = {}
    for start in range(0, len(members), cls.chunk_size):
        chunk = members[start : start + cls.chunk_size]
        tasks = [Task(0, {}, params, Path(root) / rel) for _, rel in chunk]
        for task in tasks:
            task.spectrum = cls.product.read(task.path, apstar_row=params["apstar_row"])
        for (obj, _), result in zip(chunk, analysis.analyse_many(model, tasks), strict=True):
            teff[obj] = result["teff"]
    return teff


# --- the workflow -------------------------------------------------------------------------


def real_config(workdir: Path, sas_root: Path, **overrides) -> Path:
    """A real-data config (demo off) for ``workdir``; the table is config/observations.csv."""
    config = {
        "observations": "config/observations.csv",
        "task_specs": [],
        "sas_base_dir": str(sas_root),
        "max_batch_size": 100,
        "max_failed_fraction": 0.5,
        "progress_seconds": 60,
        "tables_per_part": 200,
        "analyses": {},
        "grids": {},
        "demo": {"enabled": False},
    }
    return write_config(workdir, {**config, **overrides})


def snakemake_cmd(workdir: Path, cores: int, *args: str) -> list[str]:
    return snakemake_command(SNAKEFILE, workdir, *args, cores=cores)


# --- measuring ---------------------------------------------------------------------------


def self_peak_mb() -> float:
    """Peak RSS of this process since it was exec'd: VmHWM (KiB), which belongs to the
    address space. ru_maxrss carries over across exec from the forked parent, so a child
    of a large benchmark process would report the parent's size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tree_rss_kb(root_pid: int) -> int:
    """Summed VmRSS of ``root_pid`` and all its descendants, read from /proc."""
    parents, rss = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue  # exited meanwhile
        pid = int(entry.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root_pid]
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


class Measured:
    """Run a command; wall time, peak RSS of the largest process (getrusage of the
    children) and peak summed RSS of the whole process tree (sampled every 0.2 s)."""

    def __init__(self, cmd: list[str], cwd: Path | None = None, log: Path | None = None, env=None):
        self.cmd, self.cwd, self.log, self.env = cmd, cwd, log, env
        self.seconds = self.tree_peak_mb = 0.0
        self.stdout = ""

    def run(self, check: bool = True) -> Measured:
        out = open(self.log, "w") if self.log else subprocess.PIPE  # noqa: SIM115
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        peak = [0]
        done = threading.Event()
        sampler = threading.Thread(target=self._sample, args=(proc.pid, peak, done))
        sampler.start()
        stdout, _ = proc.communicate()
        self.seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        if self.log:
            out.close()
            stdout = Path(self.log).read_text()
        self.stdout = stdout or ""
        self.tree_peak_mb = peak[0] / 1024
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} failed:\n{self.stdout[-5000:]}")
        return self

    @staticmethod
    def _sample(pid: int, peak: list, done: threading.Event) -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_kb(pid))


# What Snakemake sets for every job (snakemake/shell.py) to its thread count: the
# variants outside Snakemake get the same, one thread per process, so that no variant
# oversubscribes the cores with BLAS threads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip


def one_thread_env() -> dict[str, str]:
    return {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}


def children_peak_mb() -> float:
    """Peak RSS of the largest child process waited for so far (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import snakemake

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, "
        f"Snakemake {snakemake.__version__}, pandas {pd.__version__}"
    )


def print_table(rows: list[list], header: list[str]) -> None:
    """A Markdown table, so the output pastes straight into docs/benchmarks.md."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
