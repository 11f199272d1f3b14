"""The fast paths that make planning a million rows take seconds give exactly what the
straightforward per-row code gives (bench/plan_scale.py measures the speed)."""

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from starbatch.engine.manifest import format_manifest, manifest_analyses, manifest_batches
from starbatch.engine.manifest import jsonable as _jsonable
from starbatch.engine.planning import Plan, assign_batches, batch_plans, batch_texts
from starbatch.engine.tables import _parse_key_columns, _parse_key_combos
from starbatch.sdss.products import APSTAR, APVISIT

REPO = Path(__file__).resolve().parents[1]


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
    from starbatch.engine.tables import load_tasks

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
    for b, text in texts:  # byte-identical plan files: no batch reruns after the change
        settings = reference[b.batch].pop("settings")
        assert text == json.dumps(reference[b.batch], indent=1, sort_keys=True) + "\n"
        assert b.settings == settings


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + "analysis,telescope,field,obj\n" + "snr,apo25m,f,o1\nsnr,apo25m,f,o2\n",
        "analysis, telescope,field,obj\n\n# a comment\nsnr, apo25m,f,o1\nsnr,apo25m,f,o2\n",
    ],
)
def test_clean_and_exact_csv_readers_agree_on_what_they_both_read(tmp_path, text):
    from starbatch.engine.tables import _read_clean_csv, _read_csv_exactly

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
    common = (REPO / "workflow/rules/common.smk").read_text()
    batch = re.search(r'batch=r"([^"]+)"', common).group(1)
    frame = pd.DataFrame({"analysis": ["snr"] * 10001, "group": ["snr|x=1"] * 10001})
    last = assign_batches(frame, 1).iloc[-1]
    assert last.endswith("-10000") and re.fullmatch(batch, last)
