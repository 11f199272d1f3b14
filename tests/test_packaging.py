"""The pip path (requirements*.txt) and the conda path (environment.yml) must
install the same packages at the same versions."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names.
CONDA_TO_PIP = {"pytorch": "torch"}


def _requirements(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            out.update(_requirements(path.parent / line[3:].strip()))
            continue
        name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
        out[name.lower()] = spec.replace(" ", "")
    return out


def _conda() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str):
            continue
        name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep).groups()
        name = CONDA_TO_PIP.get(name.lower(), name.lower())
        if name != "python":
            out[name] = spec.replace(" ", "")
    return out


def test_pip_and_conda_list_the_same_packages_and_versions():
    pip = _requirements(REPO / "requirements-dev.txt")
    assert pip, "no requirements found"
    assert _conda() == pip


def test_snakemake_is_pinned_to_9():
    assert _requirements(REPO / "requirements.txt")["snakemake"].startswith("==9.")
