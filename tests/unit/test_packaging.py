"""The package lists agree: pyproject.toml (what `pip install .` declares), the pip
path (requirements*.txt), the rules' conda runtime (workflow/envs/starbatch.yaml) and
the full conda environment (environment.yml). (tests/workflow/test_wheel.py installs it.)"""

import re
from pathlib import Path

import tomllib
import yaml

from starbatch.workflow import CONDA_ENV, SNAKEFILE

REPO = Path(__file__).resolve().parents[2]
# conda-forge names that differ from PyPI names.
CONDA_TO_PIP = {"pytorch": "torch", "python-duckdb": "duckdb"}


def _split(line: str) -> tuple[str, str]:
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
    name = CONDA_TO_PIP.get(name.lower(), name.lower())
    return name, spec.replace(" ", "")


def _requirements(path: Path, follow: bool = True) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            if follow:
                out.update(_requirements(path.parent / line[3:].strip()))
            continue
        name, spec = _split(line)
        out[name] = spec
    return out


def _conda(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    # What conda-forge lacks comes from PyPI in the environment's pip section.
    deps += [d for x in env["dependencies"] if isinstance(x, dict) for d in x.get("pip", [])]
    deps = [d for d in deps if not d.startswith(("python>", "pip", "-e"))]
    return dict(_split(d) for d in deps)


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _listed(specs) -> dict[str, str]:
    return dict(_split(s) for s in specs)


def test_runtime_lists_agree():
    project = _pyproject()
    runtime = {
        **_listed(project["dependencies"]),
        **_listed(project["optional-dependencies"]["torch"]),
    }
    assert _requirements(REPO / "requirements.txt") == runtime
    assert _conda(CONDA_ENV) == runtime


def test_development_lists_agree():
    test_extra = _listed(_pyproject()["optional-dependencies"]["test"])
    assert _requirements(REPO / "requirements-dev.txt", follow=False) == test_extra
    everything = _requirements(REPO / "requirements-dev.txt")
    assert _conda(REPO / "environment.yml") == everything
    # The rules' runtime holds no test or lint tool.
    assert not set(test_extra) & set(_conda(CONDA_ENV))


def test_bench_extra_matches_bench_requirements():
    bench = _listed(_pyproject()["optional-dependencies"]["bench"])
    assert _requirements(REPO / "bench/requirements.txt") == bench


def test_snakemake_is_pinned_to_9():
    assert _requirements(REPO / "requirements.txt")["snakemake"].startswith("==9.")


def test_every_rule_declares_the_runtime_environment():
    rules = sorted((SNAKEFILE.parent / "rules").glob("*.smk"))
    text = "\n".join(p.read_text() for p in rules)
    assert text.count("conda:") == text.count("script:") > 0
    assert "CONDA_ENV = str(CONDA_ENV)" in text and CONDA_ENV.is_file()
