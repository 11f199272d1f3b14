"""Batch sizes from measured costs (max_batch_size: auto): the arithmetic, the
stability rule, the costs read back from result headers and Snakemake benchmark
files, and the real workflow choosing, keeping and re-choosing a size."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from smk import planned_jobs, snakemake, tiny_config
from starbatch.engine.plan.read import read_plan
from starbatch.engine.plan.sizing import (
    AUTO,
    Costs,
    balance,
    batch_costs,
    choose_size,
    measured_costs,
    one_round,
    read_sizes,
    resolve_sizes,
)
from starbatch.offline.demo import TEST_ANALYSES, demo_stars, demo_table


def test_size_is_the_smallest_that_keeps_the_setup_share():
    costs = Costs(setup_s=10.0, per_obs_s=1.0)
    size, why = choose_size(costs, setup_share=0.05, batch_minutes=60)
    assert size == 190
    assert costs.setup_share(size) <= 0.05 < costs.setup_share(size - 1)
    assert "5.0%" in why and "declared" in why


def test_time_limit_wins_over_the_setup_share():
    costs = Costs(setup_s=600.0, per_obs_s=10.0, batches=3)
    size, why = choose_size(costs, setup_share=0.05, batch_minutes=60)
    assert size == 300 and costs.batch_seconds(size) <= 3600 < costs.batch_seconds(size + 1)
    assert "within 60 min" in why and "measured on 3 batch(es)" in why


def test_a_cheap_analysis_gets_one_round_of_batches_within_the_time_limit():
    cheap = Costs(setup_s=2.0, per_obs_s=0.05, batches=4)
    assert one_round(40, 2000, 2, cheap, batch_minutes=60) == (
        1000,
        "; raised to 1000: one round of 2 batches at a time",
    )
    size, note = one_round(40, 200_000, 2, cheap, batch_minutes=60)
    assert size == 71960 and "capped at 60 min" in note  # (3600 - 2) / 0.05
    assert one_round(4000, 2000, 2, cheap, batch_minutes=60) == (4000, "")  # never lowered
    assert one_round(40, 2000, 1, cheap, batch_minutes=60) == (40, "")  # parallelism unknown


def test_auto_size_is_kept_until_a_resize_and_fixed_sizes_pass_through():
    declared = {"a": Costs(10.0, 1.0), "b": Costs(10.0, 1.0)}
    measured = {"a": Costs(1.0, 1.0, batches=5)}
    sizes, records = resolve_sizes({"a": AUTO, "b": 7}, declared, measured, {})
    assert sizes == {"a": 19, "b": 7}
    assert records["a"]["mode"] == AUTO and records["b"]["mode"] == "fixed"

    cheaper = {"a": Costs(0.1, 1.0, batches=9)}
    kept, again = resolve_sizes({"a": AUTO}, declared, cheaper, records)
    assert kept == {"a": 19} and again["a"]["kept"] and again["a"]["recommended"] == 2
    resized, _ = resolve_sizes({"a": AUTO}, declared, cheaper, records, resize=True)
    assert resized == {"a": 2}


@pytest.mark.parametrize(
    "size, rows, parallel, expected",
    [
        (245, 200, 2, 100),  # one batch would leave a core idle: two
        (237, 2000, 2, 200),  # 9 batches = 4.5 rounds: 10 equal ones
        (100, 200, 2, 100),  # already whole rounds
        (100, 201, 2, 51),  # 3 batches -> 4
        (100, 9, 4, 2),  # no size makes 4 batches of 9 rows: 5
        (10, 5, 8, 1),  # fewer rows than slots: one each
        (237, 2000, 1, 237),  # one at a time: the cost rule's size
        (245, 0, 2, 245),  # no rows known
    ],
)
def test_balance_fills_whole_rounds_of_parallel_batches(size, rows, parallel, expected):
    balanced, note = balance(size, rows, parallel)
    assert balanced == expected
    assert (balanced != size) == ("balanced to" in note)


def test_balance_never_leaves_a_slot_idle_nor_grows_a_batch():
    for parallel in range(2, 9):
        for size in range(1, 40):
            for rows in range(1, 150):
                balanced, _ = balance(size, rows, parallel)
                batches = -(-rows // balanced)
                assert 1 <= balanced <= size, (size, rows, parallel)
                assert batches >= min(parallel, rows), (size, rows, parallel)


def test_only_a_chosen_size_is_balanced_and_rows_are_counted_only_then():
    declared = {"a": Costs(10.0, 1.0), "b": Costs(10.0, 1.0)}
    asked = []

    def rows():
        asked.append(1)
        return {"a": 100, "b": 100}

    sizes, records = resolve_sizes({"a": AUTO, "b": 7}, declared, {}, {}, rows=rows, parallel=4)
    assert sizes == {"a": 25, "b": 7} and len(asked) == 1
    assert "balanced to 25 (100 rows in 4 batches, 4 at a time)" in records["a"]["why"]
    assert records["a"]["recommended"] == 190  # the cost rule's size, for the report
    kept, _ = resolve_sizes({"a": AUTO}, declared, {}, records, rows=rows, parallel=8)
    assert kept == {"a": 25} and len(asked) == 1  # kept: nothing counted, nothing moved


def test_the_workflow_balances_over_its_cores(tmp_path):
    """parallel_batches defaults to --cores (the config key in the plan job)."""
    config = tiny_config(tmp_path)
    config["analyses"]["gridfit"] = {"max_batch_size": AUTO}
    tiny_config(tmp_path, **config)
    stars = demo_stars(config["demo"]["n_stars"], config["demo"]["seed"], config["demo"]["snr"])
    table = demo_table(stars, ("gridfit",), ())
    table.to_csv(tmp_path / "config/observations.csv", index=False)
    snakemake(tmp_path, "--cores", "3", "results/plan/manifest.tsv")
    record = read_sizes(tmp_path / "results/plan")["gridfit"]
    rows = int((table["analysis"] == "gridfit").sum())
    assert record["max_batch_size"] == -(-rows // 3), record
    assert f"({rows} rows in 3 batches, 3 at a time)" in record["why"]


def _result(path, n_run, loop_s, setup_s):
    header = fits.Header({"LOOP_S": loop_s, "NRUN": n_run, "SETUP_S": setup_s})
    hdu = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.zeros(n_run))], header)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)


def test_costs_come_from_result_headers_and_benchmark_files(tmp_path):
    batches, bench = tmp_path / "batches", tmp_path / "bench"
    batches.mkdir()
    bench.mkdir()
    _result(batches / "gridfit-0123abcd-0000.fits", 100, 20.0, 0.5)
    _result(batches / "gridfit-0123abcd-0001.fits", 50, 10.0, 0.5)
    _result(batches / "snr-89abcdef-0000.fits", 10, 1.0, 0.1)
    (batches / "not-a-table.fits").write_text("junk")
    # Snakemake's benchmark format; the job took 3 s more than its member loop.
    (bench / "gridfit-0123abcd-0000.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\n23.0\t0:00:23\t812.5\t900.0\n"
    )
    costs = measured_costs(batches, bench)
    assert set(costs) == {"gridfit", "snr"}
    gridfit = costs["gridfit"]
    assert gridfit.batches == 2 and gridfit.per_obs_s == pytest.approx(0.2)
    assert gridfit.setup_s == pytest.approx((3.0 + 0.5) / 2) and gridfit.peak_mb == 812.5
    assert costs["snr"].peak_mb is None and costs["snr"].setup_s == pytest.approx(0.1)
    shares = {c.batch: c.setup_share for c in batch_costs(batches, bench)}
    assert shares["gridfit-0123abcd-0000"] == pytest.approx(3.0 / 23.0)
    assert measured_costs(tmp_path / "nowhere") == {}


@pytest.mark.slow
def test_workflow_chooses_keeps_and_rechooses_auto_sizes(tmp_path):
    """Declared costs give one gridfit batch; a no-op rerun stays one; a resize splits
    the batches by the measured costs (a batch may run 0.6 s: less than a measured job
    start and 11 observations, so the time limit wins); appended rows then rerun only
    the batches that hold them."""
    # One batch at a time: the arithmetic below is the cost rule's alone (balancing over
    # parallel batches has its own tests).
    config = tiny_config(
        tmp_path, target_setup_share=0.2, target_batch_minutes=0.01, parallel_batches=1
    )
    config["analyses"]["gridfit"] = {
        "max_batch_size": AUTO,
        "runtime_setup_s": 0.1,
        "runtime_per_obs_s": 0.01,
    }
    tiny_config(tmp_path, **config)
    stars = demo_stars(config["demo"]["n_stars"], config["demo"]["seed"], config["demo"]["snr"])
    table = demo_table(stars, *TEST_ANALYSES)
    held_back = table["obj"].isin(stars["obj"].iloc[8:])
    table[~held_back].to_csv(tmp_path / "config/observations.csv", index=False)
    snakemake(tmp_path)

    def gridfit_sizes():
        plans = (tmp_path / "results/plan/batches").glob("gridfit-*.json")
        return sorted(len(read_plan(p)["members"]) for p in plans)

    first = read_sizes(tmp_path / "results/plan")["gridfit"]
    # Declared: the share needs 0.1 x 0.8 / (0.2 x 0.01) = 40 (41 in floating point; 0.6 s
    # would allow (0.6 - 0.1) / 0.01 = 50): one batch of the 11 gridfit rows with files.
    declared, _ = choose_size(Costs(0.1, 0.01), 0.2, 0.01)
    assert first["max_batch_size"] == declared in (40, 41) and first["costs_source"] == "declared"
    assert gridfit_sizes() == [11]
    assert planned_jobs(tmp_path) == {}

    proc = snakemake(tmp_path, "--forcerun", "plan", "--config", "resize_batches=True")
    resized = read_sizes(tmp_path / "results/plan")["gridfit"]
    assert resized["costs_source"].startswith("measured on 1 batch")
    expected, _ = choose_size(Costs(**resized["costs"]), 0.2, 0.01)
    assert resized["max_batch_size"] == expected < 11
    assert f"max_batch_size auto = {expected}, chosen" in (tmp_path / "logs/plan.log").read_text()
    sizes = gridfit_sizes()
    assert max(sizes) == expected and sum(sizes) == 11
    assert "recommended" in proc.stderr and "set-up" in proc.stderr  # the end-of-run line
    costs = pd.read_csv(tmp_path / "results/batch_costs.tsv", sep="\t")
    assert set(costs["analysis"]) == {"gridfit", "snr"}
    assert (costs["setup_share_median"].between(0, 1)).all()

    # The flag was for one run: without it nothing reruns, the recorded size is kept
    # and appended rows go into the last chunk or new ones.
    assert planned_jobs(tmp_path) == {}
    batch_dir = tmp_path / "results/batches"
    before = {p.name: p.stat().st_mtime_ns for p in batch_dir.glob("gridfit-*.fits")}
    pd.concat([table[~held_back], table[held_back]]).to_csv(
        tmp_path / "config/observations.csv", index=False
    )
    snakemake(tmp_path)
    assert read_sizes(tmp_path / "results/plan")["gridfit"]["max_batch_size"] == expected
    after = {p.name: p.stat().st_mtime_ns for p in batch_dir.glob("gridfit-*.fits")}
    changed = {b for b in after if before.get(b) != after[b]}
    # 11 -> 13 gridfit rows: the chunks from the last partial one on change or are new.
    assert len(changed) == -(-13 // expected) - 11 // expected, changed
