"""Analyses from outside starbatch: a user's module named in the config, an installed
package's entry point, and starbatch used as a Snakemake module from a user's own
Snakefile. Each is a project directory outside the repository, run on the real DR17
files; the analysis is the example `starbatch init` writes (the README's)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from smk import module_snakefile, pip_install_target, snakemake
from starbatch.analyses.registry import BUILTIN, RegistryError, load_registry
from starbatch.resources import PROJECT, REAL_SAS
from starbatch.workflow import SNAKEFILE

EXAMPLE = PROJECT / "linedepth.py"

M_GIANT = "apo25m,000+02,2M17335483-2753043"
DWARF = "apo25m,K04_083+13,2M19485057+5005279"
TABLE = f"""analysis,telescope,field,obj,wavelength,verbose
linedepth,{M_GIANT},,
linedepth,{DWARF},,true
linedepth,{M_GIANT},15890.0,
linedepth,{DWARF},15890.0,
snr,{M_GIANT},,
"""


def make_project(root: Path, **config) -> Path:
    """A project holding only a config, a table (and whatever the test adds)."""
    (root / "config").mkdir(parents=True)
    (root / "config/observations.csv").write_text(TABLE)
    base = {
        "observations": "config/observations.csv",
        "sas_base_dir": str(REAL_SAS),
        "max_batch_size": 100,
        "max_failed_fraction": 0.5,
        "demo": {"enabled": False},
    }
    (root / "config/config.yaml").write_text(yaml.safe_dump({**base, **config}))
    return root


def check_results(project: Path) -> None:
    summary = pd.read_csv(project / "results/summary.csv")
    depth = summary[summary["analysis"] == "linedepth"]
    assert len(depth) == 4
    # wavelength is significant (two batches of two stars); verbose is not (no third).
    assert depth.groupby("batch").size().tolist() == [2, 2]
    assert sorted(depth["wavelength"].unique()) == [15770.0, 15890.0]
    assert depth["depth"].between(0.01, 1.0).all(), depth["depth"]
    assert (depth["flag"] == 0).all()
    assert (summary["analysis"] == "snr").sum() == 1


@pytest.mark.slow
def test_analysis_module_from_the_config(tmp_path):
    project = make_project(tmp_path / "project", analysis_modules=["linedepth.py"])
    shutil.copy(EXAMPLE, project / "linedepth.py")
    snakemake(project)
    check_results(project)
    assert "linedepth" in (project / "results/plan/manifest.tsv").read_text()


@pytest.mark.slow
def test_analysis_from_an_installed_package_entry_point(tmp_path):
    package = tmp_path / "linedepth-plugin"
    package.mkdir()
    shutil.copy(EXAMPLE, package / "linedepth_plugin.py")
    (package / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "linedepth-plugin"
            version = "1.0"

            [project.entry-points."starbatch.analyses"]
            linedepth = "linedepth_plugin:LineDepth"

            [tool.setuptools]
            py-modules = ["linedepth_plugin"]
            """
        )
    )
    site = tmp_path / "site"
    pip_install_target(package, site)
    project = make_project(tmp_path / "project")
    snakemake(project, env={**os.environ, "PYTHONPATH": str(site)})
    check_results(project)


@pytest.mark.slow
def test_starbatch_as_a_snakemake_module(tmp_path):
    project = make_project(tmp_path / "project", analysis_modules=["linedepth.py"])
    shutil.copy(EXAMPLE, project / "linedepth.py")
    (project / "Snakefile").write_text(module_snakefile(SNAKEFILE))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(project)]
    proc = subprocess.run(
        [*cmd, "-s", str(project / "Snakefile")], capture_output=True, text=True, cwd=project
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_results(project)


# --- the registry in process: what it finds and what it refuses -------------------------


def write_module(path: Path, body: str) -> str:
    path.write_text(
        "from starbatch.engine.analysis import Analysis, Column\n"
        "from starbatch.engine.params import Parameter\n"
        "from starbatch.sdss.products import APSTAR\n\n" + textwrap.dedent(body)
    )
    return str(path)


def test_registry_adds_a_users_module_to_the_builtins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLE, tmp_path / "linedepth.py")
    registry = load_registry(["linedepth.py"])
    assert set(registry) == set(BUILTIN) | {"linedepth"}
    assert registry["linedepth"].significant_names() == ("apstar_row", "wavelength", "width")


@pytest.mark.parametrize(
    "body, message",
    [
        ("raise RuntimeError('no licence server')\n", "failed to import: RuntimeError: no licence"),
        ("X = 1\n", "defines no Analysis subclass"),
        (
            "class A(Analysis):\n    product = APSTAR\n    def analyse(self, m, t): return {}\n",
            "no `name`",
        ),
        (
            "class A(Analysis):\n    name = 'a'\n    def analyse(self, m, t): return {}\n",
            "no `product`",
        ),
        (
            "class A(Analysis):\n    name = 'a'\n    product = APSTAR\n"
            "    parameters = (Parameter('x', list, []),)\n"
            "    def analyse(self, m, t): return {}\n",
            "parameter 'x' has type 'list'; use int, float, bool or str",
        ),
        (
            "class A(Analysis):\n    name = 'gridfit'\n    product = APSTAR\n"
            "    def analyse(self, m, t): return {}\n",
            "'gridfit' is already taken by starbatch (built in)",
        ),
        ("class A(Analysis):\n    name = 'a-b'\n    product = APSTAR\n", "letters, digits and _"),
        ("class A(Analysis):\n    name = 'a'\n    product = APSTAR\n", "implements neither"),
        (
            "class A(Analysis):\n    name = 'a'\n    product = APSTAR\n"
            "    parameters = (Parameter('n', int, 'five'),)\n"
            "    def analyse(self, m, t): return {}\n",
            "parameter 'n': default 'five' is not a int",
        ),
        (
            "class A(Analysis):\n    name = 'a'\n    product = APSTAR\n"
            "    columns = (Column('x', '', '', 'float99'),)\n"
            "    def analyse(self, m, t): return {}\n",
            "column 'x': dtype 'float99' is not a numpy dtype",
        ),
        (
            "class A(Analysis):\n    name = 'a'\n    product = APSTAR\n"
            "    parameters = (Parameter('line', int, 0),)\n"
            "    def analyse(self, m, t): return {}\n",
            "parameter 'line' clashes with a bookkeeping column",
        ),
    ],
)
def test_registry_names_the_module_and_what_to_fix(tmp_path, body, message):
    path = write_module(tmp_path / "mine.py", body)
    with pytest.raises(RegistryError) as err:
        load_registry([path])
    assert message in str(err.value)
    assert repr(path) in str(err.value)


def test_registry_reports_a_missing_module_and_file(tmp_path):
    with pytest.raises(RegistryError) as err:
        load_registry([str(tmp_path / "nosuch.py"), "no_such_module_anywhere"])
    assert len(err.value.problems) == 2
    assert "no such file" in str(err.value) and "ModuleNotFoundError" in str(err.value)


def test_a_bad_user_module_stops_the_workflow_before_any_work(tmp_path):
    project = make_project(tmp_path / "project", analysis_modules=["mine.py"])
    write_module(project / "mine.py", "class A(Analysis):\n    product = APSTAR\n")
    proc = snakemake(project, check=False)
    assert proc.returncode != 0
    assert "analysis_modules: 'mine.py', class 'A': no `name`" in proc.stdout + proc.stderr
    assert not (project / "results").exists()
