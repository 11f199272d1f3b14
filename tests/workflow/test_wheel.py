"""A wheel is all a project needs: built from the checkout, installed (not editable)
with its dependencies, as the README says (`pip install ".[torch]"`), into a fresh
virtual environment, and used in an empty directory outside the repository as a new
user would: `starbatch init`, `starbatch run`, `starbatch status`, `starbatch rerun`,
and the packaged workflow as a `module:` of the user's own Snakefile."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smk import module_snakefile
from starbatch.engine.results import read_table

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(REPO)],
        check=True, capture_output=True, text=True, cwd=base,
    )  # fmt: skip
    (wheel,) = dist.glob("starbatch-*.whl")
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    install = subprocess.run(
        [str(env / "bin" / "pip"), "install", "--quiet", f"{wheel}[torch]"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return env


def sh(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command of the fresh environment, as a user's shell with it activated runs it."""
    path = f"{env / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    environ = {"PATH": path, "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(list(args), cwd=cwd, env=environ, capture_output=True, text=True)


def test_the_wheel_holds_the_workflow_and_no_checkout_is_on_the_path(venv, tmp_path):
    probe = sh(
        venv, "python", "-c",
        "import starbatch, starbatch.workflow as w, starbatch.resources as r;"
        "print(starbatch.__file__); print(w.SNAKEFILE.is_file(), r.REAL_SAS.is_dir())",
        cwd=tmp_path,
    )  # fmt: skip
    where, found = probe.stdout.split("\n")[:2]
    assert str(venv) in where and str(REPO) not in where, probe.stdout + probe.stderr
    assert found == "True True"
    path = sh(venv, "starbatch", "workflow-path", cwd=tmp_path).stdout.strip()
    assert path.startswith(str(venv)) and path.endswith("workflow/Snakefile")


def test_init_run_status_in_an_empty_directory(venv, tmp_path):
    made = sh(venv, "starbatch", "init", "proj", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "proj"
    assert (project / "config/config.yaml").is_file() and (project / "linedepth.py").is_file()
    again = sh(venv, "starbatch", "init", "proj", cwd=tmp_path)
    assert again.returncode == 1 and "nothing changed" in again.stderr

    run = sh(venv, "starbatch", "run", "--cores", "2", cwd=project)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    summary = read_table(project / "results/summary.fits")
    table = (project / "config/observations.csv").read_text().splitlines()
    assert len(summary) == len(table) - 1  # every example row analysed
    depth = summary[summary["analysis"] == "linedepth"]["depth"]
    assert len(depth) == 4 and all(0 < d < 1 for d in depth)
    assert {"snr", "gridfit", "cannon", "apogeenet", "gridfit_visit"} <= set(summary["analysis"])

    status = sh(venv, "starbatch", "status", cwd=project)
    assert status.returncode == 0, status.stderr
    lines = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert lines["linedepth"][1:3] == ["4", "0"]  # done, failed
    rerun = sh(venv, "starbatch", "rerun", "failed", "--cores", "2", cwd=project)
    assert rerun.returncode == 0 and "nothing to rerun: no failed rows" in rerun.stdout
    report = sh(venv, "starbatch", "run", "--cores", "2", "--report", "report.html", cwd=project)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (project / "report.html").stat().st_size > 100_000


def test_the_packaged_workflow_as_a_module_of_your_own_snakefile(venv, tmp_path):
    assert sh(venv, "starbatch", "init", "proj", cwd=tmp_path).returncode == 0
    project = tmp_path / "proj"
    table = project / "config/observations.csv"
    table.write_text("\n".join(table.read_text().splitlines()[:5]) + "\n")  # snr, linedepth
    snakefile = sh(venv, "starbatch", "workflow-path", cwd=tmp_path).stdout.strip()
    (project / "Snakefile").write_text(module_snakefile(snakefile))
    run = sh(venv, "snakemake", "--cores", "2", cwd=project)
    assert run.returncode == 0, run.stderr[-4000:]
    summary = read_table(project / "results/summary.fits")
    assert sorted(set(summary["analysis"])) == ["linedepth", "snr"]
