import atexit
import os
import sys
import time
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# This file is in <package>/workflow/rules, also when the workflow is a module of
# another Snakefile (whose directory workflow.basedir would be). The package is an
# installed starbatch, else the checkout this file is in (not installed).
PACKAGE = Path(workflow.current_basedir).parents[1]
try:
    import starbatch
except ImportError:
    sys.path.insert(0, str(PACKAGE.parent))

# Keep imports here light: every cluster job re-parses this file.
from starbatch import resources
from starbatch.workflow import CONDA_ENV, SCHEMAS
from starbatch.analyses.registry import (
    LABEL_ANALYSES,
    RegistryError,
    family,
    load_registry,
)
from starbatch.engine.identifiers import IDENTIFIER_PATTERN
from starbatch.engine.plan.read import manifest_analyses, manifest_batches, parts
from starbatch.engine.plan.sizing import DEFAULT_BATCH_MINUTES, DEFAULT_SETUP_SHARE

# Shipped inputs come with the library or the checkout; everything generated goes
# under the working directory (--directory), so one checkout serves many runs.
EMULATOR = str(resources.EMULATOR)
REAL_SAS = str(resources.REAL_SAS)
# The runtime environment of every rule (used with --software-deployment-method conda).
CONDA_ENV = str(CONDA_ENV)


PLAN_DIR = "results/plan"
PLAN_MANIFEST = f"{PLAN_DIR}/manifest.tsv"
PLAN_SKIPPED = f"{PLAN_DIR}/skipped.csv"
SUMMARY = {
    "fits": "results/summary.fits",
    "csv": "results/summary.csv",
    "parquet": "results/summary.parquet",
    "failed": "results/failed.csv",
}
# Outputs that a failed job leaves as they were (engine/previous.py), by the rule that
# makes them.
KEPT = {"plan": [PLAN_MANIFEST, PLAN_SKIPPED], "summary": list(SUMMARY.values())}
REDO_DIR = ".starbatch/redo"


def redo_marker(rule):
    """An input of ``rule`` that starbatch makes newer when the rule must run again
    although Snakemake would not see why (ask_redo). A directory: Snakemake goes by its
    time alone (it compares files' checksums too), and touching it needs no space on
    a full disk. Made old if missing."""
    path = f"{REDO_DIR}/{rule}"
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        os.utime(path, ns=(0, 0))
    return path


def ask_redo(rule):
    """Make the marker newer than the rule's outputs: an updated input to Snakemake."""
    newest = max(
        (os.stat(p).st_mtime_ns for p in KEPT[rule] if os.path.exists(p)), default=0
    )
    now = max(
        time.time_ns(), newest + 1_000_000_000
    )  # a clock behind the file server's
    os.utime(redo_marker(rule), ns=(now, now))


def mend_outputs():
    """Before anything is scheduled, and after a failed job: the kept outputs of a job
    that did not finish are put back as they were (engine/previous.py) and the job is
    asked for again; so is a plan that stopped half-way (killed while writing, a full
    disk)."""
    if not workflow.is_main_process or workflow.dryrun:
        return  # a job's own Snakemake (outputs are the main process's), or changes nothing
    if not workflow.persistence and any(Path(".snakemake/locks").glob("*.lock")):
        return  # before this run's lock: another run is at work here, or it was killed
    from starbatch.engine.plan.record import whole
    from starbatch.engine.previous import roll_back

    for rule, paths in KEPT.items():
        if roll_back(paths):
            logger.info(
                f"starbatch: {', '.join(paths)} are back as they were before a {rule} job "
                "that did not finish; it runs again"
            )
            ask_redo(rule)
    why = whole(PLAN_DIR, PLAN_MANIFEST)
    if why:
        logger.warning(f"starbatch: planning again ({why})")
        ask_redo("plan")


def analysis_registry():
    """Built-in analyses plus the user's (config analysis_modules, entry points)."""
    try:
        return load_registry(config.get("analysis_modules", []))
    except RegistryError as exc:
        raise WorkflowError(str(exc)) from None


