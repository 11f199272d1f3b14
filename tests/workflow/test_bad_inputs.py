"""A corpus of bad inputs, each through a real entry point.

Each bad input gives either a clear error before any work starts, naming the file,
line and column or the config key (and no traceback), or a flagged row in the
batch's result table while the other members get results. Table and config
mistakes are made in a copy of a finished run, whose results must come out byte
for byte unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from faults import copy_run, digests, finished_run, run_snakemake
from smk import TINY_GRID
from starbatch.engine import flags
from starbatch.engine.results import read_table
from starbatch.methods.emulator import Emulator
from starbatch.methods.gridfit.grid import GridSpec, save_grid
from starbatch.offline.demo import apstar_relpath
from starbatch.offline.grids import build_grid
from starbatch.offline.synthetic import make_synthetic_star, write_apstar
from starbatch.resources import EMULATOR, REAL_SAS
from starbatch.workflow import SCRIPTS

REAL = REAL_SAS
REAL_STAR = ("000+02", "2M17335483-2753043")


def script(name: str, *args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the scripts/*.py entry points as its CLI."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def assert_clear_failure(proc: subprocess.CompletedProcess, *where: str) -> str:
    """Non-zero exit, every expected place named, no traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for text in where:
        assert text in out, f"{text!r} not in:\n{out[-3000:]}"
    return out


# --------------------------------------------------------------------------------------
# Tables (the CSV users edit, and batch-mode YAML specs): plan.py's CLI.
# --------------------------------------------------------------------------------------

HEADER = "analysis,telescope,field,obj"
GOOD = "gridfit,apo25m,060+00,2M00000002+0000002"


@dataclass(frozen=True)
class TableCase:
    id: str
    text: str | bytes
    where: tuple[str, ...]  # the message must contain each (file, line, column, ...)
    spec: bool = False  # a batch-mode YAML spec next to a good table
    absent: str = "\0"  # the message must not contain this


def _t(id, text, *where, spec=False, absent="\0"):
    name = f"config/bad/{id}.{'yaml' if spec else 'csv'}"
    return TableCase(id, text, (name, *where), spec, absent)


