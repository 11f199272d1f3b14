"""Driving the workflow from Python (the tests and the benchmarks): the command line
that runs a Snakefile in a working directory, and the config it reads there."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def snakemake_command(snakefile: str | Path, workdir: str | Path, *args: str, cores: int = 2):
    """``python -m snakemake`` on ``snakefile`` in ``workdir``; later args win."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        *args,
    ]


def write_config(workdir: str | Path, config: dict) -> Path:
    """``config`` as ``workdir``/config/config.yaml, where the workflow looks for it."""
    path = Path(workdir) / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path
