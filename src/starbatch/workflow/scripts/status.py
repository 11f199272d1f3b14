"""What the results say (the Snakemake target `status`, or `starbatch status`): per
analysis, tasks done, failed (by flag), not run (file missing at planning), and stale
(input file changed since the row was made, or the model the next run would load is
not the one it was made with). `starbatch rerun failed|stale` reruns them.

CLI (in a project directory): python $SCRIPTS/status.py
"""

import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import load_registry
from starbatch.engine.entry import run_entry
from starbatch.engine.status import format_status, status

log = logging.getLogger("starbatch")


def from_snakemake(smk) -> None:
    registry = load_registry(smk.config.get("analysis_modules", []))
    result = status(smk.input.summary, smk.input.skipped, smk.params.root, registry)
    log.info("status of %s:\n%s", smk.input.summary, format_status(result))


def cli() -> None:
    from starbatch.offline.project import status as project_status

    print(format_status(project_status()))


run_entry(from_snakemake, cli, globals())
