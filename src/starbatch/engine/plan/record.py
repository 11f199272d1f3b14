"""The plan's record of what it was made from, so that re-planning an unchanged table
costs a hash of the table rather than a whole plan.

Planning runs on every table edit, and Snakemake reruns it whenever the table's mtime
changes. A plan depends only on: the table and spec files (their bytes), the SAS root,
the batch sizes, the planning and analysis code, the workflow's digest (the caller's
``extra``: its schema, the project's own model files), which files exist in the
directories the table points into, and which model files exist. The record
(``record.json`` in the plan directory) holds a digest of the first five, the mtime,
ctime, inode and device of every directory listed (taken before its listing: a file
added or removed moves the mtime, a chmod the ctime, a swapped-in directory the inode),
the model files, the size and mtime of every plan file written (the SHA-256 of the
manifest and the skipped rows, which Snakemake touches and deletes as the checkpoint's
outputs: their previous versions stand in, engine/previous.py), and the plan's counts.
When all of them still hold, nothing is read or written.

The record is also the plan's seal: it is dropped before any plan file changes and
written last, so a manifest without a record that names its digest belongs to a plan
that stopped half-way (killed, a full disk) and is made again (``whole``).

A directory modified within ``RACY_S`` before it was listed could change again within
the filesystem's timestamp granularity (1 s on some NFS and Lustre servers) without its
times moving (git's "racy" index entries): then the record keeps no key and the next
plan is a full one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..atomic import write_json
from ..previous import previous_path
from ..provenance import file_sha256

log = logging.getLogger("starbatch")

FORMAT = "starbatch-plan-record-2"
RECORD = "record.json"
RACY_S = 2.0


def code_files(registry: Mapping[str, type]) -> list[Path]:
    """The planning code (this package, every module of it) and the modules defining
    each analysis and its data product (a user's module lives outside the package)."""
    package = Path(__file__).resolve().parents[2]
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
            h.update(f"\0table {Path(path).resolve()} {file_sha256(path)}".encode())
        except OSError:
            return None
    sizes = max_batch_size if isinstance(max_batch_size, Mapping) else {"*": max_batch_size}
    # As given too: the skipped report's reasons name the root as it was written.
    h.update(f"\0root {root} {Path(root).resolve()}".encode())
    h.update(f"\0sizes {json.dumps(sizes, sort_keys=True)}".encode())
    for name, cls in sorted(registry.items()):
        h.update(f"\0analysis {name} {cls.__module__}.{cls.__qualname__} {cls.version}".encode())
    for path in code_files(registry):
        h.update(f"\0code {path} {file_sha256(path)}".encode())
    h.update(f"\0extra {extra}".encode())
    return h.hexdigest()


def directory_state(path: Path) -> list[int] | None:
    """What a directory's listing can change without: mtime and ctime (a chmod, which
    a user cannot backdate), inode and device (a directory swapped in); None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def racy(state: list[int] | None, listed_ns: int) -> bool:
    """Whether a change right after the listing could leave ``state`` as it is: the
    directory changed within RACY_S (timestamp granularity, e.g. 1 s on NFS or
    Lustre) before it was listed."""
    return state is not None and listed_ns - max(state[0], state[1]) < RACY_S * 1e9


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
    directories: Mapping[str, tuple],
    outputs: Iterable[Path],
    digests: Mapping[str, str],
    model_files: Iterable[str],
    stats: dict,
    batch_files: int,
) -> bool:
    """Record a plan just written (``directories``: {directory: (directory_state from
    before its listing, time.time_ns() just before it)}; ``digests``: {name in the plan
    directory: SHA-256} of the checkpoint's outputs). Without a key (False returned) when
    a directory is racy: the plan is sealed, but the next one is a full plan."""
    plan_dir = Path(plan_dir)
    reusable = not any(racy(state, at) for state, at in directories.values())
    if not reusable:
        log.info(
            "plan record keeps no key: a listed directory changed within %.0f s of its "
            "listing, so the next plan is a full one",
            RACY_S,
        )
    outputs = list(outputs)
    write_json(
        plan_dir / RECORD,
        {
            "format": FORMAT,
            "key": key if reusable else None,
            "directories": {d: state for d, (state, _) in directories.items()},
            "outputs": output_state(plan_dir, outputs),
            "digests": dict(digests),
            "batch_files": batch_files,
            "model_files": sorted(set(model_files)),
            "stats": stats,
        },
    )
    return reusable


def _record(plan_dir: Path) -> dict | None:
    try:
        record = json.loads((Path(plan_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def whole(plan_dir: Path, manifest: Path) -> str | None:
    """Why the plan in ``plan_dir`` stands half-written (its manifest is not the one its
    record seals), or None: no manifest (a plan will be made), or a sealed one."""
    if not Path(manifest).exists():
        return None
    record = _record(plan_dir)
    if record is None:
        return "no plan record: the last plan stopped before it finished"
    try:
        sealed = record["digests"][Path(manifest).name]
    except (KeyError, TypeError):
        return "the plan record names no manifest"
    if file_sha256(manifest) != sealed:
        return "the manifest is not the one the plan record seals"
    return None


def unchanged(
    plan_dir: Path, key: str | None, root: Path, buildable: Iterable[str] | None
) -> dict | None:
    """The recorded plan's counts if nothing it was made from has changed, else None."""
    plan_dir = Path(plan_dir)
    record = _record(plan_dir)
    if key is None or record is None or record.get("key") != key:
        return None
    try:
        if not _still_holds(record, plan_dir, Path(root), buildable):
            return None
    except (KeyError, TypeError, ValueError, AttributeError):  # a record edited by hand
        return None
    return record["stats"] if isinstance(record.get("stats"), dict) else None


def _still_holds(record: dict, plan_dir: Path, root: Path, buildable) -> bool:
    if any(directory_state(root / d) != m for d, m in record["directories"].items()):
        return False
    outputs = [plan_dir / p for p in record["outputs"]]
    if output_state(plan_dir, outputs) != record["outputs"]:
        return False
    for name, sha in record["digests"].items():  # the output, else its previous version
        path = plan_dir / name
        try:
            if file_sha256(path if path.exists() else previous_path(path)) != sha:
                return False
        except OSError:
            return False
    try:  # a plan file added by hand would be kept by the record but removed by a plan
        if len(os.listdir(plan_dir / "batches")) != record["batch_files"]:
            return False
    except OSError:
        return False
    if buildable is not None:  # a needed model file deleted: the full plan says which row
        buildable = set(buildable)
        if any(m not in buildable and not Path(m).exists() for m in record["model_files"]):
            return False
    return True
