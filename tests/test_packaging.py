"""The package lists agree: pyproject.toml (what `pip install .` declares), the pip
path (requirements*.txt), the rules' conda runtime (workflow/envs/starbatch.yaml) and
the full conda environment (environment.yml). And `pip install .` really installs a
working library, with its shipped data, that does not need the checkout."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

from smk import pip_install_target

REPO = Path(__file__).resolve().parents[1]
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
    assert _conda(REPO / "workflow/envs/starbatch.yaml") == runtime


def test_development_lists_agree():
    test_extra = _listed(_pyproject()["optional-dependencies"]["test"])
    assert _requirements(REPO / "requirements-dev.txt", follow=False) == test_extra
    everything = _requirements(REPO / "requirements-dev.txt")
    assert _conda(REPO / "environment.yml") == everything
    # The rules' runtime holds no test or lint tool.
    assert not set(test_extra) & set(_conda(REPO / "workflow/envs/starbatch.yaml"))


def test_bench_extra_matches_bench_requirements():
    bench = _listed(_pyproject()["optional-dependencies"]["bench"])
    assert _requirements(REPO / "bench/requirements.txt") == bench


def test_snakemake_is_pinned_to_9():
    assert _requirements(REPO / "requirements.txt")["snakemake"].startswith("==9.")


def test_every_rule_declares_the_runtime_environment():
    rules = sorted((REPO / "workflow/rules").glob("*.smk"))
    text = "\n".join(p.read_text() for p in rules)
    assert text.count("conda:") == text.count("script:") > 0
    assert 'CONDA_ENV = str(REPO / "workflow/envs/starbatch.yaml")' in text


def test_pip_install_gives_a_library_with_its_data_and_no_checkout(tmp_path):
    """A real (non-editable) install into a fresh target, imported from elsewhere."""
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info/ beside it
    shutil.copytree(REPO / "scripts/starbatch", source / "scripts/starbatch")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    target = tmp_path / "site"
    pip_install_target(source, target)
    probe = (
        "import starbatch, starbatch.resources as r\n"
        "from starbatch.analyses.registry import BUILTIN\n"
        "assert 'site' in starbatch.__file__, starbatch.__file__\n"
        "assert r.EMULATOR.is_file() and r.PRIOR.is_file()\n"
        "for name in ('apogeenet', 'cannon'):\n"
        "    cls = BUILTIN[name]\n"
        "    path = cls.model_files({'model': 'v2'})[0]\n"
        "    assert 'site' in path and __import__('os').path.isfile(path), path\n"
        "print(starbatch.__version__)\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _pyproject()["version"]
