"""The status check and selective rerun: rows are counted by state from the summary's
recorded file facts, and only the batches holding failed or stale rows are named."""

import os
import shutil

import numpy as np
import pytest

from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.engine.results import merge, write_table
from starbatch.engine.runner import run_batch
from starbatch.engine.status import format_status, rerun_targets, status
from starbatch.offline.demo import apstar_relpath
from starbatch.offline.synthetic import make_synthetic_star, write_apstar
from starbatch.sdss.products import APSTAR


class Modelled(Analysis):
    """Reads a 'model' file; fails on members whose line is listed in ``fail``."""

    name = "modelled"
    product = APSTAR
    parameters = (Parameter("model", str, ""),)
    columns = (Column("value", "", "a number"),)
    fail = ()

    @classmethod
    def model_files(cls, params):
        return [params["model"]]

    def analyse(self, model, task):
        if task.line in self.fail:
            raise RuntimeError("no fit")
        return {"value": 1.0}


def plan(batch: str, lines: range, model: str) -> dict:
    members = []
    for line in lines:
        keys = APSTAR.parse_keys({"telescope": "apo25m", "field": "F", "obj": f"2M{line:08d}"})
        members.append(
            {"line": line, "source": "t.csv", "path": APSTAR.relative_path(keys), "keys": keys}
        )
    params = {"model": model, "apstar_row": 0}
    return {"batch": batch, "analysis": "modelled", "params": params, "members": members}


@pytest.fixture
def world(tmp_path, emulator):
    root = tmp_path / "sas"
    flux, error, bitmask = make_synthetic_star(
        emulator, [4800, 2.5, 0.0], 80, np.random.default_rng(1)
    )
    for line in range(1, 9):
        path = root / apstar_relpath("F", f"2M{line:08d}")
        write_apstar(path, flux, error, bitmask, {})
    model = tmp_path / "model.bin"
    model.write_bytes(b"version 1")
    Modelled.fail = (3,)
    tables = []
    for k, lines in enumerate((range(1, 5), range(5, 9))):
        out = tmp_path / f"b{k}.fits"
        run_batch(
            plan(f"modelled-0000000{k}-0000", lines, str(model)), root, out, {"modelled": Modelled}
        )
        tables.append(out)
    write_table(merge(tables), tmp_path / "summary.fits")
    skipped = tmp_path / "skipped.csv"
    skipped.write_text("source,line,analysis,path,reason\nt.csv,9,modelled,x.fits,file not found\n")
    return tmp_path, root, model


def test_a_fresh_run_is_done_failed_and_not_run(world):
    tmp, root, _ = world
    result = status(tmp / "summary.fits", tmp / "skipped.csv", root)
    assert result["analyses"]["modelled"] == {
        "done": 7, "failed": 1, "not_run": 1, "stale_input": 0, "stale_model": 0,
        "failed_by_flag": {"ANALYSIS_ERROR": 1},
    }  # fmt: skip
    assert rerun_targets(result, "failed") == [
        "plan",
        "results/batches/modelled-00000000-0000.fits",
    ]
    assert rerun_targets(result, "stale") == []
    assert "modelled" in format_status(result)


def test_a_replaced_input_file_makes_its_row_stale(world):
    tmp, root, _ = world
    path = root / apstar_relpath("F", "2M00000006")
    shutil.copy(root / apstar_relpath("F", "2M00000001"), path)  # new bytes, new mtime
    os.utime(path, ns=(1, 1))
    result = status(tmp / "summary.fits", tmp / "skipped.csv", root)
    assert result["analyses"]["modelled"]["stale_input"] == 1
    assert rerun_targets(result, "stale") == ["results/batches/modelled-00000001-0000.fits"]
    (root / apstar_relpath("F", "2M00000002")).unlink()  # gone: stale too
    result = status(tmp / "summary.fits", tmp / "skipped.csv", root)
    assert result["analyses"]["modelled"]["stale_input"] == 2
    assert len(rerun_targets(result, "stale")) == 2


def test_a_changed_model_file_makes_every_row_it_made_stale(world):
    tmp, root, model = world
    model.write_bytes(b"version 2")
    result = status(tmp / "summary.fits", tmp / "skipped.csv", root)
    assert result["analyses"]["modelled"]["stale_model"] == 8
    assert len(rerun_targets(result, "stale")) == 2
    with pytest.raises(ValueError, match="'failed' or 'stale'"):
        rerun_targets(result, "everything")


def test_no_summary_yet_is_not_an_error(tmp_path):
    result = status(tmp_path / "none.fits", tmp_path / "none.csv", tmp_path)
    assert result["analyses"] == {} and rerun_targets(result, "failed") == []
