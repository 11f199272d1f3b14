# Cluster resources of the batch jobs (docs/cluster.md): memory is the analysis's (the set-up dominates:
# a grid or a network in memory); the time limit is the set-up plus a time per
# observation times the batch's size from the plan manifest. Both grow with the
# attempt, so a retry (--retries) after a TIMEOUT or an OUT_OF_MEMORY asks for more.
# Each analysis declares its values (Analysis.resources); the config overrides them
# (analyses.<name>.mem_mb, runtime_setup_s, runtime_per_obs_s, threads, gpu).

import math

# Shortest time limit asked for (minutes): tiny batches on a slow file system
# should not hit TIMEOUT.
MIN_RUNTIME_MIN = config.get("min_runtime_minutes", 10)


def batch_analysis(batch):
    """The analysis of a batch ID ({analysis}-{hash}-{chunk}): no manifest read."""
    return batch.split("-", 1)[0]


def batch_setting(analysis, key):
    return analysis_setting(analysis, key, REGISTRY[analysis].resource(key))


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
