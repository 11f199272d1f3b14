import os
import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# The importable helper library lives in scripts/starbatch (kept light here:
# every cluster job re-parses this file).
REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO / "scripts"))
# Committed inputs live in the repository; everything generated goes under the
# working directory (--directory), so one checkout serves many runs.
EMULATOR = str(REPO / "resources/emulator/apstar-cannon.npz")
REAL_SAS = str(REPO / "resources/real/sas")
# One software environment for every rule (used with --software-deployment-method conda).
CONDA_ENV = str(REPO / "environment.yml")
from starbatch.manifest import batches_by_analysis, read_manifest, shards


wildcard_constraints:
    batch=r"[A-Za-z0-9_]+-[0-9a-f]{8}-[0-9]{4}",
    analysis=r"[A-Za-z0-9_]+",
    shard=r"[0-9]{4}",
    grid=r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]*",


def sas_root():
    root = config.get("sas_base_dir") or os.environ.get("SAS_BASE_DIR")
    if not root:
        raise WorkflowError(
            "no SAS root: set sas_base_dir in the config or the SAS_BASE_DIR variable"
        )
    return root


def demo_enabled():
    return bool(config.get("demo", {}).get("enabled", False))


def analysis_setting(analysis, key, default=None):
    return config.get("analyses", {}).get(analysis, {}).get(key, default)


def max_batch_sizes():
    from starbatch.analyses import ANALYSES

    return {
        name: analysis_setting(name, "max_batch_size", config["max_batch_size"])
        for name in ANALYSES
    }


def planned():
    """The manifest written by the plan checkpoint (re-evaluated after it runs)."""
    return read_manifest(checkpoints.plan.get().output.manifest)


def planned_batch(batch):
    for row in planned():
        if row["batch"] == batch:
            return row
    raise WorkflowError(f"batch {batch} is not in the current plan")


def batch_inputs(wildcards):
    row = planned_batch(wildcards.batch)
    return {
        "plan": f"results/plan/batches/{wildcards.batch}.json",
        "models": row["model_files"],
    }


def analysis_shards(analysis):
    by_analysis = batches_by_analysis(planned())
    return shards(by_analysis.get(analysis, []), config.get("aggregate_fanin", 200))


def shard_inputs(wildcards):
    members = analysis_shards(wildcards.analysis)[int(wildcards.shard)]
    return [f"results/batches/{b}.fits" for b in members]


def analysis_parts(wildcards):
    n = len(analysis_shards(wildcards.analysis))
    return [f"results/collect/{wildcards.analysis}/part-{k:04d}.fits" for k in range(n)]


def analysis_summaries(wildcards):
    names = sorted(batches_by_analysis(planned()))
    return [f"results/{name}/summary.fits" for name in names]


def get_final_output():
    out = [
        "results/summary.fits",
        "results/summary.csv",
        "results/failed.csv",
        "results/plots/kiel.png",
        "results/plots/timing.png",
    ]
    if demo_enabled():
        out.append("results/plots/truth_vs_fit.png")
    return out


def run_summary():
    """One line at the end of a run: how many tasks ran, failed, were skipped."""
    from starbatch.rerun import count_rows

    failed = count_rows("results/failed.csv")
    skipped = count_rows("results/plan/skipped.csv")
    if failed is None:
        return
    logger.info(
        f"starbatch: {failed} failed observation(s) (results/failed.csv), "
        f"{skipped or 0} skipped for missing files (results/plan/skipped.csv)"
        + (
            "; after fixing, rerun them with: python scripts/rerun_failed.py"
            if failed
            else ""
        )
    )
