"""The plan's files as Snakemake and the batch jobs read them: the manifest (from
input functions) and where each batch's settings live. Deliberately light (no pandas):
every cluster job re-parses the Snakefile."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

MANIFEST_COLUMNS = ("batch", "analysis", "n_members", "model_files")


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> tuple[dict, ...]:
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\n").split("\t"), strict=True)) for line in fh]
    for row in rows:
        row["n_members"] = int(row["n_members"])
        row["model_files"] = [f for f in row["model_files"].split(";") if f]
    return tuple(rows)


def read_manifest(path: str | Path) -> tuple[dict, ...]:
    path = str(path)
    return _read(path, Path(path).stat().st_mtime)


@lru_cache(maxsize=4)
def _index(path: str, mtime: float) -> tuple[dict[str, dict], dict[str, list[str]]]:
    rows = _read(path, mtime)
    return {row["batch"]: row for row in rows}, batches_by_analysis(rows)


def manifest_batches(path: str | Path) -> dict[str, dict]:
    """{batch: manifest row}, built once per manifest version. Input functions run
    once per job: scanning the rows for each batch would make the DAG build
    quadratic in the number of batches. Read-only (shared between calls)."""
    path = str(path)
    return _index(path, Path(path).stat().st_mtime)[0]


def manifest_analyses(path: str | Path) -> dict[str, list[str]]:
    """{analysis: [batch, ...]} in manifest order, built once per manifest version.
    Read-only (shared between calls)."""
    path = str(path)
    return _index(path, Path(path).stat().st_mtime)[1]


SETTINGS_FILE = "settings.json"


def settings_file(plan_dir: str | Path) -> Path:
    """Every batch's insignificant parameters, {batch: settings}, in one file of the plan
    directory (one file, not one per batch: a first plan of 10^4 batches then creates
    half as many files). Not a job input (a change must rerun nothing); a batch job
    reads its entry when it runs."""
    return Path(plan_dir) / SETTINGS_FILE


def jsonable(value):
    """A numpy scalar or array as the plain Python value or list json writes."""
    return value.tolist() if hasattr(value, "tolist") else value


def format_manifest(rows) -> str:
    lines = ["\t".join(MANIFEST_COLUMNS)]
    lines += [f"{b}\t{a}\t{n}\t{';'.join(files)}" for b, a, n, files in rows]
    return "\n".join(lines) + "\n"


def batches_by_analysis(rows) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["analysis"], []).append(row["batch"])
    return out


def shards(batches: list[str], fanin: int) -> list[list[str]]:
    """Split a list of batches into aggregation shards of at most ``fanin``, so no
    single job has tens of thousands of inputs (Snakemake's input handling is
    super-linear in the input count)."""
    return [batches[i : i + fanin] for i in range(0, len(batches), fanin)]
