"""End-to-end: the real Snakemake workflow on real-format files in a temp dir."""

import numpy as np
import pandas as pd
import pytest

from smk import planned_jobs, snakemake, tiny_config
from starbatch import flags
from starbatch.demo import CORRUPT_OBJ, MISSING_OBJ, TEST_ANALYSES, demo_stars, demo_table
from starbatch.results import read_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A full run on 8 of 10 demo stars (plus the real, missing and corrupt rows)."""
    workdir = tmp_path_factory.mktemp("wf")
    config = tiny_config(workdir)
    stars = demo_stars(config["demo"]["n_stars"], config["demo"]["seed"], config["demo"]["snr"])
    table = demo_table(stars, *TEST_ANALYSES)
    held_back = table["obj"].isin(stars["obj"].iloc[8:])
    table[~held_back].to_csv(workdir / "config/observations.csv", index=False)
    proc = snakemake(workdir)
    return workdir, table, held_back, proc


def test_full_run_writes_summary_with_units_and_flags(run):
    workdir, table, held_back, _ = run
    summary = read_table(workdir / "results/summary.fits")
    expected = (~held_back).sum() - 2  # the missing-file rows are not run
    assert len(summary) == expected
    gridfit = summary[summary["analysis"] == "gridfit"]
    assert str(gridfit["teff"].unit) == "K" and str(gridfit["logg_err"].unit) == "dex"
    corrupt = summary[summary["obj"] == CORRUPT_OBJ]
    assert len(corrupt) == 2 and all(corrupt["flag"] & flags.READ_ERROR)
    assert all("corrupt" in e or "truncated" in e for e in corrupt["error"])
    good = gridfit[(gridfit["flag"] & flags.FAILED) == 0]
    assert len(good) == len(gridfit) - 1 and np.all(np.isfinite(good["teff"]))
    csv = pd.read_csv(workdir / "results/summary.csv")
    assert len(csv) == len(summary)
    assert (workdir / "results/plots/kiel.png").stat().st_size > 10_000


def test_missing_files_are_skipped_and_reported(run):
    workdir, *_ = run
    skipped = pd.read_csv(workdir / "results/plan/skipped.csv")
    assert list(skipped["obj"]) == [MISSING_OBJ, MISSING_OBJ]
    assert skipped["reason"].str.contains("file not found").all()
    failed = pd.read_csv(workdir / "results/failed.csv")
    assert set(failed["obj"]) == {CORRUPT_OBJ, MISSING_OBJ}
    not_run = failed[failed["obj"] == MISSING_OBJ]
    assert set(not_run["flag_names"]) == {"NOT_RUN"}
    assert not_run["error"].str.contains("file not found").all()


def test_batches_are_real_and_results_match_truth(run):
    workdir, *_ = run
    manifest = pd.read_csv(workdir / "results/plan/manifest.tsv", sep="\t")
    # 8 synthetic + 2 real + 1 corrupt per analysis: gridfit in batches of 3, snr of 5.
    assert manifest.groupby("analysis")["n_members"].apply(list).to_dict() == {
        "gridfit": [3, 3, 3, 2],
        "snr": [5, 5, 1],
    }
    truth = pd.read_csv(workdir / "resources/demo/truth.csv")
    fit = read_table(workdir / "results/gridfit/summary.fits").to_pandas()
    both = truth.merge(fit, on="obj", suffixes=("_true", ""))
    assert len(both) == 8
    assert (both["teff"] - both["teff_true"]).abs().median() < 150


def test_rerun_is_a_no_op_and_appending_rows_runs_only_new_batches(run):
    workdir, table, held_back, _ = run
    assert planned_jobs(workdir) == {}
    batch_dir = workdir / "results/batches"
    before = {p.name: p.stat().st_mtime_ns for p in batch_dir.glob("*.fits")}

    appended = pd.concat([table[~held_back], table[held_back]])  # the 2 held-back stars
    appended.to_csv(workdir / "config/observations.csv", index=False)
    snakemake(workdir)
    after = {p.name: p.stat().st_mtime_ns for p in batch_dir.glob("*.fits")}
    changed = {b for b in after if before.get(b) != after[b]}
    # gridfit [3, 3, 3, 2] -> [3, 3, 3, 3, 1]: the last chunk grows and one is new;
    # snr [5, 5, 1] -> [5, 5, 3]: the last chunk grows. Nothing else reruns.
    assert len(changed) == 3, changed
    assert len(pd.read_csv(workdir / "results/summary.csv")) == len(table) - 2
    assert planned_jobs(workdir) == {}


def test_report_has_summary_plots_timing_and_failures(run):
    workdir, *_ = run
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    for item in ("summary.fits", "kiel.png", "timing.png", "failed.csv", "truth_vs_fit.png"):
        assert item in html, item
