"""Atomic file writes: a reader (or an interrupted run) never sees half a file."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def temporary_path(path: Path) -> Path:
    """The one temporary name per target (``.{name}.tmp``) that every writer here uses."""
    return path.with_name(f".{path.name}.tmp")


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
    tmp = temporary_path(path)
    tmp.unlink(missing_ok=True)  # stale, and writers such as astropy refuse to overwrite
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # after a rename there is nothing to remove (a syscall per file)
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def write_text_if_changed(
    path: str | Path, text: str, same: Callable[[bytes, str], bool] | None = None
) -> bool:
    """Write only if the content differs, keeping the mtime of unchanged files
    (Snakemake's mtime trigger would otherwise rerun everything downstream).
    ``same(old bytes, text)``: whether differing bytes still say the same."""
    data = text.encode()
    try:
        with open(path, "rb") as fh:  # bytes, not text: no decoding of a large plan
            old = fh.read()
        if old == data or (same is not None and same(old, text)):
            return False
    except OSError:
        pass
    # atomic_path without its mkdir and unlink per file (a first plan writes 10^4):
    # "wb" truncates a stale temporary, and the directory is made only if missing.
    path = Path(path)
    tmp = temporary_path(path)
    try:
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def write_json(path: str | Path, doc: dict) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n"))


def save_npz(path: str | Path, arrays: dict) -> None:
    """Like ``np.savez`` but byte-reproducible (fixed zip timestamps), so re-running the
    derivation on the same input gives an identical committed file."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue()
            )
