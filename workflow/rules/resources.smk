# Cluster resources of the batch jobs (docs/cluster.md).
#
# Only analyse_batch runs on cluster nodes. Its memory is the analysis's (the
# set-up dominates: a grid or a network in memory); its runtime is the set-up
# plus a time per observation times the batch's size from the plan manifest.
# Both grow with the attempt, so a retry (--retries) after a TIMEOUT or an
# OUT_OF_MEMORY asks for more. Every value can be set per analysis in the config
# (analyses.<name>.mem_mb, runtime_setup_s, runtime_per_obs_s, threads, gpu).
#
# Everything else is cheap and runs on the submitting host: planning reads the
# table and stats its files; collecting merges at most aggregate_fanin tables;
# plots; the demo data; build_grid (about a second for the demo grid, and one
# queue wait saved before any batch can start).

import math


localrules:
    all,
    demo_spectra,
    truth_vs_fit,
    plan,
    build_grid,
    collect_part,
    collect_analysis,
    summary,
    kiel,
    timing,
    real_spectra_table,


# Measured on the demo (gridfit ~0.2 s and ~600 MB per 100-star batch of the
# default grid; snr ~0.05 s per star, ~100 MB) with generous margins for real
# files on shared file systems. apogeenet and cannon: a network or a trained
# model in memory; GPUs only when the config asks (analyses.apogeenet.gpu).
BATCH_RESOURCES = {
    "gridfit": {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 1.0},
    "snr": {"mem_mb": 1000, "runtime_setup_s": 30, "runtime_per_obs_s": 0.2},
    "cannon": {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 0.5},
    "apogeenet": {
        "mem_mb": 4000,
        "runtime_setup_s": 120,
        "runtime_per_obs_s": 0.5,
        "threads": 2,
    },
}
# The apVisit variants cost what their apStar analysis does (plus a resampling).
for _name in ("gridfit", "cannon", "apogeenet"):
    BATCH_RESOURCES[f"{_name}_visit"] = BATCH_RESOURCES[_name]
# An analysis not listed above (a new one) until its config says otherwise.
FALLBACK_RESOURCES = {
    "mem_mb": 4000,
    "runtime_setup_s": 300,
    "runtime_per_obs_s": 10.0,
    "threads": 1,
    "gpu": 0,
}
# Shortest time limit asked for (minutes): tiny batches on a slow file system
# should not hit TIMEOUT.
MIN_RUNTIME_MIN = 10


def batch_analysis(batch):
    """The analysis of a batch ID ({analysis}-{hash}-{chunk}): no manifest read."""
    return batch.split("-", 1)[0]


def batch_setting(analysis, key):
    default = BATCH_RESOURCES.get(analysis, {}).get(key, FALLBACK_RESOURCES[key])
    return analysis_setting(analysis, key, default)


def batch_mem_mb(wildcards, attempt):
    return int(batch_setting(batch_analysis(wildcards.batch), "mem_mb") * attempt)


def batch_runtime(wildcards, attempt):
    """Minutes: set-up + n_members x per-observation time, times the attempt."""
    row = planned_batch(wildcards.batch)
    analysis = row["analysis"]
    setup = batch_setting(analysis, "runtime_setup_s")
    per_obs = batch_setting(analysis, "runtime_per_obs_s")
    seconds = setup + row["n_members"] * per_obs
    return max(MIN_RUNTIME_MIN, math.ceil(seconds * attempt / 60))


def batch_threads(wildcards):
    return int(batch_setting(batch_analysis(wildcards.batch), "threads"))


def batch_gpus(wildcards):
    return int(batch_setting(batch_analysis(wildcards.batch), "gpu"))


def batch_group(wildcards):
    """One group per analysis (batches_<analysis>), so --group-components packs
    small batches of one analysis together and never mixes GPU and CPU jobs."""
    return f"batches_{batch_analysis(wildcards.batch)}"
