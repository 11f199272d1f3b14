"""Atomic file writes: a reader (or an interrupted run) never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path in the same directory; rename it over ``path``
    only if the block succeeds, otherwise delete it.

    The temporary name is fixed per target (``.{name}.tmp``): a writer killed
    mid-write (kill -9, a node failure) leaves at most that one hidden file, and
    the rerun that rewrites the target removes it. One writer per target at a
    time (Snakemake's lock guarantees it for rule outputs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # stale, and writers such as astropy refuse to overwrite
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def write_text_if_changed(path: str | Path, text: str) -> bool:
    """Write only if the content differs, keeping the mtime of unchanged files
    (Snakemake's mtime trigger would otherwise rerun everything downstream)."""
    path = Path(path)
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return True