REGISTRY = analysis_registry()


def parallel_batches():
    """The default of the config's parallel_batches (batch jobs at once, to balance
    auto batch sizes, engine/plan/sizing.py): --cores for a local run. On a cluster --jobs
    only caps the queue, not what runs at once: 1 (no balancing) unless configured."""
    if workflow.non_local_exec:
        return 1
    return max(1, workflow._cores or 1)


# In the config, not params: the plan job reads it when it chooses a size, and a run
# with other --cores must not rerun the plan.
config.setdefault("parallel_batches", parallel_batches())


# Chunk and part numbers are zero-padded to 4 digits and grow past 9999 (a group
# of more than 10,000 batches), so the constraints take 4 or more digits (written
# {4}[0-9]*: Snakemake's wildcard syntax cannot hold an open-ended {4,}).
wildcard_constraints:
    batch=r"[A-Za-z0-9_]+-[0-9a-f]{8}-[0-9]{4}[0-9]*",
    analysis=r"[A-Za-z0-9_]+",
    part=r"[0-9]{4}[0-9]*",
    grid=IDENTIFIER_PATTERN,


def check_config():
    """What the schema cannot say, checked before any job runs: a typo here must
    neither silently reuse old results nor fail halfway through a run."""
    from starbatch.engine.identifiers import check_identifier
    from starbatch.methods.gridfit.grid import GridSpec

    problems = []
    # A missing table with a previous plan present would silently reuse that plan
    # ("Nothing to be done"); without one, Snakemake reports the missing input.
    if os.path.exists("results/plan/manifest.tsv"):
        tables = [("observations", config["observations"])]
        tables += [
            (f"task_specs[{i}]", s) for i, s in enumerate(config.get("task_specs", []))
        ]
        for key, path in tables:
            if not os.path.isfile(path):
                problems.append(f"{key}: file {path!r} not found (in {os.getcwd()})")
    for name in config.get("analyses", {}):
        if name not in REGISTRY:
            problems.append(
                f"analyses.{name}: unknown analysis; known: {', '.join(sorted(REGISTRY))}"
            )
    root = config.get("sas_base_dir") or os.environ.get("SAS_BASE_DIR")
    if root and not demo_enabled() and not os.path.isdir(root):
        problems.append(f"sas_base_dir: {root!r} is not a directory")
    for name, spec in config.get("grids", {}).items():
        try:
            check_identifier("grid name", name)
            GridSpec(
                **{axis: tuple(spec[axis]) for axis in ("teff", "logg", "feh")}
            ).axes()
        except ValueError as exc:
            problems.append(f"grids.{name}: {exc}")
    if problems:
        raise WorkflowError(
            "problem(s) in the config:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def buildable_models():
    """Model files a rule can make (the planner rejects other missing ones)."""
    return [f"resources/grids/{name}.npz" for name in config.get("grids", {})]


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
    return {
        name: analysis_setting(name, "max_batch_size", config["max_batch_size"])
        for name in REGISTRY
    }


def training_config(filename):
    """A project's own training config (resources/models/) if it has one, else the
    shipped one the committed model was trained with."""
    return str(resources.training_config(filename))


def default_model_files(wildcards):
    """Model files the label analyses load with default parameters (evaluation)."""
    from starbatch.offline import evaluation

    return evaluation.default_model_files(LABEL_ANALYSES)


def plan_manifest():
    """The plan checkpoint's manifest path (re-evaluated after the checkpoint runs)."""
    return checkpoints.plan.get().output.manifest


def planned_batch(batch):
    # A dict lookup: input functions run once per job, a scan would be O(batches^2).
    row = manifest_batches(plan_manifest()).get(batch)
    if row is None:
        raise WorkflowError(f"batch {batch} is not in the current plan")
    return row


def batch_inputs(wildcards):
    row = planned_batch(wildcards.batch)
    return {
        "plan": f"results/plan/batches/{wildcards.batch}.json",
        "models": row["model_files"],
    }


def analysis_parts(analysis):
    """An analysis's batches, in parts of at most tables_per_part."""
    by_analysis = manifest_analyses(plan_manifest())
    return parts(by_analysis.get(analysis, []), config["tables_per_part"])


def part_inputs(wildcards):
    members = analysis_parts(wildcards.analysis)[int(wildcards.part)]
    return [f"results/batches/{b}.fits" for b in members]


def analysis_summary_inputs(wildcards):
    """An analysis's batch tables, or its parts when it has more than one: a stage
    costs a job start, paid only where a part's size needs it."""
    parts = analysis_parts(wildcards.analysis)
    if len(parts) == 1:
        return [f"results/batches/{b}.fits" for b in parts[0]]
    return [
        f"results/collect/{wildcards.analysis}/part-{k:04d}.fits"
        for k in range(len(parts))
    ]


def summary_inputs(wildcards):
    """The global summary's inputs: the batch tables themselves when they fit in one
    part (then it runs beside the per-analysis summaries, not after them: one job less
    on the way to the plots), else the per-analysis summaries."""
    by_analysis = manifest_analyses(plan_manifest())
    names = sorted(by_analysis)
    batches = [b for name in names for b in by_analysis[name]]
    if len(batches) <= config["tables_per_part"]:
        return [f"results/batches/{b}.fits" for b in batches]
    return [f"results/{name}/summary.fits" for name in names]


def label_summaries(wildcards):
    """Per-analysis Parquet summaries of the label analyses and their variants."""
    names = sorted(manifest_analyses(plan_manifest()))
    return [f"results/{n}/summary.parquet" for n in names if family(n) is not None]


def get_final_output():
    out = [
        "results/summary.fits",
        "results/summary.csv",
        "results/summary.parquet",
        "results/failed.csv",
        "results/compare/labels.parquet",
        "results/plots/compare.html",
        "results/plots/kiel.png",
        "results/plots/timing.png",
        "results/flags.tsv",
        "results/plots/flags.png",
        "results/batch_costs.tsv",
    ]
    if demo_enabled():
        out.append("results/plots/truth_vs_fit.png")
    return out


def cancel_exit_timers():
    """Cancel the timers Snakemake's job rate limiter leaves running: each is a
    non-daemon thread that wakes the finished scheduler after a second, and Python
    waits for it before exiting, ~1 s at the end of every run."""
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


def run_summary():
    """The line at the end of a run: how many tasks ran, failed, were skipped."""
    cancel_exit_timers()
    from starbatch.engine.status import count_rows
    from starbatch.report.costs import cost_lines

    for line in cost_lines("results/batch_costs.tsv"):
        logger.info(f"starbatch: {line}")

    rerun = "starbatch rerun"
    failed = count_rows("results/failed.csv")
    skipped = count_rows("results/plan/skipped.csv") or 0
    if failed is not None:
        failed -= skipped  # failed.csv lists the skipped rows too (flag NOT_RUN)
        logger.info(
            f"starbatch: {failed} failed observation(s) (results/failed.csv), "
            f"{skipped} not run for missing files (results/plan/skipped.csv)"
            + (
                f"; after fixing, rerun them with: {rerun} failed"
                if failed + skipped
                else ""
            )
        )


def report_stale_models():
    """At the end of every run (also "Nothing to be done", after which Snakemake calls
    no handler): how many rows were made with a model other than the one the next run
    would load, and the command that reruns them."""
    from starbatch.engine.status import count_stale_models

    stale = count_stale_models(
        sorted(Path("results").glob("*/summary.parquet")), REGISTRY
    )
    if stale:
        print(
            f"starbatch: {stale} row(s) were made with a model file other than the one "
            "the next run would load (a new or replaced file in resources/models/); "
            "rerun them with: starbatch rerun stale",
            file=sys.stderr,
        )


if workflow.is_main_process and not workflow.dryrun:
    atexit.register(report_stale_models)


check_config()
mend_outputs()
