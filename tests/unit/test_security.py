"""No code execution from data: model files and tables are never unpickled, and no
table value reaches a shell or escapes the data root.

Static checks read the source (so adding a bare np.load, torch.load, pickle import
or shell directive fails here); dynamic checks feed hostile values through the
real entry points and look for their side effects.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smk import REPO
from starbatch.workflow import SCRIPTS

SOURCES = REPO / "src"
WORKFLOW = SOURCES / "starbatch" / "workflow"
PYTHON_SOURCES = sorted(SOURCES.rglob("*.py"))
WORKFLOW_SOURCES = sorted([WORKFLOW / "Snakefile", *WORKFLOW.rglob("*.smk")])
# Modules that deserialise arbitrary objects (code execution on load).
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<not a constant>"
    return "<missing>"


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


@pytest.fixture(scope="module")
def trees():
    return {path: ast.parse(path.read_text(), str(path)) for path in PYTHON_SOURCES}


def test_the_scan_sees_the_loaders():
    # Guard against a vacuous pass (e.g. the source moved): the loaders exist.
    assert len(PYTHON_SOURCES) > 20 and len(WORKFLOW_SOURCES) >= 5
    text = "\n".join(p.read_text() for p in PYTHON_SOURCES)
    assert text.count("np.load(") >= 3


def test_every_np_load_refuses_pickles(trees):
    bad = [
        _where(path, call)
        for path, tree in trees.items()
        for call in _calls(tree)
        if _dotted(call.func) in ("np.load", "numpy.load")
        and _keyword(call, "allow_pickle") is not False
    ]
    assert bad == [], f"np.load without allow_pickle=False: {bad}"


def test_every_torch_load_is_weights_only(trees):
    bad = [
        _where(path, call)
        for path, tree in trees.items()
        for call in _calls(tree)
        if _dotted(call.func).endswith("torch.load") and _keyword(call, "weights_only") is not True
    ]
    assert bad == [], f"torch.load without weights_only=True: {bad}"


def test_no_pickle_or_unsafe_yaml_anywhere(trees):
    bad = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                names = set()
            if names & UNSAFE_MODULES:
                bad.append(f"{_where(path, node)} imports {sorted(names & UNSAFE_MODULES)}")
        for call in _calls(tree):
            name = _dotted(call.func)
            if name.endswith(("read_pickle", "to_pickle")):
                bad.append(f"{_where(path, call)} calls {name}")
            if name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
                bad.append(f"{_where(path, call)} calls {name} (use yaml.safe_load)")
    for path in WORKFLOW_SOURCES:
        text = path.read_text()
        for word in ("pickle", "np.load", "torch.load", "yaml.load("):
            if word in text:
                bad.append(f"{path.relative_to(REPO)} mentions {word}")
    assert bad == []


def test_no_shell_anywhere(trees):
    bad = []
    for path in WORKFLOW_SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(r"\s*(shell|run)\s*:", line):
                bad.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    for path, tree in trees.items():
        for call in _calls(tree):
            name = _dotted(call.func)
            if name in (
                "os.system",
                "os.popen",
                "subprocess.getoutput",
                "subprocess.getstatusoutput",
            ):
                bad.append(f"{_where(path, call)} calls {name}")
            if name.startswith("subprocess.") and _keyword(call, "shell") not in (
                "<missing>",
                False,
            ):
                bad.append(f"{_where(path, call)} calls {name} with shell=")
    assert bad == []


# Hostile table values: each must be rejected by validation, naming the column,
# and must leave no trace (no file created, no plan written).
HOSTILE = [
    ("obj", "x;touch${IFS}pwned"),
    ("obj", "$(touch pwned)"),
    ("obj", "`touch pwned`"),
    ("obj", "x|touch pwned"),
    ("obj", "x&&touch pwned"),
    ("obj", "x>pwned"),
    ("obj", "-rf"),
    ("obj", ".."),
    ("obj", "../../../../tmp/pwned"),
    ("field", "../../.."),
    ("field", "/etc"),
    ("field", "a/b"),
    ("telescope", "apo25m;touch pwned"),
    ("grid", "../../pwned"),
    ("grid", "$(touch pwned)"),
]


@pytest.mark.parametrize("column,value", HOSTILE)
def test_hostile_table_value_is_rejected_naming_the_column(tmp_path, column, value):
    row = {"analysis": "gridfit", "telescope": "apo25m", "field": "f", "obj": "o", "grid": ""}
    row[column] = value
    quoted = ",".join('"' + v.replace('"', '""') + '"' for v in row.values())
    table = tmp_path / "obs.csv"
    table.write_text(",".join(row) + "\n" + quoted + "\n")
    (tmp_path / "sas").mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "plan.py"), "--table", table, "--root", "sas"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert f"line 2, column '{column}'" in proc.stderr and "unsafe value" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.csv", "sas"]  # nothing made
    assert not list(Path("/tmp").glob("pwned"))


def test_a_pickled_model_file_is_refused_without_running_its_code(tmp_path):
    """A grid .npz holding a pickled object whose unpickling would create a file."""
    from starbatch.methods.gridfit.grid import load_grid

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    grid = tmp_path / "evil.npz"
    arrays = {k: np.arange(3.0) for k in ("teff", "logg", "feh", "wavelength")}
    arrays["flux"] = np.array([Payload()], dtype=object)
    arrays["valid"] = np.ones((3, 3, 3), bool)
    np.savez(grid, **arrays)
    with pytest.raises(ValueError, match="evil.npz") as info:
        load_grid(grid)
    assert "pickle" in str(info.value).lower()
    assert not marker.exists()
    # The payload is live: a loader that allowed pickles would have run it.
    with np.load(grid, allow_pickle=True) as d:
        d["flux"]
    assert marker.exists()


def test_a_pickled_batch_plan_is_not_code(tmp_path):
    """Batch plans are JSON read with json.load: a pickle in their place is just bad JSON."""
    import pickle  # only to make the hostile file

    from starbatch.engine.plan.read import read_plan

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    plan = tmp_path / "batch.json"
    plan.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="batch.json"):
        read_plan(plan)
    assert not marker.exists()
    plan.write_text(json.dumps({"batch": "x"}))
    assert read_plan(plan) == {"batch": "x"}
