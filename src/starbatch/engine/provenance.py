"""What made a result: code and software versions, the model files' SHA-256, the
batch's significant parameters, where and when it ran. Written into every batch
table's header (and, per row, what a later status check needs)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import starbatch

# Hashing a multi-GB grid in every batch job would cost seconds: a file's digest is
# kept, keyed by its size and modification time, in the working directory (every job of
# a run shares it) and in memory.
DIGEST_CACHE = Path(".starbatch/digests")
_DIGESTS: dict[tuple[str, int, int], str] = {}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256, read now (sha256_file caches it by size and mtime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    cache = DIGEST_CACHE / (hashlib.sha1(key[0].encode()).hexdigest() + ".json")
    try:
        cached = json.loads(cache.read_text())
        if [cached["path"], cached["size"], cached["mtime_ns"]] == list(key):
            _DIGESTS[key] = cached["sha256"]
            return cached["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or another file's, or damaged: hash it
    _DIGESTS[key] = file_sha256(path)
    record = {"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": _DIGESTS[key]}
    try:  # concurrent jobs may write it at once: each renames its own temporary file
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only working directory: the digest is only not cached
    return _DIGESTS[key]


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's commit when starbatch runs from one ('' when installed); '+' marks
    uncommitted changes to tracked files."""
    root = Path(starbatch.__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        run = {"cwd": root, "capture_output": True, "text": True, "timeout": 10}
        head = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **run).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], **run).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+" if dirty else "")


def params_digest(params: dict) -> str:
    """SHA-256 of the batch's significant parameters (canonical JSON); PARHASH."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


# Modules whose versions the header records: (key, module, comment).
VERSIONED = (
    ("NPVERS", "numpy", "numpy version"),
    ("APVERS", "astropy", "astropy version"),
    ("TORCHVER", "torch", "torch version, if loaded"),
)


def module_versions() -> dict[str, str]:
    """The versions of VERSIONED's modules this process has imported ('' if not)."""
    found = {}
    for _, module, _ in VERSIONED:
        mod = sys.modules.get(module)
        found[module] = str(getattr(mod, "__version__", "")) if mod else ""
    return found


def model_digests(model_files) -> list[tuple[str, str]]:
    return [(str(path), sha256_file(path)) for path in model_files]


def header_cards(
    analysis, significant: dict, models, started: str, ended: str, versions: dict
) -> dict:
    """FITS header cards {KEY: (value, comment)} of one batch table; ``versions``: the
    module_versions() of the process that ran the analysis."""
    cards = {
        "SBVERS": (starbatch.__version__, "starbatch version"),
        "SBCOMMIT": (git_commit(), "git commit, +: dirty"),
        "ANALYSIS": (analysis.name, "analysis"),
        "ANVERS": (str(getattr(analysis, "version", "")), "analysis version"),
        "PARHASH": (params_digest(significant), ""),  # sha256: no room for a comment
        "PYVERS": (platform.python_version(), "Python version"),
        **{key: (versions.get(module, ""), comment) for key, module, comment in VERSIONED},
        "HOST": (platform.node(), "host that ran the batch"),
        "SLURMJOB": (os.environ.get("SLURM_JOB_ID", ""), "SLURM job ID"),
        "DATE-BEG": (started, "start (UTC)"),
        "DATE-END": (ended, "end (UTC)"),
    }
    for i, (path, sha) in enumerate(models, start=1):
        cards[f"MODFIL{i}"] = (Path(path).name, "model file the analysis loaded")
        cards[f"MODSHA{i}"] = (sha, "")  # 64 hex digits leave no room for a comment
    return cards
