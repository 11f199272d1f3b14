"""The plan's record (engine/plan/record.py): an unchanged re-plan reads and writes
nothing; anything a plan is made from that changes makes it a full plan again."""

import json

import pandas as pd
import pytest
from test_planning import HEADER, make_files, write

from starbatch.engine.plan import make, record
from starbatch.engine.plan.make import PlanRequest, make_plan
from starbatch.engine.plan.table import TableError, load_tasks

ROWS = "".join(f"MyAnalysisTask,apo25m,f,o{i},1,1,\n" for i in range(5))


@pytest.fixture(autouse=True)
def trusted_directories(monkeypatch):
    """No racy window: files made by a test are milliseconds old, a survey's are not
    (test_fresh_directories_keep_no_record puts the window back)."""
    monkeypatch.setattr(record, "RACY_S", 0.0)


def setup(tmp_path, registry, skip=("o3",)):
    table = write(tmp_path, HEADER + ROWS)
    make_files(tmp_path / "sas", load_tasks(table, registry=registry).frame, skip=skip)
    return table


def run(tmp_path, registry, table, size=2, digest="", root=None):
    request = PlanRequest(
        table, [], root or tmp_path / "sas", tmp_path / "plan", dict.fromkeys(registry, size),
        batch_dir=tmp_path / "batches", workflow_digest=digest,
    )  # fmt: skip
    return make_plan(request, registry)


