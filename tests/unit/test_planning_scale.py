"""The fast paths that make planning a million rows take seconds give exactly what the
straightforward per-row code gives (bench/plan_scale.py measures the speed)."""

import json
import os
import re

import pandas as pd
import pytest

from starbatch.engine.jsonvalues import jsonable as _jsonable
from starbatch.engine.plan.batches import Plan, assign_batches, batch_plans
from starbatch.engine.plan.files import batch_texts, dumps, format_manifest
from starbatch.engine.plan.read import (
    MEMBER_FIELDS,
    manifest_analyses,
    manifest_batches,
    members,
    read_plan,
)
from starbatch.engine.plan.table import _parse_key_columns, _parse_key_combos
from starbatch.sdss.products import APSTAR, APVISIT
from starbatch.workflow import SNAKEFILE

RULES = SNAKEFILE.parent / "rules"


def key_frame(product, rows):
    frame = pd.DataFrame(rows, dtype=str)
    return frame.reindex(columns=list(product.key_names), fill_value="")


APSTAR_ROWS = [
    {"telescope": "apo25m", "field": "000+02", "obj": "2M17335483-2753043"},
    {"telescope": "lco25m", "field": "000+02", "obj": "2M1", "prefix": ""},
    {"telescope": "apo1m", "field": "f", "obj": "2M2", "prefix": "as", "release": "dr16"},
    {"telescope": "apo25m", "field": "f", "obj": "2M3", "apred": "r13", "apstar": "stars"},
    {"telescope": "apo25m", "field": "000+02", "obj": "2M17335483-2753043"},  # repeated
]
APVISIT_ROWS = [
    {"telescope": "apo25m", "field": "N188", "plate": "5095", "mjd": "55844", "fiber": "128"},
    {"telescope": "lco25m", "field": "N188", "plate": "5095", "mjd": "55844.0", "fiber": "7"},
]


@pytest.mark.parametrize("product,rows", [(APSTAR, APSTAR_ROWS), (APVISIT, APVISIT_ROWS)])
def test_column_wise_key_parsing_equals_parse_keys(product, rows):
    frame = key_frame(product, rows)
    keys, paths, problems = _parse_key_combos(product, frame)
    assert not problems
    fast_keys, fast_paths = _parse_key_columns(product, frame)
    assert {k: list(v) for k, v in fast_keys.items()} == keys
    assert fast_paths.to_pylist() == paths


@pytest.mark.parametrize(
    "bad",
    [
        {"field": "a/b"},
        {"obj": "../x"},
        {"obj": "a..b"},
        {"telescope": ""},
        {"telescope": "foo25m"},  # the prefix cannot be derived
        {"prefix": "a/p"},
    ],
)
def test_any_bad_cell_sends_parsing_to_the_exact_per_combination_path(bad):
    frame = key_frame(APSTAR, APSTAR_ROWS[:3] + [{**APSTAR_ROWS[3], **bad}])
    assert _parse_key_columns(APSTAR, frame) is None
    assert _parse_key_combos(APSTAR, frame)[2]  # which names row and column


def reference_documents(plan, registry):
    """The per-row (iterrows) documents that batch_texts writes column-wise."""
    docs = {}
    for batch, rows in plan.batches.groupby("batch", sort=False):
        cls = registry[rows["analysis"].iloc[0]]
        first = rows.iloc[0]
        docs[batch] = {
            "batch": batch,
            "analysis": cls.name,
            "params": {
                p.name: _jsonable(first[p.name]) for p in cls.all_parameters() if p.significant
            },
            "settings": {
                p.name: _jsonable(first[p.name]) for p in cls.all_parameters() if not p.significant
            },
            "members": [
                {
                    "line": int(r["line"]),
                    "source": r["source"],
                    "path": r["path"],
                    "keys": {k: _jsonable(r[k]) for k in cls.product.key_names},
                }
                for _, r in rows.iterrows()
            ],
        }
    return docs


def test_batch_documents_equal_the_per_row_version(tmp_path, registry):
    from starbatch.engine.plan.table import load_tasks

    lines = ["analysis,telescope,field,obj,plate,mjd,fiber,min_snr,max_chi2_red"]
    for i in range(7):
        lines.append(f"snr,apo25m,f{i % 2},2M{i},,,,{10 + i % 2},")
        lines.append(f"gridfit,lco25m,f{i % 3},2M{i},,,,,{5 if i % 2 else 5.0}")
        lines.append(f"gridfit_visit,apo25m,f,,{100 + i},{55000 + i},{i + 1},,")
    table = tmp_path / "t.csv"
    table.write_text("\n".join(lines) + "\n")
    frame = load_tasks(table, registry=registry).frame
    plan = Plan(batches=frame.assign(batch=assign_batches(frame, 3)), skipped=frame[:0])
    plans = batch_plans(plan, registry)
    reference = reference_documents(plan, registry)
    assert [b.batch for b in plans] == list(reference)
    texts = list(batch_texts(plan, plans, registry))
    assert len(texts) == len(reference)
    for b, text in texts:
        settings = reference[b.batch].pop("settings")
        doc = json.loads(text)
        assert text == dumps(doc) + "\n"  # one canonical text: a re-plan rewrites nothing
        assert {**doc, "members": members(doc["members"])} == reference[b.batch]
        assert b.insignificant == settings
        # Columns the batch's members share are written once; the others in full.
        stored = doc["members"]
        assert stored["n"] == len(reference[b.batch]["members"])
        rows = members(stored)
        for name, column in [*stored["keys"].items(), *((n, stored[n]) for n in MEMBER_FIELDS)]:
            values = [m["keys"][name] if name in stored["keys"] else m[name] for m in rows]
            assert column == ({"all": values[0]} if len(set(values)) == 1 else values)


