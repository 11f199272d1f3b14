import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from starbatch.engine.plan.batches import assign_batches, group_batches
from starbatch.engine.plan.files import write_plan
from starbatch.engine.plan.table import TableError, expand_spec, load_tasks, validate

HEADER = "analysis,telescope,field,obj,a,order,verbose\n"
WORKED_EXAMPLE = (
    "MyAnalysisTask,apo25m,250+00,2M123456+123456,3,5,\n"
    "MyAnalysisTask,apo25m,250+00,2M123456+123456,3,10,\n"
    "MyAnalysisTask,apo25m,omegaCen,2M003341+289732,3,5,\n"
    "MyAnalysisTask,apo25m,omegaCen,2M003341+289732,3,10,\n"
    "MyAnalysisTask,apo25m,250+00,2M004562-1234872,-1,5,\n"
)


def write(tmp_path: Path, text: str, name="obs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def batches_of(frame: pd.DataFrame, max_batch_size=100):
    ids = assign_batches(frame, max_batch_size)
    return {b: list(frame.loc[ids == b, "obj"]) for b in dict.fromkeys(ids)}, ids


def test_worked_example_gives_exactly_three_batches(tmp_path, registry):
    tasks = load_tasks(write(tmp_path, HEADER + WORKED_EXAMPLE), registry=registry)
    groups, ids = batches_of(tasks.frame)
    assert len(groups) == 3
    assert sorted(len(m) for m in groups.values()) == [1, 2, 2]
    frame = tasks.frame.assign(batch=ids)
    by_params = {
        (float(r.a), int(r.order)): sorted(frame.loc[frame.batch == r.batch, "obj"])
        for r in frame.itertuples()
    }
    assert by_params == {
        (3.0, 5): ["2M003341+289732", "2M123456+123456"],
        (3.0, 10): ["2M003341+289732", "2M123456+123456"],
        (-1.0, 5): ["2M004562-1234872"],
    }


def test_float_spelling_and_insignificant_parameters_do_not_split(tmp_path, registry):
    text = HEADER + (
        "MyAnalysisTask,apo25m,f,o1,5,3,true\n"
        "MyAnalysisTask,apo25m,f,o2,5.0,3,false\n"
        "MyAnalysisTask,apo25m,f,o3,5.000,,\n"  # blank order = default 3
    )
    groups, _ = batches_of(load_tasks(write(tmp_path, text), registry=registry).frame)
    assert list(groups.values()) == [["o1", "o2", "o3"]]


def test_max_batch_size_splits_in_table_order_and_appending_keeps_ids(tmp_path, registry):
    rows = "".join(f"MyAnalysisTask,apo25m,f,o{i},1,1,\n" for i in range(5))
    frame = load_tasks(write(tmp_path, HEADER + rows), registry=registry).frame
    groups, ids = batches_of(frame, max_batch_size=2)
    assert list(groups.values()) == [["o0", "o1"], ["o2", "o3"], ["o4"]]
    more = rows + "".join(f"MyAnalysisTask,apo25m,f,o{i},1,1,\n" for i in range(5, 8))
    frame2 = load_tasks(write(tmp_path, HEADER + more, "obs2.csv"), registry=registry).frame
    groups2, _ = batches_of(frame2, max_batch_size=2)
    unchanged = list(groups)[:2]
    assert all(groups2[b] == groups[b] for b in unchanged)
    assert len(groups2) == 4
    assert all(b.startswith("MyAnalysisTask-") and b[-5] == "-" for b in groups2)


def test_per_analysis_max_batch_size(tmp_path, registry):
    rows = "".join(f"MyAnalysisTask,apo25m,f,o{i},1,1,\n" for i in range(4))
    frame = load_tasks(write(tmp_path, HEADER + rows), registry=registry).frame
    groups, _ = batches_of(frame, {"MyAnalysisTask": 3})
    assert [len(v) for v in groups.values()] == [3, 1]


@pytest.mark.parametrize(
    "row,expected",
    [
        ("Nope,apo25m,f,o,1,1,", r"obs.csv line 2, column 'analysis': unknown analysis 'Nope'"),
        ("MyAnalysisTask,apo25m,,o,1,1,", r"line 2, column 'field': .*required"),
        ("MyAnalysisTask,apo25m,f,o,abc,1,", r"line 2, column 'a': expected a number"),
        ("MyAnalysisTask,apo25m,f,o,1,2.5,", r"line 2, column 'order': expected an integer"),
        ("MyAnalysisTask,apo25m,f,o,1,1,maybe", r"line 2, column 'verbose': expected true/false"),
        ("MyAnalysisTask,apo25m,f,../../x,1,1,", r"line 2, column 'obj': unsafe"),
        ("MyAnalysisTask,apo25m,f/g,o,1,1,", r"line 2, column 'field': unsafe"),
        ("MyAnalysisTask,apo25m,f,/etc/passwd,1,1,", r"line 2, column 'obj': unsafe"),
    ],
)
def test_validation_errors_name_line_and_column(tmp_path, registry, row, expected):
    with pytest.raises(TableError, match=expected):
        load_tasks(write(tmp_path, HEADER + row + "\n"), registry=registry)


def test_all_problems_are_reported_together(tmp_path, registry):
    text = HEADER + "MyAnalysisTask,apo25m,f,o,abc,1,\nMyAnalysisTask,apo25m,f,o2,1,x,\n"
    with pytest.raises(TableError) as info:
        load_tasks(write(tmp_path, text), registry=registry)
    assert len(info.value.problems) == 2


def test_duplicate_rows_are_an_error_naming_both_lines(tmp_path, registry):
    text = HEADER + "MyAnalysisTask,apo25m,f,o,1,1,\nMyAnalysisTask,apo25m,f,o,1.0,1,\n"
    with pytest.raises(TableError, match=r"duplicate.*line 2.*line 3"):
        load_tasks(write(tmp_path, text), registry=registry)


def test_unknown_column_and_parameter_of_other_analysis(tmp_path, registry):
    with pytest.raises(TableError, match="unknown column 'colour'"):
        load_tasks(
            write(tmp_path, HEADER.strip() + ",colour\n" + "MyAnalysisTask,apo25m,f,o,1,1,,red\n"),
            registry=registry,
        )
    text = "analysis,telescope,field,obj,grid\nMyAnalysisTask,apo25m,f,o,demo\n"
    with pytest.raises(TableError, match="MyAnalysisTask does not take 'grid'"):
        load_tasks(write(tmp_path, text), registry=registry)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", "empty"),
        ("telescope,field,obj\napo25m,f,o\n", "missing required column 'analysis'"),
        ("analysis,telescope,field,obj\n", "no tasks"),
    ],
)
def test_empty_or_headless_tables(tmp_path, registry, text, expected):
    with pytest.raises(TableError, match=expected):
        load_tasks(write(tmp_path, text), registry=registry)


