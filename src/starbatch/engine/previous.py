"""The previous version of an output, kept beside it as a hard link (``.NAME.previous``),
so that a job that fails leaves the output as it was.

Snakemake deletes a job's outputs before it runs it, and again when it fails (a full
disk, a killed job). The plan and the global summary keep a link to what they last
wrote, which costs no space; the workflow links it back when the output is missing
(``restore``) and asks for the job again (Snakemake records a failed job's inputs as if
it had made its outputs from them, so a restored file would otherwise look current:
workflow/rules/common.smk). Snakemake's own ``update()`` restores a copy with a new
time, which hides the change the failed job was for: a table edit would never be
planned."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("starbatch")


def previous_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.previous")


def keep(paths: Iterable[str | Path]) -> None:
    """Link each output to its previous-version name (replacing the old link)."""
    for path in map(Path, paths):
        target = previous_path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.link(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:  # a file system without hard links: nothing kept
            log.warning("no previous version of %s kept: %s", path, exc)


def restore(paths: Iterable[str | Path]) -> list[Path]:
    """Link back each missing output that has a previous version; those restored."""
    restored = []
    for path in map(Path, paths):
        if path.exists():
            continue
        try:
            os.link(previous_path(path), path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot restore %s: %s", path, exc)
            continue
        restored.append(path)
    return restored
