"""Reading the plan manifest from Snakemake input functions. Deliberately
light (no pandas): every cluster job re-parses the Snakefile."""

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