def test_insignificant_parameters_live_in_one_file(tmp_path, registry):
    """Insignificant parameters go to the plan directory's insignificant.json ({batch:
    {parameter: value}})."""
    from starbatch.engine.plan.files import write_plan
    from starbatch.engine.plan.read import read_insignificant
    from starbatch.engine.plan.table import load_tasks

    table = tmp_path / "t.csv"
    rows = [f"apogeenet,apo25m,f,2M{i},{'cpu' if i < 2 else 'cuda:1'}\n" for i in range(4)]
    table.write_text("analysis,telescope,field,obj,device\n" + "".join(rows))
    frame = load_tasks(table, registry=registry).frame
    plan = Plan(batches=frame.assign(batch=assign_batches(frame, 2)), skipped=frame[:0])
    out = tmp_path / "plan"
    write_plan(plan, out, out / "manifest.tsv", out / "skipped.csv", registry)
    first, second = sorted((out / "batches").glob("*.json"))
    # Settings take the batch's first member's value: the batches split by table order.
    assert read_insignificant(first) == {"device": "cpu"}
    assert read_insignificant(second) == {"device": "cuda:1"}
    assert read_insignificant(out / "batches/unplanned.json") == {}  # the analysis's defaults
    assert sorted(json.loads((out / "insignificant.json").read_text())) == [first.stem, second.stem]
    (out / "insignificant.json").write_text('["cpu"]\n')
    with pytest.raises(ValueError, match=r"insignificant\.json: not a mapping"):
        read_insignificant(first)
    (out / "insignificant.json").write_text("{")
    with pytest.raises(ValueError, match=r"insignificant\.json: not valid JSON"):
        read_insignificant(first)


@pytest.mark.parametrize(
    "stored, message",
    [
        (
            {"n": 2, "line": [1], "path": ["a", "b"], "source": {"all": "s"}, "keys": {}},
            "1 values for 2",
        ),
        ({"n": 1, "line": [1], "path": ["a"], "keys": {}}, "source"),
        ({"line": [1], "path": ["a"], "source": ["s"], "keys": {}}, "'n'"),
    ],
)
def test_a_damaged_plan_is_refused_by_name(tmp_path, stored, message):
    path = tmp_path / "gridfit-0.json"
    path.write_text(json.dumps({"analysis": "gridfit", "batch": "gridfit-0", "members": stored}))
    with pytest.raises(ValueError, match=rf"gridfit-0\.json: its members .*{message}"):
        read_plan(path)


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + "analysis,telescope,field,obj\n" + "snr,apo25m,f,o1\nsnr,apo25m,f,o2\n",
        "analysis, telescope,field,obj\n\n# a comment\nsnr, apo25m,f,o1\nsnr,apo25m,f,o2\n",
    ],
)
def test_clean_and_exact_csv_readers_agree_on_what_they_both_read(tmp_path, text):
    from starbatch.engine.plan.table import _read_clean_csv, _read_csv_exactly

    clean, messy = tmp_path / "clean.csv", tmp_path / "messy.csv"
    clean.write_text("analysis,telescope,field,obj\nsnr,apo25m,f,o1\nsnr,apo25m,f,o2\n")
    messy.write_text(text, encoding="utf-8")
    assert _read_clean_csv(messy) is None  # the exact reader's line numbers and messages
    fast = _read_clean_csv(clean)
    exact = _read_csv_exactly(messy)
    assert list(fast.columns) == list(exact.columns)
    assert (
        fast.drop(columns="line").astype(object).equals(exact.drop(columns="line").astype(object))
    )
    assert list(fast["line"]) == [2, 3]


def test_manifest_index_follows_the_file(tmp_path):
    path = tmp_path / "manifest.tsv"
    path.write_text(format_manifest([("snr-0-0000", "snr", 3, []), ("a-0-0000", "a", 1, ["m"])]))
    assert manifest_batches(path)["a-0-0000"]["model_files"] == ["m"]
    assert manifest_analyses(path) == {"snr": ["snr-0-0000"], "a": ["a-0-0000"]}
    path.write_text(format_manifest([("snr-0-0001", "snr", 2, [])]))
    os.utime(path, ns=(1, 1))  # a rewrite within the mtime resolution still counts
    assert list(manifest_batches(path)) == ["snr-0-0001"]


def test_batch_ids_past_chunk_9999_match_the_wildcard_constraint():
    common = (RULES / "common.smk").read_text()
    batch = re.search(r'batch=r"([^"]+)"', common).group(1)
    frame = pd.DataFrame({"analysis": ["snr"] * 10001, "group": ["snr|x=1"] * 10001})
    last = assign_batches(frame, 1).iloc[-1]
    assert last.endswith("-10000") and re.fullmatch(batch, last)
