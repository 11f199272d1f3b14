"""What the results say, without re-analysing anything: per analysis, the tasks done,
failed (by flag), not run (file missing at planning) and stale (the input file changed
since its row was made, or the model the next run would load is not the one it was made
with), from the summary's recorded file facts; and the Snakemake targets that rerun
exactly the batches holding such rows."""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import flags
from .analysis import Analysis
from .jsonvalues import jsonable
from .provenance import sha256_file

STATES = ("done", "failed", "not_run", "stale_input", "stale_model")


def _rows(path: str | Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def count_rows(path: str | Path) -> int | None:
    """Data rows of a CSV, or None if it does not exist."""
    return len(_rows(path)) if Path(path).exists() else None


def _column(table, name, fill):
    if name not in table:
        return np.full(len(next(iter(table.values()), [])), fill)
    return np.ma.filled(np.ma.asarray(table[name]), fill)


def stale_inputs(table: Mapping[str, np.ndarray], root: str | Path) -> np.ndarray:
    """True where the input file is gone or its size or mtime differ from the row's.
    Rows that recorded nothing (made before starbatch recorded file facts) are not."""
    sizes = _column(table, "input_size", -1).astype(np.int64)
    mtimes = _column(table, "input_mtime_ns", -1).astype(np.int64)
    paths = _column(table, "path", "")
    stale = np.zeros(len(sizes), dtype=bool)
    for i in np.flatnonzero(sizes >= 0):
        try:
            st = os.stat(Path(root) / str(paths[i]))
        except OSError:
            stale[i] = True
            continue
        stale[i] = st.st_size != sizes[i] or st.st_mtime_ns != mtimes[i]
    return stale


def stale_models(
    table: Mapping[str, np.ndarray], registry: Mapping[str, type[Analysis]] | None = None
) -> np.ndarray:
    """True where a row was made with model files other than those the next run would
    load: by content (SHA-256), so that a project's own model file replacing the shipped
    one (resources.model_path) counts, and an identical copy does not. Without the
    analysis in ``registry``, the files the row names are the ones it would load."""
    analysis = _column(table, "analysis", "")
    files = _column(table, "model_files", "")
    shas = _column(table, "model_sha256", "")
    digests: dict[str, str] = {}

    def digest(path: str) -> str:
        if path not in digests:
            try:
                digests[path] = sha256_file(path)
            except OSError:
                digests[path] = ""  # gone: whatever the row used is not what runs next
        return digests[path]

    stale = np.zeros(len(analysis), dtype=bool)
    for name in dict.fromkeys(analysis):
        rows = np.flatnonzero(analysis == name)
        cls = (registry or {}).get(str(name))
        names = [p.name for p in cls.all_parameters() if p.name in table] if cls else []
        # The analysis's own rows hold its parameters (masked only in others' rows).
        columns = [np.ma.getdata(np.ma.asarray(table[p]))[rows] for p in names]
        keys = list(zip(files[rows], shas[rows], *columns, strict=True))
        verdict = {}
        for key in dict.fromkeys(keys):
            recorded, used = str(key[0]), [s for s in str(key[1]).split(";") if s]
            now = [f for f in recorded.split(";") if f]
            if cls is not None:
                params = {p: jsonable(v) for p, v in zip(names, key[2:], strict=True)}
                try:
                    now = list(cls.model_files(params))
                except Exception:  # the row's parameters no longer make sense to it
                    pass
            verdict[key] = [digest(f) for f in now] != used
        stale[rows] = [verdict[k] for k in keys]
    return stale


def count_stale_models(summaries, registry: Mapping[str, type[Analysis]]) -> int:
    """Rows that stale_models calls stale in the per-analysis summary.parquet files
    ``summaries``, of which only the columns it needs are read (a survey's global summary
    is gigabytes, and this runs at the end of every run)."""
    import pyarrow.parquet as pq

    names = {p.name for cls in registry.values() for p in cls.all_parameters()}
    wanted = ["analysis", "model_files", "model_sha256", *sorted(names)]
    stale = 0
    for path in summaries:
        there = set(pq.read_schema(path).names)
        frame = pq.read_table(path, columns=[c for c in wanted if c in there]).to_pandas()
        if len(frame):
            table = {c: frame[c].to_numpy() for c in frame.columns}
            stale += int(stale_models(table, registry).sum())
    return stale


def _empty() -> dict:
    return {**{state: 0 for state in STATES}, "failed_by_flag": {}}


def status(
    summary: str | Path,
    skipped_csv: str | Path,
    root: str | Path,
    registry: Mapping[str, type[Analysis]] | None = None,
) -> dict:
    """{analysis: {state: count, 'failed_by_flag': {name: count}}} and the batches to
    rerun for each state, from the global summary and planning's skipped rows
    (``registry``: which model files each analysis would load now)."""
    from .results import read_table  # astropy.table: not for count_rows at the end of a run

    table = read_table(summary) if Path(summary).exists() else None
    report: dict[str, dict] = {}
    batches: dict[str, set[str]] = {state: set() for state in STATES}
    skipped = _rows(skipped_csv)
    if table is not None and len(table):
        table = {name: table[name] for name in table.colnames}
        analysis = _column(table, "analysis", "")
        batch = _column(table, "batch", "")
        flag = _column(table, "flag", 0).astype(np.int64)
        failed = (flag & flags.FAILED) != 0
        masks = {
            "done": ~failed,
            "failed": failed,
            "stale_input": stale_inputs(table, root),
            "stale_model": stale_models(table, registry),
        }
        for name in dict.fromkeys(analysis):
            mine = analysis == name
            entry = report.setdefault(str(name), _empty())
            entry.update({state: int((mask & mine).sum()) for state, mask in masks.items()})
            entry["failed_by_flag"] = dict(
                Counter(flags.describe(int(f)) for f in flag[mine & failed])
            )
        for state, mask in masks.items():
            if state != "done":
                batches[state] = set(batch[mask])
    for row in skipped:
        report.setdefault(row["analysis"], _empty())["not_run"] += 1
    return {"analyses": report, "batches": {k: sorted(v) for k, v in batches.items()}}


def format_status(result: dict) -> str:
    head = f"{'analysis':<18} {'done':>7} {'failed':>7} {'not run':>8} {'stale in':>9} " + (
        f"{'stale model':>12}  failed by flag"
    )
    lines = [head]
    for name, e in sorted(result["analyses"].items()):
        by_flag = ", ".join(f"{k}: {v}" for k, v in sorted(e["failed_by_flag"].items()))
        lines.append(
            f"{name:<18} {e['done']:>7} {e['failed']:>7} {e['not_run']:>8} "
            f"{e['stale_input']:>9} {e['stale_model']:>12}  {by_flag}"
        )
    return "\n".join(lines)


def rerun_targets(result: dict, what: str) -> list[str]:
    """Snakemake targets (to --forcerun) that rerun the batches holding ``what`` rows:
    'failed' (and a re-plan when files were missing at planning) or 'stale'."""
    if what == "failed":
        chosen = result["batches"]["failed"]
    elif what == "stale":
        chosen = sorted(
            set(result["batches"]["stale_input"]) | set(result["batches"]["stale_model"])
        )
    else:
        raise ValueError(f"--rerun takes 'failed' or 'stale', not {what!r}")
    targets = [f"results/batches/{b}.fits" for b in chosen]
    if what == "failed" and any(e["not_run"] for e in result["analyses"].values()):
        targets.insert(0, "plan")
    return targets
