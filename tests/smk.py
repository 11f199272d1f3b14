"""Running the real workflow in a temporary directory, on a tiny config."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from starbatch.offline.workflow import snakemake_command, write_config
from starbatch.workflow import SNAKEFILE

REPO = Path(__file__).resolve().parents[1]

TINY_GRID = {"teff": [4000, 5500, 500], "logg": [1.0, 4.0, 1.0], "feh": [-1.0, 0.0, 0.5]}


def tiny_config(workdir: Path, n_stars: int = 10, **overrides) -> dict:
    config = {
        "observations": "config/observations.csv",
        "task_specs": [],
        "sas_base_dir": "resources/demo/sas",
        "max_batch_size": 3,
        "max_failed_fraction": 0.5,
        "progress_seconds": 1,
        "tables_per_part": 2,
        "analyses": {"snr": {"max_batch_size": 5}},
        "grids": {"demo": TINY_GRID},
        "demo": {"enabled": True, "n_stars": n_stars, "seed": 7, "snr": [60, 120]},
    }
    config.update(overrides)
    write_config(workdir, config)
    return config


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The command line that runs the repository's workflow in ``workdir``."""
    return snakemake_command(SNAKEFILE, workdir, *args)


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow in workdir; args are extra command-line arguments (later
    ones win, e.g. a second --cores); env replaces the environment; after timeout
    seconds Snakemake is killed and the test fails with its output so far."""
    cmd = snakemake_cmd(workdir, *args)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=workdir, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        out, errout = (
            x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
            for x in (err.stdout, err.stderr)
        )
        raise AssertionError(
            f"snakemake {' '.join(args)} took more than {timeout} s:\n{out}\n{errout}"
        ) from None
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Job counts by rule from a dry run (after the checkpoint has run)."""
    out = snakemake(workdir, "-n", "--quiet", "rules").stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def pip_install_target(source: Path, target: Path) -> None:
    """A real (non-editable) pip install of ``source`` into the folder ``target``,
    offline and without building in isolation (the tests' environment has setuptools)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def module_snakefile(snakefile: str | Path) -> str:
    """A user's own Snakefile that uses the packaged workflow as a module (as
    docs/development.md shows it)."""
    return textwrap.dedent(
        f"""
        configfile: "config/config.yaml"


        module starbatch:
            snakefile:
                "{snakefile}"
            config:
                config


        use rule * from starbatch
        """
    )
