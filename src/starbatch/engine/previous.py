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


def roll_back(paths: Iterable[str | Path]) -> bool:
    """Put a job's kept outputs back as they were if the job did not finish: when one is
    missing or is not its previous version (a finished job links each to its previous
    version last), every one that differs goes and its previous version comes back.
    Whether it did; nothing without previous versions of them all (a first run)."""
    paths = [Path(p) for p in paths]
    kept = [previous_path(p) for p in paths]
    if not all(k.exists() for k in kept):
        return False
    if all(_same(p, k) for p, k in zip(paths, kept, strict=True)):
        return False
    for path, old in zip(paths, kept, strict=True):
        if not _same(path, old):
            path.unlink(missing_ok=True)
            os.link(old, path)
    return True


def _same(path: Path, other: Path) -> bool:
    """One file, or a copy of it with its size and time (a project copied without its
    hard links, e.g. by rsync -a)."""
    try:
        a, b = path.stat(), other.stat()
    except OSError:
        return False
    same_file = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    return same_file or (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)
