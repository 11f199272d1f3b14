"""Reading and validating task tables: the CSV users edit, and batch-mode YAML
specs whose observation parameters are equal-length lists.

Everything is checked before any work starts, and every problem is reported
with the file, line and column to fix (all of them at once, up to a limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .analysis import Analysis
from .params import canonical, is_blank
from .products import ObservationKeyError

MAX_REPORTED = 25
META_COLUMNS = ("analysis",)


class TableError(ValueError):
    """One or more problems in a task table; the message lists each with its place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        text = "\n".join(f"  - {p}" for p in shown)
        if more:
            text += f"\n  ... and {more} more"
        super().__init__(f"{len(problems)} problem(s) in the task table:\n{text}")


@dataclass
class TaskTable:
    """Validated tasks: one row per task with parsed keys and parameters.

    ``frame`` columns: source, line, analysis, path (relative to the SAS root),
    group (analysis + canonical significant parameters), then one column per
    observation key and task parameter (object dtype, parsed values)."""

    frame: pd.DataFrame


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """The raw table as strings; line numbers are those a text editor shows."""
    path = Path(path)
    if not path.exists():
        raise TableError([f"{path}: file not found"])
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, comment="#"
        )
    except pd.errors.EmptyDataError:
        raise TableError([f"{path}: the file is empty; it needs a header line"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError([f"{path}: cannot parse as CSV: {exc}"]) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    dupes = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if dupes or any(c.startswith("Unnamed:") for c in raw.columns):
        raise TableError([f"{path} line 1: duplicated or empty column names {dupes or ''}"])
    # pandas skips comment and blank lines, so count data lines ourselves.
    raw.insert(0, "line", _data_line_numbers(path, len(raw)))
    raw.insert(0, "source", str(path))
    return raw


def _data_line_numbers(path: Path, n: int) -> list[int]:
    lines = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh, None)
        for number, text in enumerate(fh, start=2):
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                lines.append(number)
    # Quoted multi-line cells would break the count: fall back to record numbers.
    return lines if len(lines) == n else list(range(2, n + 2))


def expand_spec(spec: Mapping[str, Any], source: str) -> pd.DataFrame:
    """Batch-mode input: list values are per-observation, scalars are shared.

    {'analysis': 'gridfit', 'telescope': 'apo25m', 'field': ['a', 'b'], 'obj': ['x', 'y']}
    gives two rows. Lists of different lengths are an error naming them."""
    if not isinstance(spec, Mapping):
        raise TableError([f"{source}: a task spec must be a mapping, got {type(spec).__name__}"])
    lengths = {k: len(v) for k, v in spec.items() if isinstance(v, (list, tuple))}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise TableError([f"{source}: batch-mode lists must have equal lengths ({detail})"])
    n = next(iter(lengths.values()), 1)
    columns = {
        k: [("" if x is None else str(x)) for x in v]
        if isinstance(v, (list, tuple))
        else ["" if v is None else str(v)] * n
        for k, v in spec.items()
    }
    frame = pd.DataFrame(columns, dtype=str)
    frame.insert(0, "line", range(1, n + 1))
    frame.insert(0, "source", f"{source} element")
    return frame


def read_yaml_specs(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TableError([f"{path}: cannot read YAML: {exc}"]) from None
    specs = doc.get("tasks") if isinstance(doc, Mapping) else doc
    if not isinstance(specs, list):
        raise TableError([f"{path}: expected a list of task specs under 'tasks:'"])
    frames = [expand_spec(s, f"{path} task {i + 1}") for i, s in enumerate(specs)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def validate(raw: pd.DataFrame, registry: Mapping[str, type[Analysis]]) -> TaskTable:
    """Parse and check every cell; group rows by significant parameters.

    Works column-wise on unique values so a million rows stay fast."""
    problems: list[str] = []
    if raw.empty:
        raise TableError(["the task table has no rows"])
    if "analysis" not in raw.columns:
        raise TableError([f"{raw['source'].iloc[0]} line 1: missing required column 'analysis'"])

    def where(idx) -> str:
        return f"{raw.at[idx, 'source']} line {raw.at[idx, 'line']}"

    data_columns = [c for c in raw.columns if c not in ("source", "line", *META_COLUMNS)]
    known = set()
    for cls in registry.values():
        known |= {p.name for p in cls.product.keys} | {p.name for p in cls.all_parameters()}
    for col in data_columns:
        if col not in known:
            problems.append(
                f"{raw['source'].iloc[0]} line 1: unknown column {col!r} (no analysis takes it)"
            )

    analyses = raw["analysis"].str.strip()
    for name in sorted(set(analyses) - set(registry)):
        rows = raw.index[analyses == name]
        problems.append(
            f"{where(rows[0])}, column 'analysis': unknown analysis {name!r} "
            f"({len(rows)} row(s)); known: {', '.join(sorted(registry))}"
        )

    parts = []
    for name, rows in raw.groupby(analyses, sort=False).groups.items():
        if name not in registry:
            continue
        part, part_problems = _parse_analysis_rows(raw.loc[rows], registry[name], data_columns)
        problems += [f"{where(i)}, column {c!r}: {m}" for i, c, m in part_problems]
        parts.append(part)
    if problems:
        raise TableError(problems)

    frame = pd.concat(parts).sort_index()
    problems += _duplicates(frame, raw, where)
    if problems:
        raise TableError(problems)
    return TaskTable(frame)


def _parse_analysis_rows(rows: pd.DataFrame, cls: type[Analysis], data_columns: list[str]):
    """Parse one analysis's rows; returns (frame, [(index, column, message)])."""
    problems = []
    product = cls.product
    params = {p.name: p for p in cls.all_parameters()}
    key_names = product.key_names
    for col in data_columns:
        if col not in params and col not in key_names:
            filled = rows.index[~rows[col].map(is_blank)]
            if len(filled):
                problems.append(
                    (filled[0], col, f"{cls.name} does not take {col!r} ({len(filled)} row(s))")
                )

    out = pd.DataFrame(index=rows.index)
    out["source"] = rows["source"]
    out["line"] = rows["line"]
    out["analysis"] = cls.name

    # Observation keys: parse the distinct combinations of key columns once.
    key_frame = rows.reindex(columns=list(key_names), fill_value="")
    combos = key_frame.drop_duplicates()
    parsed_keys = {}
    for idx, combo in combos.iterrows():
        try:
            keys = product.parse_keys(combo.to_dict())
            parsed_keys[tuple(combo)] = (keys, product.relative_path(keys))
        except ObservationKeyError as exc:
            problems.append((idx, exc.column, str(exc)))
        except ValueError as exc:
            problems.append((idx, "obj", str(exc)))
    if problems:
        return out, problems
    looked_up = [parsed_keys[t] for t in key_frame.itertuples(index=False, name=None)]
    for name in key_names:
        out[name] = [k[name] for k, _ in looked_up]
    out["path"] = [p for _, p in looked_up]

    # Task parameters: parse each distinct raw value once.
    significant = []
    for name, param in params.items():
        column = rows[name] if name in rows.columns else pd.Series("", index=rows.index)
        values = {}
        for raw_value in column.unique():
            try:
                values[raw_value] = param.parse(raw_value)
            except ValueError as exc:
                problems.append((column.index[column == raw_value][0], name, str(exc)))
        if problems:
            continue
        out[name] = column.map(values).astype(object)
        if param.significant:
            significant.append(out[name].map(canonical))
    if problems:
        return out, problems

    group = pd.Series(cls.name, index=rows.index)
    for canon, name in zip(significant, cls.significant_names(), strict=True):
        group = group + "|" + name + "=" + canon
    out["group"] = group
    return out, problems


def _duplicates(frame: pd.DataFrame, raw: pd.DataFrame, where) -> list[str]:
    """Two rows asking for the same analysis of the same observation with the
    same parameters would produce two identical results: almost always a mistake."""
    ident = frame["group"] + "|" + frame["path"]
    for col in frame.columns:
        if col not in ("source", "line", "analysis", "path", "group"):
            ident = ident + "|" + frame[col].map(canonical)
    dup = ident.duplicated(keep=False)
    problems = []
    for _, idx in frame.index[dup].to_series().groupby(ident[dup]).groups.items():
        places = ", ".join(where(i) for i in list(idx)[:5])
        problems.append(
            f"duplicate task rows (same analysis, observation and parameters): {places}"
        )
    return problems


def load_tasks(
    table: str | Path | None,
    specs: Iterable[str | Path] = (),
    registry: Mapping[str, type[Analysis]] | None = None,
) -> TaskTable:
    """Read the CSV table and any YAML batch-mode specs, validate, return tasks."""
    if registry is None:
        from .analyses import ANALYSES as registry
    frames = []
    if table:
        frames.append(read_csv_table(table))
    frames += [read_yaml_specs(s) for s in specs]
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise TableError(["no tasks: the observation table and task specs are all empty"])
    raw = pd.concat(frames, ignore_index=True).fillna("")
    return validate(raw, registry)
