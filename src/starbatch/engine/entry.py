"""Shared plumbing for the thin entry points in scripts/: logging to the rule's
log file, and one-line error messages instead of tracebacks for user errors."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager

from .errors import BatchError, TableError

USER_ERRORS = (TableError, BatchError, FileNotFoundError, ValueError)


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


@contextmanager
def user_errors():
    """Report a user error (bad table, bad file, failed batch) as one clear
    message and exit 1; programming errors keep their traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        logging.getLogger("starbatch").error("%s", exc)
        sys.exit(1)


def run_entry(from_snakemake: Callable[[object], None], cli: Callable[[], None], g: dict) -> None:
    """Call ``from_snakemake(snakemake)`` under a `script:` directive, else ``cli()``."""
    smk = g.get("snakemake")
    if smk is not None:
        setup_logging(smk.log[0] if smk.log else None)
        with user_errors():
            from_snakemake(smk)
    else:
        setup_logging()
        with user_errors():
            cli()
    if g.get("__name__") == "__main__":
        exit_now()


def exit_now() -> None:
    """End a finished job without the interpreter's teardown of its ~1000 modules
    (numpy, astropy, scipy: 0.1-0.3 s, paid by every job of a run). Everything the job
    wrote is closed by then; the log and the standard streams are flushed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
