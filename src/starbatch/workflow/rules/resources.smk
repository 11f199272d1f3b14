# Cluster resources of the batch jobs (docs/cluster.md). Once batches have run, the
# time limit and the memory come from their measured costs, which planning records in
# results/plan/sizes.json (engine/plan/sizing.py): the fixed cost plus the time per
# observation times the batch's size, and the largest peak memory, each with a margin.
# Before any measurement they come from what each analysis declares
# (Analysis.resources); analyses.<name> keys in the config (mem_mb, runtime_setup_s,
# runtime_per_obs_s, threads, gpu) override both. Both grow with the attempt, so a
# retry (--retries) after a TIMEOUT or an OUT_OF_MEMORY asks for more.

import math

from starbatch.engine.plan.sizing import recorded_costs

# Shortest time limit asked for (minutes): tiny batches on a slow file system
# should not hit TIMEOUT.
MIN_RUNTIME_MIN = config.get("min_runtime_minutes", 10)
# Measured costs are medians of earlier batches: room for a slower node or file system.
MEASURED_TIME_MARGIN = 2.0
MEASURED_MEM_MARGIN = 1.5


def batch_analysis(batch):
    """The analysis of a batch ID ({analysis}-{hash}-{chunk}): no manifest read."""
    return batch.split("-", 1)[0]


def batch_setting(analysis, key):
    return analysis_setting(analysis, key, REGISTRY[analysis].resource(key))


def measured(analysis, *keys):
    """The analysis's measured costs from the plan's record; None before any batch
    ran, or when the config sets one of ``keys`` (the config wins)."""
    if any(analysis_setting(analysis, key) is not None for key in keys):
        return None
    return recorded_costs("results/plan").get(analysis)


def batch_mem_mb(wildcards, attempt):
    analysis = batch_analysis(wildcards.batch)
    costs = measured(analysis, "mem_mb")
    if costs is not None and costs.peak_mb:
        mem = costs.peak_mb * MEASURED_MEM_MARGIN
    else:
        mem = batch_setting(analysis, "mem_mb")
    return int(math.ceil(mem * attempt))


def batch_runtime(wildcards, attempt):
    """Minutes: the fixed cost + n_members x the time per observation, times the
    attempt (measured costs with a margin, else the configured or declared ones)."""
    row = planned_batch(wildcards.batch)
    analysis = row["analysis"]
    costs = measured(analysis, "runtime_setup_s", "runtime_per_obs_s")
    if costs is not None:
        seconds = costs.batch_seconds(row["n_members"]) * MEASURED_TIME_MARGIN
    else:
        setup = batch_setting(analysis, "runtime_setup_s")
        per_obs = batch_setting(analysis, "runtime_per_obs_s")
        seconds = setup + row["n_members"] * per_obs
    return max(MIN_RUNTIME_MIN, math.ceil(seconds * attempt / 60))


def batch_threads(wildcards):
    return int(batch_setting(batch_analysis(wildcards.batch), "threads"))


def batch_gpus(wildcards):
    return int(batch_setting(batch_analysis(wildcards.batch), "gpu"))


def batch_group(wildcards):
    """One group per analysis (batches_<analysis>): --group-components could pack an
    analysis's small batches together, never mixing GPU and CPU jobs. The SLURM
    profile does not pack (docs/cluster.md: the plugin runs a group's jobs in turn)."""
    return f"batches_{batch_analysis(wildcards.batch)}"