TABLE_CASES = [
    _t("empty_file", "", "the file is empty"),
    _t("comments_only", "# analysis,telescope,field,obj\n", "the file is empty"),
    _t("header_only", HEADER + "\n", "no data rows"),
    _t("ragged_row", f"{HEADER}\n{GOOD}\n{GOOD},extra\n", "line 3"),
    _t("duplicated_column", f"{HEADER},obj\n{GOOD},2M1\n", "line 1", "duplicated", "'obj'"),
    _t("no_analysis_column", "telescope,field,obj\napo25m,060+00,2M1\n", "line 1", "'analysis'"),
    _t("unknown_column", f"{HEADER},colour\n{GOOD},red\n", "line 1", "'colour'"),
    _t("unknown_analysis", f"{HEADER}\n{GOOD}\ngridfti,apo25m,f,o\n", "line 3", "'analysis'"),
    _t("missing_obj", f"{HEADER}\n{GOOD}\ngridfit,apo25m,060+00,\n", "line 3", "'obj'", "required"),
    _t("unknown_telescope", f"{HEADER}\ngridfit,apo26m,f,o\n", "line 2", "'prefix'", "apo26m"),
    _t("float_for_int", f"{HEADER},apstar_row\n{GOOD},1.5\n", "line 2", "'apstar_row'", "integer"),
    _t("text_for_number", f"{HEADER},max_chi2_red\n{GOOD},abc\n", "line 2", "'max_chi2_red'"),
    _t("non_finite", f"{HEADER},max_chi2_red\n{GOOD},inf\n", "line 2", "finite"),
    _t("param_not_taken", f"{HEADER},grid\nsnr,apo25m,f,o,demo\n", "line 2", "'grid'", "snr"),
    _t(
        "duplicate_rows",
        f"{HEADER}\n{GOOD}\n# a comment\n{GOOD}\n",
        "duplicate task rows",
        "line 2",
        "line 4",
    ),
    _t("traversal_field", f"{HEADER}\ngridfit,apo25m,../../etc,o\n", "line 2", "'field'", "unsafe"),
    _t("absolute_obj", f"{HEADER}\ngridfit,apo25m,f,/etc/passwd\n", "line 2", "'obj'", "unsafe"),
    _t("traversal_grid", f"{HEADER},grid\n{GOOD},../../x\n", "line 2", "'grid'", "unsafe"),
    _t("multiline_cell", f'{HEADER}\ngridfit,apo25m,f,"a\nb"\n', "line 2", "'obj'", "unsafe"),
    _t("not_utf8", HEADER.encode() + b"\ngridfit,apo25m,f,\xff\xfe\n", "cannot parse"),
    _t(
        "yaml_length_mismatch",
        "tasks:\n  - analysis: gridfit\n    telescope: apo25m\n"
        "    field: [060+00, 120+05]\n    obj: [2M1, 2M2, 2M3]\n",
        "task 1",
        "field has 2",
        "obj has 3",
        spec=True,
    ),
    _t("yaml_malformed", "tasks: [\n  - {analysis: gridfit\n", "cannot read YAML", spec=True),
    _t("yaml_not_a_list", "tasks: {analysis: gridfit}\n", "expected a list", spec=True),
    _t(
        "yaml_unknown_parameter",
        "tasks:\n  - {analysis: gridfit, telescope: apo25m, field: f, obj: o, colour: red}\n",
        "task 1",
        "'colour'",
        spec=True,
        absent="observations.csv",  # the spec uses the column, not the table
    ),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = finished_run(tmp_path_factory)
    return run, digests(run / "results")


@pytest.fixture
def workdir(finished, tmp_path):
    """A fresh copy of a finished run (each case on its own), and its results' digests."""
    run, before = finished
    work = copy_run(run, tmp_path / "run")
    (work / "config/bad").mkdir()
    return work, before


def assert_results_unchanged(workdir) -> None:
    work, before = workdir
    assert digests(work / "results") == before
    assert not list(work.rglob("pwned*"))


@pytest.mark.slow
@pytest.mark.parametrize("case", TABLE_CASES, ids=lambda c: c.id)
def test_bad_table_is_rejected_before_work_starts(workdir, case):
    work, _ = workdir
    path = work / case.where[0]
    (path.write_bytes if isinstance(case.text, bytes) else path.write_text)(case.text)
    tables = ["config/observations.csv", "--spec", path] if case.spec else [path]
    proc = script(
        "plan.py",
        "--table",
        *tables,
        "--root",
        "resources/demo/sas",
        "--plan-dir",
        "results/plan",
        cwd=work,
    )
    out = assert_clear_failure(proc, *case.where)
    assert proc.returncode == 1
    assert case.absent not in out
    assert len(error_lines(proc.stderr)) == 1  # one message listing the problem(s)
    assert_results_unchanged(workdir)


def test_table_that_is_a_directory_is_a_clear_error(tmp_path):
    proc = script("plan.py", "--table", tmp_path, "--root", tmp_path, cwd=tmp_path)
    assert_clear_failure(proc, str(tmp_path), "cannot read")


# Through Snakemake itself: the plan checkpoint fails, Snakemake shows the message,
# and the previous plan and results are kept (update() restores the plan outputs).
SNAKEMAKE_TABLE_CASES = [
    ("ragged_row", "{header}\n{first}\n{first},extra\n", "line 3"),
    (
        "unknown_grid",
        "{header},grid\n{first},nosuch\n",
        "line 2",
        "resources/grids/nosuch.npz",
    ),
    ("unsafe_obj", HEADER + "\ngridfit,apo25m,f,$(touch${{IFS}}pwned)\n", "line 2", "'obj'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", SNAKEMAKE_TABLE_CASES, ids=lambda c: c[0])
def test_bad_table_in_the_workflow_keeps_previous_results(workdir, case):
    work, _ = workdir
    _, template, *where = case
    observations = work / "config/observations.csv"
    good = observations.read_text()
    lines = good.splitlines()
    text = template.format(table=good.rstrip("\n"), header=lines[0], first=lines[1])
    try:
        observations.write_text(text)
        proc = run_snakemake(work)
    finally:
        observations.write_text(good)
    assert_clear_failure(proc, "config/observations.csv", *where)
    assert_results_unchanged(workdir)


# --------------------------------------------------------------------------------------
# Config values: caught when Snakemake reads the config, before any job is scheduled.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCase:
    id: str
    edit: dict  # dotted key -> new value (None deletes the key)
    where: tuple[str, ...]
    raw: str | None = None  # the config file's whole text instead


CONFIG_CASES = [
    ConfigCase("unknown_key", {"max_batch_sise": 5}, ("max_batch_sise",)),
    ConfigCase("batch_size_zero", {"max_batch_size": 0}, ("max_batch_size",)),
    ConfigCase("batch_size_text", {"max_batch_size": "ten"}, ("max_batch_size", "'ten'")),
    ConfigCase("failed_fraction_over_1", {"max_failed_fraction": 1.5}, ("max_failed_fraction",)),
    ConfigCase("part_of_one", {"tables_per_part": 1}, ("tables_per_part",)),
    ConfigCase("unknown_analysis", {"analyses.gridfti": {"max_batch_size": 5}}, ("gridfti",)),
    ConfigCase("grid_zero_step", {"grids.demo.teff": [4000, 5500, 0]}, ("grids.demo", "teff")),
    ConfigCase("grid_two_values", {"grids.demo.logg": [1.0, 4.0]}, ("logg",)),
    ConfigCase("missing_table", {"observations": "config/nope.csv"}, ("observations", "nope")),
    ConfigCase("missing_task_spec", {"task_specs": ["config/x.yaml"]}, ("task_specs", "x.yaml")),
    ConfigCase("no_sas_root", {"sas_base_dir": ""}, ("sas_base_dir", "SAS_BASE_DIR")),
    ConfigCase(
        "sas_root_not_a_dir",
        {"sas_base_dir": "/nonexistent/sas", "demo.enabled": False},
        ("sas_base_dir", "/nonexistent/sas"),
    ),
    ConfigCase("demo_snr_zero", {"demo.snr": [0, 100]}, ("snr",)),
    ConfigCase("not_yaml", {}, ("Config file", "not valid"), raw="max_batch_size: [1\n\tx: 2\n"),
]


def _edited(config: dict, edit: dict) -> dict:
    config = yaml.safe_load(yaml.safe_dump(config))
    for dotted, value in edit.items():
        *parents, key = dotted.split(".")
        node = config
        for name in parents:
            node = node.setdefault(name, {})
        node[key] = value
    return config


@pytest.mark.slow
@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.id)
def test_bad_config_is_rejected_before_any_job(workdir, case):
    work, _ = workdir
    path = work / "config/config.yaml"
    good = path.read_text()
    env = {k: v for k, v in os.environ.items() if k != "SAS_BASE_DIR"}
    try:
        path.write_text(case.raw or yaml.safe_dump(_edited(yaml.safe_load(good), case.edit)))
        proc = run_snakemake(work, env=env)
    finally:
        path.write_text(good)
    out = assert_clear_failure(proc, *case.where)
    assert "jobid" not in out  # nothing was scheduled
    assert_results_unchanged(workdir)


# --------------------------------------------------------------------------------------
# Spectrum files: a flagged row each; the rest of the batch gets results.
# --------------------------------------------------------------------------------------


def _edit_hdus(edit):
    def mutate(src: Path, dst: Path) -> None:
        with fits.open(src, memmap=False) as hdul:
            for hdu in hdul:
                _ = hdu.data  # load before editing
            edit(hdul)
            hdul.writeto(dst)

    return mutate


def _bytes(transform):
    def mutate(src: Path, dst: Path) -> None:
        dst.write_bytes(transform(src.read_bytes()))

    return mutate


def _primary_only(hdul):
    del hdul[1:]


def _table_for_error(hdul):
    hdul[2] = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.zeros(3))])