def test_batch_mode_spec_expands_lists_and_shares_scalars(registry):
    spec = {
        "analysis": "MyAnalysisTask",
        "telescope": "apo25m",
        "field": ["250+00", "omegaCen"],
        "obj": ["2M123456+123456", "2M003341+289732"],
        "a": 3,
        "order": 5,
    }
    frame = validate(expand_spec(spec, "spec.yaml task 1"), registry).frame
    assert list(frame["field"]) == ["250+00", "omegaCen"]
    assert set(frame["telescope"]) == {"apo25m"}
    groups, _ = batches_of(frame)
    assert len(groups) == 1


def test_batch_mode_length_mismatch_names_parameters_and_lengths():
    spec = {"analysis": "x", "field": ["a", "b"], "obj": ["1", "2", "3"]}
    with pytest.raises(TableError, match=r"field has 2, obj has 3"):
        expand_spec(spec, "spec.yaml task 1")


def test_yaml_spec_file(tmp_path, registry):
    path = write(
        tmp_path,
        "tasks:\n  - analysis: MyAnalysisTask\n    telescope: apo25m\n    field: f\n"
        "    obj: [o1, o2, o3]\n    a: [1, 1, 2]\n",
        "spec.yaml",
    )
    groups, _ = batches_of(load_tasks(None, [path], registry=registry).frame)
    assert sorted(len(v) for v in groups.values()) == [1, 2]


def make_files(root: Path, frame: pd.DataFrame, skip=()):
    for rel, obj in zip(frame["path"], frame["obj"], strict=True):
        if obj not in skip:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("x")


def test_plan_skips_missing_files_and_rewrites_only_changed_plans(tmp_path, registry):
    rows = "".join(f"MyAnalysisTask,apo25m,f,o{i},1,1,\n" for i in range(5))
    table = write(tmp_path, HEADER + rows)
    tasks = load_tasks(table, registry=registry)
    root = tmp_path / "sas"
    make_files(root, tasks.frame, skip={"o3"})
    plan_dir = tmp_path / "plan"
    out = (plan_dir, plan_dir / "manifest.tsv", plan_dir / "skipped.csv")
    plan = group_batches(tasks, root, 2)
    stats = write_plan(plan, *out, registry)
    assert stats == {
        "tasks": 5,
        "batches": 2,
        "skipped": 1,
        "plan_files_written": 2,
        "plan_files_removed": 0,
    }
    skipped = pd.read_csv(out[2])
    assert list(skipped["obj"]) == ["o3"] and "file not found" in skipped["reason"][0]
    mtimes = {p: p.stat().st_mtime_ns for p in (plan_dir / "batches").glob("*.json")}

    write(tmp_path, HEADER + rows + "MyAnalysisTask,apo25m,f,o9,1,1,\n")
    tasks = load_tasks(table, registry=registry)
    make_files(root, tasks.frame, skip={"o3"})
    stats = write_plan(group_batches(tasks, root, 2), *out, registry)
    assert stats["plan_files_written"] == 1  # o9 opens a third chunk
    unchanged = [p for p in mtimes if p.exists() and p.stat().st_mtime_ns == mtimes[p]]
    assert len(unchanged) == 2


