"""End-to-end: the real Snakemake workflow on real-format files in a temp dir."""

import base64
import io
import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from smk import planned_jobs, snakemake, tiny_config
from starbatch.engine import flags
from starbatch.engine.results import read_table
from starbatch.offline.demo import CORRUPT_OBJ, MISSING_OBJ, TEST_ANALYSES, demo_stars, demo_table

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
    for plot in ("kiel", "timing", "truth_vs_fit"):
        assert_drawn(workdir / f"results/plots/{plot}.png")


def assert_drawn(png) -> None:
    """The picture shows data, not only axes: plotted points and bars are coloured,
    while an empty figure holds only black, white and grey (text, frames)."""
    data = png.read_bytes() if hasattr(png, "read_bytes") else png
    rgb = matplotlib.image.imread(io.BytesIO(data), format="png")[..., :3]
    colourful = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.25
    assert rgb.shape[0] > 200 and rgb.shape[1] > 200
    assert colourful.sum() > 50, f"{png}: only {colourful.sum()} coloured pixels"


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


def report_items(html: str) -> dict[str, bytes]:
    """{path: embedded bytes} of the results a Snakemake HTML report carries."""
    start = html.index("var results = ", html.index('<script id="results">'))
    results, _ = json.JSONDecoder().raw_decode(html, start + len("var results = "))
    return {
        path: base64.b64decode(item["data_uri"].split("base64,", 1)[1])
        for path, item in results.items()
    }


def test_report_holds_the_summary_rows_the_plots_and_the_failures(run):
    workdir, *_ = run
    snakemake(workdir, "--report", "report.html")
    items = report_items((workdir / "report.html").read_text())
    expected = ["results/summary.fits", "results/summary.csv", "results/failed.csv"]
    expected += [f"results/plots/{p}.png" for p in ("kiel", "timing", "truth_vs_fit", "flags")]
    expected.append("results/batch_costs.tsv")  # what batching cost, per analysis
    # The star-by-star comparison and its interactive page.
    expected += ["results/compare/labels.fits", "results/plots/compare.html"]
    assert sorted(items) == sorted(expected)
    assert b"plotly" in items["results/plots/compare.html"]
    for path in expected:
        assert items[path] == (workdir / path).read_bytes(), path
    rows = pd.read_csv(io.BytesIO(items["results/summary.csv"]))
    summary = read_table(workdir / "results/summary.fits")
    assert len(rows) == len(summary) and list(rows["batch"]) == list(summary["batch"])
    assert set(rows["analysis"]) == {"gridfit", "snr"}
    for plot in ("kiel", "timing", "truth_vs_fit", "flags"):
        assert_drawn(items[f"results/plots/{plot}.png"])


def test_assert_drawn_rejects_a_figure_with_axes_and_no_data(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_xlabel("teff")
    ax.set_title("nothing plotted")
    fig.savefig(tmp_path / "empty.png")
    plt.close(fig)
    with pytest.raises(AssertionError, match="coloured pixels"):
        assert_drawn(tmp_path / "empty.png")