def test_unchanged_replan_reads_and_writes_nothing(tmp_path, registry, monkeypatch):
    table = setup(tmp_path, registry)
    first = run(tmp_path, registry, table)
    assert not first["unchanged"] and (tmp_path / "plan" / record.RECORD).exists()
    files = sorted((tmp_path / "plan").rglob("*"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged re-plan read the table")

    monkeypatch.setattr(make, "load_tasks", no_reading)
    again = run(tmp_path, registry, table)
    assert again["unchanged"]
    keep = ("tasks", "batches", "skipped")
    assert {k: again[k] for k in keep} == {k: first[k] for k in keep} == {
        "tasks": 5, "batches": 2, "skipped": 1,
    }  # fmt: skip
    assert again["plan_files_written"] == 0
    assert sorted((tmp_path / "plan").rglob("*")) == files
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes


def _new_file(tmp_path):
    (tmp_path / "sas").joinpath(*_path_of(tmp_path, "o3")).write_text("x")


def _path_of(tmp_path, obj):
    skipped = pd.read_csv(tmp_path / "plan" / "skipped.csv")
    return skipped.loc[skipped["obj"] == obj, "path"].iloc[0].split("/")


def _chmod_round_trip(tmp_path):
    """A chmod (say, a directory unreadable at the plan made readable): its ctime
    moves, its mtime does not."""
    directory = (tmp_path / "sas").joinpath(*_path_of(tmp_path, "o3")[:-1])
    mtime = directory.stat().st_mtime_ns
    directory.chmod(0o755)
    assert directory.stat().st_mtime_ns == mtime


def _record_without_outputs(tmp_path):
    path = tmp_path / "plan" / record.RECORD
    doc = json.loads(path.read_text())
    del doc["outputs"]
    path.write_text(json.dumps(doc))


CHANGES = {
    # what changes -> (how, the plan's counts after it)
    "a missing file appears": (_new_file, {"skipped": 0, "batches": 3}),
    "a row is appended": (
        lambda p: write(p, HEADER + ROWS + "MyAnalysisTask,apo25m,f,o9,1,1,\n"),
        {"skipped": 2},
    ),
    "a plan file is deleted": (
        lambda p: next((p / "plan" / "batches").glob("*.json")).unlink(),
        {"skipped": 1},
    ),
    "a plan file is edited": (
        lambda p: next((p / "plan" / "batches").glob("*.json")).write_text("{}"),
        {"skipped": 1},
    ),
    "a stray file in the plan": (
        lambda p: (p / "plan" / "batches" / "MyAnalysisTask-00000000-0009.json").write_text("{}"),
        {"skipped": 1, "plan_files_removed": 1},
    ),
    "a directory's permissions change": (_chmod_round_trip, {"skipped": 1}),
    "a record without its outputs": (_record_without_outputs, {"skipped": 1}),
    "the record is garbage": (
        lambda p: (p / "plan" / record.RECORD).write_bytes(b"\x00\xff"),
        {"skipped": 1},
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_makes_a_full_plan(tmp_path, registry, change):
    table = setup(tmp_path, registry)
    run(tmp_path, registry, table)
    how, expected = CHANGES[change]
    how(tmp_path)
    stats = run(tmp_path, registry, table)
    assert not stats["unchanged"]
    assert {k: stats[k] for k in expected} == expected
    # and the plan is recorded again: the next one is unchanged
    assert run(tmp_path, registry, table)["unchanged"]


def test_the_root_as_written_is_part_of_the_record(tmp_path, registry):
    table = setup(tmp_path, registry)
    run(tmp_path, registry, table)
    (tmp_path / "link").symlink_to(tmp_path / "sas")
    plan_dir = tmp_path / "plan"
    stats = run(tmp_path, registry, table, root=tmp_path / "link")
    assert not stats["unchanged"]
    assert "/link/" in pd.read_csv(plan_dir / "skipped.csv")["reason"][0]


@pytest.mark.parametrize("change", [{"size": 3}, {"digest": "another schema"}])
def test_sizes_and_the_workflow_are_part_of_the_record(tmp_path, registry, change):
    table = setup(tmp_path, registry)
    run(tmp_path, registry, table)
    assert not run(tmp_path, registry, table, **change)["unchanged"]


def test_fresh_directories_keep_no_key(tmp_path, registry, monkeypatch):
    """Files written seconds ago could change again within one mtime tick: the record
    seals the plan but keeps no key, so the next plan is a full one."""
    monkeypatch.setattr(record, "RACY_S", 2.0)
    table = write(tmp_path, HEADER + ROWS)
    make_files(tmp_path / "sas", load_tasks(table, registry=registry).frame)
    assert not run(tmp_path, registry, table)["unchanged"]
    doc = json.loads((tmp_path / "plan" / record.RECORD).read_text())
    assert doc["key"] is None
    assert record.whole(tmp_path / "plan", tmp_path / "plan" / "manifest.tsv") is None
    assert not run(tmp_path, registry, table)["unchanged"]


def test_a_deleted_model_file_is_not_hidden_by_the_record(tmp_path):
    model = tmp_path / "model.npz"
    model.write_text("x")
    plan_dir = tmp_path / "plan"
    (plan_dir / "batches").mkdir(parents=True)
    assert record.save(plan_dir, "k", {}, [], {}, [str(model)], {"tasks": 0}, batch_files=0)
    assert record.unchanged(plan_dir, "k", tmp_path, buildable=[]) == {"tasks": 0}
    assert record.unchanged(plan_dir, "other", tmp_path, buildable=[]) is None
    model.unlink()
    assert record.unchanged(plan_dir, "k", tmp_path, buildable=[]) is None
    assert record.unchanged(plan_dir, "k", tmp_path, buildable=[str(model)]) == {"tasks": 0}


def test_a_missing_table_still_gets_the_full_plans_error(tmp_path, registry):
    table = setup(tmp_path, registry)
    run(tmp_path, registry, table)
    table.unlink()
    with pytest.raises((TableError, FileNotFoundError), match="obs.csv"):
        run(tmp_path, registry, table)


def test_a_projects_own_model_file_changes_the_workflows_settings(tmp_path, monkeypatch):
    """A trained file in resources/models/ replaces the shipped one (model_path): the
    workflow's settings digest (scripts/plan.py) moves, so the plan is made again."""
    from starbatch.resources import project_models_state

    monkeypatch.chdir(tmp_path)
    before = project_models_state()
    (tmp_path / "resources/models").mkdir(parents=True)
    (tmp_path / "resources/models/apogeenet-v2.pt").write_bytes(b"weights")
    assert project_models_state() != before
    assert "apogeenet-v2.pt" in project_models_state()
