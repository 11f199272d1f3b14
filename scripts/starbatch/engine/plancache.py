"""The plan's record of what it was made from, so that re-planning an unchanged table
costs a hash of the table rather than a whole plan.

Planning runs on every table edit, and Snakemake reruns it whenever the table's mtime
changes. A plan depends only on: the table and spec files (their bytes), the SAS root,
the batch sizes, the planning and analysis code, the workflow's own settings (the
caller's ``extra``), which files exist in the directories the table points into, and
which model files exist. The record (``cache.json`` in the plan directory) holds a
digest of the first five, the mtime of every directory listed (a file added or removed
changes it), the model files, the size and mtime of every plan file written, and the
plan's counts. When all of them still hold, nothing is read or written.

A directory modified within ``RACY_S`` of being listed could change again within the
filesystem's timestamp granularity without its mtime moving (git's "racy" index
entries): then no record is kept and the next plan is a full one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .atomic import write_json

log = logging.getLogger("starbatch")

FORMAT = "starbatch-plan-record-1"
RECORD = "cache.json"
RACY_S = 2.0


def file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def code_files(registry: Mapping[str, type]) -> list[Path]:
    """The planning code (this package, every module of it) and the modules defining
    each analysis and its data product (a user's module lives outside the package)."""
    package = Path(__file__).resolve().parents[1]
    files = set(package.rglob("*.py"))
    for cls in registry.values():
        for klass in (*cls.__mro__, type(getattr(cls, "product", None))):
            source = getattr(sys.modules.get(klass.__module__), "__file__", None)
            if source:
                files.add(Path(source).resolve())
    return sorted(files)


def plan_key(
    tables: Iterable[str | Path],
    root: Path,
    max_batch_size,
    registry: Mapping[str, type],
    extra: str = "",
) -> str | None:
    """Digest of everything a plan is made from except the file system's state; None
    when a table cannot be read (the full plan then says what is wrong with it)."""
    h = hashlib.sha256(FORMAT.encode())
    for path in tables:
        try:
            h.update(f"\0table {Path(path).resolve()} {file_digest(Path(path))}".encode())
        except OSError:
            return None
    sizes = max_batch_size if isinstance(max_batch_size, Mapping) else {"*": max_batch_size}
    h.update(f"\0root {Path(root).resolve()}\0sizes {json.dumps(sizes, sort_keys=True)}".encode())
    for name, cls in sorted(registry.items()):
        h.update(f"\0analysis {name} {cls.__module__}.{cls.__qualname__} {cls.version}".encode())
    for path in code_files(registry):
        h.update(f"\0code {path} {file_digest(path)}".encode())
    h.update(f"\0extra {extra}".encode())
    return h.hexdigest()


def directory_mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def racy(directories: Mapping[str, int | None]) -> bool:
    """Whether any directory changed too recently for its mtime to be trusted."""
    now = time.time_ns()
    return any(m is not None and now - m < RACY_S * 1e9 for m in directories.values())


def output_state(plan_dir: Path, outputs: Iterable[Path]) -> dict:
    """{path relative to the plan directory: [size, mtime_ns]} (None if absent)."""
    state = {}
    for path in outputs:
        try:
            st = os.stat(path)
            state[os.path.relpath(path, plan_dir)] = [st.st_size, st.st_mtime_ns]
        except OSError:
            state[os.path.relpath(path, plan_dir)] = None
    return state


def forget(plan_dir: Path) -> None:
    """Drop the record before the plan files change (an interrupted plan then never
    leaves a record that describes other files)."""
    (Path(plan_dir) / RECORD).unlink(missing_ok=True)


def save(
    plan_dir: Path,
    key: str,
    directories: Mapping[str, int | None],
    outputs: Iterable[Path],
    model_files: Iterable[str],
    stats: dict,
) -> bool:
    """Record a plan just written (``directories``: mtimes from before their listing);
    False, and no record, when a directory is racy."""
    plan_dir = Path(plan_dir)
    if racy(directories):
        log.info("plan record not kept: a listed directory changed in the last %.0f s", RACY_S)
        return False
    outputs = list(outputs)
    write_json(
        plan_dir / RECORD,
        {
            "format": FORMAT,
            "key": key,
            "directories": dict(directories),
            "outputs": output_state(plan_dir, outputs),
            "batch_files": sum(1 for p in outputs if p.parent.name == "batches"),
            "model_files": sorted(set(model_files)),
            "stats": stats,
        },
    )
    return True


def unchanged(
    plan_dir: Path, key: str | None, root: Path, buildable: Iterable[str] | None
) -> dict | None:
    """The recorded plan's counts if nothing it was made from has changed, else None."""
    plan_dir = Path(plan_dir)
    if key is None:
        return None
    try:
        record = json.loads((plan_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
        return None
    root = Path(root)
    if any(directory_mtime(root / d) != m for d, m in record["directories"].items()):
        return None
    outputs = [plan_dir / p for p in record["outputs"]]
    if output_state(plan_dir, outputs) != record["outputs"]:
        return None
    try:  # a plan file added by hand would be kept by the record but removed by a plan
        if len(os.listdir(plan_dir / "batches")) != record["batch_files"]:
            return None
    except OSError:
        return None
    if buildable is not None:  # a needed model file deleted: the full plan says which row
        buildable = set(buildable)
        if any(m not in buildable and not Path(m).exists() for m in record["model_files"]):
            return None
    return record["stats"]