def _short_error(hdul):
    hdul[2].data = hdul[2].data[..., :4000]


def _shifted_grid(hdul):
    hdul[0].header["CRVAL1"] += 0.01


def _no_wcs(hdul):
    for hdu in hdul:
        for key in ("CRVAL1", "CDELT1"):
            hdu.header.pop(key, None)


def _nwave(hdul):
    hdul[0].header["NWAVE"] = 9000


def _all_nan(hdul):
    hdul[1].data[:] = np.nan


def _zero_errors(hdul):
    hdul[2].data[:] = 0.0


def _all_masked(hdul):
    hdul[3].data[:] = 1  # BADPIX


def _few_pixels(hdul):
    hdul[3].data[..., :1000] = 1
    hdul[3].data[..., 1030:] = 1  # 30 good pixels on the blue chip


# id -> (mutation of a good synthetic file (or of a real DR17 file), flag, message text)
FITS_CASES = {
    "missing": (None, flags.READ_ERROR, "file not found"),
    "empty_file": (_bytes(lambda b: b""), flags.READ_ERROR, "unreadable or truncated"),
    "truncated_data": (_bytes(lambda b: b[: len(b) // 2]), flags.READ_ERROR, "truncated"),
    "truncated_header": (_bytes(lambda b: b[:1000]), flags.READ_ERROR, "truncated"),
    "real_truncated": (_bytes(lambda b: b[: len(b) // 3]), flags.READ_ERROR, "truncated"),
    "not_fits": (_bytes(lambda b: b"obj,teff\n" * 400), flags.READ_ERROR, "unreadable"),
    "primary_only": (_edit_hdus(_primary_only), flags.READ_ERROR, "missing HDU1"),
    "table_not_image": (_edit_hdus(_table_for_error), flags.READ_ERROR, "not an image"),
    "shape_mismatch": (_edit_hdus(_short_error), flags.READ_ERROR, "shapes"),
    "wrong_wavelength_grid": (_edit_hdus(_shifted_grid), flags.BAD_DATA, "wavelength grid"),
    "no_wavelength_solution": (_edit_hdus(_no_wcs), flags.READ_ERROR, "CRVAL1"),
    "nwave_mismatch": (_edit_hdus(_nwave), flags.READ_ERROR, "NWAVE=9000"),
    "all_nan_flux": (_edit_hdus(_all_nan), flags.READ_ERROR, "no usable pixels"),
    "zero_errors": (_edit_hdus(_zero_errors), flags.READ_ERROR, "no usable pixels"),
    "all_pixels_masked": (_edit_hdus(_all_masked), flags.READ_ERROR, "no usable pixels"),
    "few_good_pixels": (_edit_hdus(_few_pixels), flags.FAILED, "pixels"),
}
GOOD_OBJS = ("good_1", "good_2")


@pytest.fixture(scope="module")
def fits_batch(tmp_path_factory):
    """One gridfit batch holding every bad file plus good synthetic and real stars,
    planned and run through the CLIs. Returns (workdir, result table, run_batch proc)."""
    work = tmp_path_factory.mktemp("bad_fits")
    root = work / "sas"
    emulator = Emulator.load(EMULATOR)
    save_grid(work / "resources/grids/demo.npz", build_grid(emulator, GridSpec(**TINY_GRID)))
    rng = np.random.default_rng(5)
    for i, obj in enumerate(GOOD_OBJS):
        star = make_synthetic_star(emulator, [4600.0 + 300 * i, 2.4, -0.2], 80.0, rng)
        write_apstar(root / apstar_relpath("FAULTS", obj), *star, {"OBJID": obj})
    good = root / apstar_relpath("FAULTS", GOOD_OBJS[0])
    real = REAL / apstar_relpath(*REAL_STAR)
    (root / apstar_relpath(*REAL_STAR)).parent.mkdir(parents=True)
    shutil.copy(real, root / apstar_relpath(*REAL_STAR))
    for obj, (mutate, _, _) in FITS_CASES.items():
        dst = root / apstar_relpath("FAULTS", obj)
        if mutate is None:
            shutil.copy(good, dst)
        else:
            mutate(real if obj.startswith("real") else good, dst)
    rows = [("FAULTS", obj) for obj in (*GOOD_OBJS, *FITS_CASES)] + [REAL_STAR]
    table = work / "faults.csv"
    table.write_text(HEADER + "\n" + "".join(f"gridfit,apo25m,{f},{o}\n" for f, o in rows))
    plan = script("plan.py", "--table", table, "--root", root, "--plan-dir", "plan", cwd=work)
    assert plan.returncode == 0, plan.stderr
    (root / apstar_relpath("FAULTS", "missing")).unlink()  # gone after planning
    [batch] = (work / "plan/batches").glob("*.json")
    output = work / f"results/{batch.stem}.fits"
    proc = script("run_batch.py", batch, "--root", root, "--output", output, cwd=work)
    return work, read_table(output) if output.exists() else None, proc


def test_bad_files_do_not_stop_the_batch(fits_batch):
    _, table, proc = fits_batch
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert len(table) == len(GOOD_OBJS) + len(FITS_CASES) + 1
    good = table[[obj in (*GOOD_OBJS, REAL_STAR[1]) for obj in table["obj"]]]
    assert len(good) == 3
    assert not np.any(np.asarray(good["flag"]) & flags.FAILED)
    assert np.all(np.isfinite(good["teff"])) and np.all(np.isfinite(good["logg_err"]))
    # The log says which lines failed and why, one warning line each.
    warnings = [line for line in proc.stderr.splitlines() if " WARNING line " in line]
    assert len(warnings) == len(FITS_CASES)


@pytest.mark.parametrize("obj", list(FITS_CASES))
def test_bad_file_gives_a_flagged_row_naming_it(fits_batch, obj):
    _, table, _ = fits_batch
    _, flag, message = FITS_CASES[obj]
    [row] = table[table["obj"] == obj]
    assert row["flag"] & flag, (row["flag_names"], row["error"])
    assert row["flag"] & flags.FAILED
    assert message in row["error"]
    assert f"apStar-dr17-{obj}.fits" in row["error"] or obj == "few_good_pixels"
    assert np.ma.is_masked(row["teff"]) or np.isnan(row["teff"])  # no result


# --------------------------------------------------------------------------------------
# Model files: the batch fails with one clear line naming the file; nothing is written.
# --------------------------------------------------------------------------------------


def _grid_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _save(dst: Path, arrays: dict) -> None:
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)


def _wrong_keys(src, dst):
    a = _grid_arrays(src)
    _save(dst, {"teff": a["teff"], "logg": a["logg"]})


def _bad_shape(src, dst):
    a = _grid_arrays(src)
    _save(dst, {**a, "flux": a["flux"][..., :-1]})


def _nan_at_valid(src, dst):
    a = _grid_arrays(src)
    flux = a["flux"].copy()
    flux[(*np.argwhere(a["valid"])[0], 100)] = np.nan
    _save(dst, {**a, "flux": flux})


MODEL_CASES = {
    "grid_missing": (None, "not a readable grid file"),
    "grid_empty": (_bytes(lambda b: b""), "not a readable grid file"),
    "grid_truncated": (_bytes(lambda b: b[: len(b) // 2]), "not a readable grid file"),
    "grid_not_npz": (_bytes(lambda b: b"teff,logg\n" * 100), "not a readable grid file"),
    "grid_wrong_keys": (_wrong_keys, "missing arrays"),
    "grid_bad_shape": (_bad_shape, "flux has shape"),
    "grid_nan_at_valid_node": (_nan_at_valid, "non-finite flux"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_corrupt_model_file_fails_the_batch_with_one_clear_line(fits_batch, case):
    work, _, _ = fits_batch
    mutate, message = MODEL_CASES[case]
    grid = f"resources/grids/{case}.npz"
    if mutate is not None:
        mutate(work / "resources/grids/demo.npz", work / grid)
    [batch] = (work / "plan/batches").glob("*.json")
    doc = json.loads(batch.read_text())
    doc["params"]["grid"] = case
    plan = work / f"{case}.json"
    plan.write_text(json.dumps(doc))
    output = work / f"results/{case}.fits"
    output.write_bytes(b"an earlier result")
    proc = script("run_batch.py", plan, "--root", work / "sas", "--output", output, cwd=work)
    assert_clear_failure(proc, grid, message)
    assert proc.returncode == 1
    [line] = error_lines(proc.stderr)
    assert "set-up of gridfit failed" in line and grid in line and message in line
    assert output.read_bytes() == b"an earlier result"
    assert not list(output.parent.glob(".*.tmp"))


def test_corrupt_emulator_fails_build_grid_with_one_clear_line(tmp_path):
    emulator = tmp_path / "apstar-cannon.npz"
    emulator.write_bytes(EMULATOR.read_bytes()[:5000])
    out = tmp_path / "grid.npz"
    axes = ("--teff", 4000, 5000, 500, "--logg", 1, 2, 1, "--feh", -1, 0, 1)
    proc = script("build_grid.py", emulator, out, *axes, cwd=tmp_path)
    assert_clear_failure(proc, str(emulator), "not a readable emulator file")
    assert len(error_lines(proc.stderr)) == 1
    assert not out.exists()