def test_mixed_products_keep_integer_keys(tmp_path, registry):
    from starbatch.engine.plan.batches import Plan, batch_plans
    from starbatch.engine.plan.files import batch_texts
    from starbatch.engine.plan.read import members

    text = (
        "analysis,apred,telescope,field,obj,plate,mjd,fiber\n"
        "snr,,apo25m,f,o1,,,\n"
        "gridfit_visit,r13,apo25m,N188,,5095,55844,128\n"
    )
    frame = load_tasks(write(tmp_path, text), registry=registry).frame
    frame = frame.assign(batch=assign_batches(frame, 10))
    plan = Plan(batches=frame, skipped=frame[:0])
    docs = [
        json.loads(text) for _, text in batch_texts(plan, batch_plans(plan, registry), registry)
    ]
    visit = members(next(d for d in docs if d["analysis"] == "gridfit_visit")["members"])
    keys = visit[0]["keys"]
    assert keys["mjd"] == 55844 and isinstance(keys["mjd"], int)
    assert keys["fiber"] == 128 and isinstance(keys["fiber"], int)
    assert visit[0]["path"].endswith("apVisit-r13-5095-55844-128.fits")


def test_interleaved_analyses_come_back_in_table_order(tmp_path, registry):
    """Each star's analyses on adjacent rows: the parts are re-sorted column by column
    (engine/plan/table.py), with the same frame sort_index would give."""
    from starbatch.engine.plan import table as tables

    text = "analysis,telescope,field,obj\n" + "".join(
        f"{a},apo25m,f,o{i}\n" for i in range(4) for a in ("snr", "gridfit")
    )
    frame = load_tasks(write(tmp_path, text), registry=registry).frame
    assert list(frame["obj"]) == [f"o{i}" for i in range(4) for _ in range(2)]
    assert list(frame["analysis"]) == ["snr", "gridfit"] * 4
    parts = pd.concat([frame[frame["analysis"] == a] for a in ("gridfit", "snr")])
    expected = parts.sort_index()
    pd.testing.assert_frame_equal(tables._in_table_order(parts), expected)


def test_parts_are_joined_as_pd_concat_joins_them():
    """validate joins the analyses' parts column by column (engine/tables.py): the same
    frame as pd.concat, also for columns only some parts have (other products' keys)."""
    from starbatch.engine.plan import table as tables

    def parts():
        apstar = pd.DataFrame(
            {
                "obj": pd.array(["2M1", "2M2"], dtype="str"),
                "apstar_row": pd.array([0, 1], dtype=object),
                "max_chi2_red": [5.0, 6.0],
            },
            index=[0, 2],
        )
        visit = pd.DataFrame(
            {
                "obj": pd.array(["2M3"], dtype="str"),
                "mjd": pd.array([59000], dtype=object),
                "fiber": pd.array([12], dtype=object),
            },
            index=[1],
        )
        return [apstar, visit]

    joined = tables._concat_moving(pieces := parts())
    pd.testing.assert_frame_equal(joined, pd.concat(parts()))
    assert joined.loc[1, "mjd"] == 59000 and type(joined.loc[1, "mjd"]) is int
    assert all(p.columns.empty for p in pieces)  # moved, not copied


def test_keys_and_paths_fill_in_the_parts_unfilled_columns():
    """validate joins the keys and paths apart from the analyses' parts (engine/tables.py)
    and fills them in; a key column that is also another analysis's parameter keeps that
    parameter's values on that analysis's rows."""
    from starbatch.engine import columns as colwise
    from starbatch.engine.plan import table as tables

    keys = colwise.compact((np.array([0, 1, 0, 1, 0, 1]), ["a", "b"]))
    parts = [
        pd.DataFrame({"field": tables._unfilled(6), "path": tables._unfilled(6)}),
        pd.DataFrame({"field": ["p"], "path": tables._unfilled(1)}, index=[6]),
    ]
    frame = tables._concat_moving(parts)
    observations = tables._observations(pd.RangeIndex(6), {"field": keys}, list("uvwxyz"))
    tables._fill_in(frame, tables._concat_moving([observations, pd.DataFrame(index=[6])]))
    assert list(frame["field"]) == ["a", "b", "a", "b", "a", "b", "p"]
    assert frame["path"].iloc[:6].tolist() == list("uvwxyz") and pd.isna(frame["path"].iloc[6])
    assert observations.columns.empty  # moved, not copied

    unfilled = {"field": tables._unfilled(6), "path": tables._unfilled(6)}
    only_keys = tables._concat_moving([pd.DataFrame(unfilled)])
    tables._fill_in(only_keys, tables._observations(pd.RangeIndex(6), {"field": keys}, ["x"] * 6))
    assert only_keys["field"].dtype == keys.dtype  # moved in as it was
    assert list(only_keys["field"]) == list(keys) and list(only_keys["path"]) == ["x"] * 6
