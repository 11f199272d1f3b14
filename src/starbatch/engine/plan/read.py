"""The plan's files as Snakemake and the batch jobs read them: the manifest (from input
functions), a batch's plan file and its insignificant parameters. Light on purpose
(json only, no pandas): every cluster job re-parses the Snakefile, and a batch job's
supervisor imports no more than it needs.

The files (written by engine/plan/files.py; docs/concepts.md lists them all):

- ``manifest.tsv``: one line per batch: ID, analysis, member count, model files;
- ``batches/<batch>.json``: one line of JSON, the members stored by column::

      {"analysis": ..., "batch": ..., "params": {...},
       "members": {"n": 100, "line": [2, 3, ...], "path": [...], "source": COLUMN,
                   "keys": {"obj": [...], "telescope": {"all": "apo25m"}, ...}}}

  a column being a list of ``n`` values, or ``{"all": value}`` when every member has
  the same one;
- ``insignificant.json``: {batch: {parameter: value}}, the insignificant parameters each
  batch runs with (its first member's), apart from the plan files so that changing them
  reruns nothing."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

MANIFEST = "manifest.tsv"
MANIFEST_COLUMNS = ("batch", "analysis", "n_members", "model_files")
INSIGNIFICANT = "insignificant.json"
MEMBER_FIELDS = ("line", "path", "source")


@lru_cache(maxsize=4)
def _index(path: str, mtime: float) -> tuple[dict[str, dict], dict[str, list[str]]]:
    by_batch: dict[str, dict] = {}
    by_analysis: dict[str, list[str]] = {}
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=True))
            row["n_members"] = int(row["n_members"])
            row["model_files"] = [f for f in row["model_files"].split(";") if f]
            by_batch[row["batch"]] = row
            by_analysis.setdefault(row["analysis"], []).append(row["batch"])
    return by_batch, by_analysis


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


def parts(batches: list[str], size: int) -> list[list[str]]:
    """An analysis's batches in parts of at most ``size`` (config tables_per_part),
    each merged by one collection job: Snakemake's input handling is super-linear in a
    job's input count."""
    return [batches[i : i + size] for i in range(0, len(batches), size)]


def insignificant_file(plan_dir: str | Path) -> Path:
    """Every batch's insignificant parameters, in one file of the plan directory (one
    file, not one per batch: a first plan of 10^4 batches then creates half as many
    files). Not a job input (a change must rerun nothing); a batch job reads its entry
    when it runs."""
    return Path(plan_dir) / INSIGNIFICANT


def read_plan(path: str | Path) -> dict:
    """A batch's plan file, its members a dict each: {"line", "path", "source",
    "keys": {...}}."""
    with open(path) as fh:
        try:
            plan = json.load(fh)
        except ValueError as exc:  # truncated or edited by hand
            raise ValueError(f"batch plan {path}: not valid JSON ({exc})") from None
    if isinstance(plan, dict) and "members" in plan:
        plan["members"] = members(plan["members"], f"batch plan {path}")
    return plan


def members(stored: dict, where: str = "batch plan") -> list[dict]:
    """The members of a plan file's column store, one dict each."""
    try:
        n = int(stored["n"])
        cols = {name: _column(stored[name], n) for name in MEMBER_FIELDS}
        keys = {k: _column(v, n) for k, v in stored["keys"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: its members are not a starbatch plan's ({exc})") from None
    rows = [{name: cols[name][i] for name in MEMBER_FIELDS} for i in range(n)]
    for i, row in enumerate(rows):
        row["keys"] = {k: v[i] for k, v in keys.items()}
    return rows


def _column(stored, n: int) -> list:
    if isinstance(stored, dict):
        return [stored["all"]] * n
    if len(stored) != n:
        raise ValueError(f"a column of {len(stored)} values for {n} members")
    return stored


def read_insignificant(plan_path: str | Path) -> dict:
    """The batch's insignificant parameters ({} if none were planned: the analysis's
    defaults)."""
    plan_path = Path(plan_path)
    path = insignificant_file(plan_path.parent.parent)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"insignificant parameters {path}: not valid JSON ({exc})") from None
    values = values.get(plan_path.stem, {}) if isinstance(values, dict) else None
    if not isinstance(values, dict):
        raise ValueError(f"insignificant parameters {path}: not a mapping of names to values")
    return values
