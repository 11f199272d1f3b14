"""The library's shape: layers whose imports point one way, batch jobs that load no
offline or plotting code, and one place that decides where the library comes from."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    out = subprocess.run([lint], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken." in out.stdout


def test_a_batch_job_imports_no_offline_plotting_or_torch_code():
    loaded = _loaded_after(
        "from starbatch.engine.runner import run_batch\n"
        "from starbatch.analyses.registry import load_registry\n"
        "import starbatch.analyses.gridfit\n"
        "load_registry()"
    )
    starbatch = {m for m in loaded if m.startswith("starbatch")}
    assert "starbatch.analyses.gridfit" in starbatch
    assert not {m for m in starbatch if m.startswith(("starbatch.offline", "starbatch.report"))}
    # Heavy libraries wait for load(): planning imports every analysis module.
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "matplotlib", "scipy")}


def test_planning_imports_no_method_numerics():
    loaded = _loaded_after(
        "from starbatch.engine.plan.make import make_plan\n"
        "from starbatch.analyses.registry import load_registry\nload_registry()"
    )
    assert not {m for m in loaded if m.startswith(("starbatch.methods", "starbatch.offline"))}


def test_one_place_decides_where_the_library_comes_from():
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.smk", "Snakefile", "*.toml", "*.cfg", "*.ini"],
        capture_output=True, text=True, cwd=REPO, check=True,
    ).stdout.split()  # fmt: skip
    hits = []
    # pytest's pythonpath = ["tests"] puts the tests' own helpers on the path: not the library
    placing = re.compile(r'sys\.path\.(insert|append|extend)|^pythonpath\s*=(?! \["tests"\])', re.M)
    for name in tracked:
        text = (REPO / name).read_text()
        if placing.search(text):
            hits.append(name)
    # The workflow's own place (its rules, its scripts' helper), for an uninstalled checkout.
    assert hits == [
        "src/starbatch/workflow/rules/common.smk",
        "src/starbatch/workflow/scripts/_importable.py",
    ], hits
