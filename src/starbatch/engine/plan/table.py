"""Reading and validating task tables: the CSV users edit, and batch-mode YAML
specs whose observation parameters are equal-length lists.

Everything is checked before any work starts, and every problem is reported
with the file, line and column to fix (all of them at once, up to a limit).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import yaml

from .. import columns as colwise
from ..analysis import Analysis
from ..dataproduct import DataProduct
from ..errors import TableError
from ..identifiers import ObservationKeyError
from ..params import canonical, is_blank

META_COLUMNS = ("analysis",)


@dataclass
class TaskTable:
    """Validated tasks: one row per task with parsed keys and parameters.

    ``frame`` columns: source, line, analysis, path (relative to the SAS root),
    group (analysis + canonical significant parameters), then one column per
    observation key and task parameter, parsed values: parameters of object dtype;
    keys, source, analysis and group as columns.compact makes them (categoricals,
    whose integer values read back as numpy integers, or arrow strings)."""

    frame: pd.DataFrame


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """The raw table as strings; line numbers are those a text editor shows."""
    path = Path(path)
    if not path.exists():
        raise TableError([f"{path}: file not found"])
    raw = _read_clean_csv(path)
    if raw is None:
        raw = _read_csv_exactly(path)
    raw.insert(0, "source", str(path))
    return raw


def analysis_counts(table: str | Path | None, specs: Iterable[str | Path] = ()) -> dict:
    """Rows per analysis in the table and specs, unvalidated (what auto sizing balances
    over); the table's own errors come from load_tasks."""
    counts: dict[str, int] = {}
    frames = ([read_csv_table(table)] if table else []) + [read_yaml_specs(s) for s in specs]
    for frame in frames:
        if "analysis" in frame:
            for name, n in frame["analysis"].astype(str).str.strip().value_counts().items():
                counts[name] = counts.get(name, 0) + int(n)
    return counts


# What pyarrow's CSV reader would read differently from pandas' with skipinitialspace
# and comments (or what moves line numbers): such a file takes the exact path.
_NOT_CLEAN = (b"#", b'"', b"\r", b"\t", b", ", b"\n\n", b"\n ")


def _read_clean_csv(path: Path) -> pd.DataFrame | None:
    """A clean file (no comments, blank lines, quotes or spaces after separators; every
    row complete) read by pyarrow, ~10x faster than pandas; None if it is not clean."""
    try:
        data = path.read_bytes()
        header = _header_names(path)
    except OSError:
        return None
    if not header or len(set(header)) < len(header) or "" in header:
        return None
    # A byte-order mark: pandas drops it, the header names read here would keep it.
    if data.startswith((b"\n", b" ", b"\xef\xbb\xbf")) or any(m in data for m in _NOT_CLEAN):
        return None
    try:
        table = pyarrow.csv.read_csv(
            pa.py_buffer(data),
            read_options=pyarrow.csv.ReadOptions(skip_rows=1, column_names=header),
            convert_options=pyarrow.csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string())
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # the exact path says what is wrong, with the line
    if table.num_rows == 0:
        return None
    raw = table.to_pandas()
    raw.insert(0, "line", range(2, len(raw) + 2))
    return raw


def _read_csv_exactly(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, comment="#"
        )
    except pd.errors.EmptyDataError:
        raise TableError([f"{path}: the file is empty; it needs a header line"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError([f"{path}: cannot parse as CSV: {exc}"]) from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise TableError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    # pandas renames a repeated column (obj, obj.1): look at the header itself.
    header = _header_names(path)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes or any(c.startswith("Unnamed:") for c in raw.columns):
        raise TableError([f"{path} line 1: duplicated or empty column names {dupes or ''}"])
    # pandas skips comment and blank lines, so count data lines ourselves.
    raw.insert(0, "line", _data_line_numbers(path, len(raw)))
    return raw


def _header_names(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for text in fh:
            if text.strip() and not text.lstrip().startswith("#"):
                return [c.strip() for c in next(csv.reader([text]))]
    return []


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
            # Name the file that uses it (the table and YAML specs share columns).
            filled = raw.index[~raw[col].map(is_blank)]
            source = raw.at[filled[0], "source"] if len(filled) else raw["source"].iloc[0]
            problems.append(f"{source} line 1: unknown column {col!r} (no analysis takes it)")

    analyses = raw["analysis"].str.strip()
    for name in sorted(set(analyses.unique()) - set(registry)):
        rows = raw.index[analyses == name]
        problems.append(
            f"{where(rows[0])}, column 'analysis': unknown analysis {name!r} "
            f"({len(rows)} row(s)); known: {', '.join(sorted(registry))}"
        )

    parts = []
    keys = _keys_by_product(raw, analyses, registry)
    observations = [frame for frame in keys.values() if frame is not None]
    for name, rows in raw.groupby(analyses, sort=False).groups.items():
        if name not in registry:
            continue
        cls = registry[name]
        shared = keys.get(cls.product.name) is not None
        part, own, part_problems = _parse_analysis_rows(raw.loc[rows], cls, data_columns, shared)
        problems += [f"{where(i)}, column {c!r}: {m}" for i, c, m in part_problems]
        parts.append(part)
        observations += [] if own is None else [own]
    del keys
    if problems:
        raise TableError(problems)

    # The keys and paths are joined and put in table order apart from the parts: a
    # product's rows are already in table order, so the paths (~90 MB) are not sorted
    # (nor copied) when the parts are, as one row appended to a table needs.
    frame = _in_table_order(_concat_moving(parts))
    _fill_in(frame, _in_table_order(_concat_moving(observations)))
    colwise.release_memory()  # arrow's temporaries, before pandas' own for the check
    problems += _duplicates(frame, raw, where)
    if problems:
        raise TableError(problems)
    colwise.release_memory()
    return TaskTable(frame)


def _concat_moving(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """pd.concat(parts), made a column at a time with each part's column moved out once
    used, so that a million rows are never held twice (the parts are left empty). A
    column some parts lack is filled as pd.concat fills it; categoricals stay categoricals
    (pd.concat would make objects of them)."""
    names = list(dict.fromkeys(name for part in parts for name in part.columns))
    index = parts[0].index.append([part.index for part in parts[1:]])
    columns = {}
    for name in names:
        if all(isinstance(p[name].dtype, pd.CategoricalDtype) for p in parts if name in p):
            pieces = [part.pop(name).array if name in part else len(part) for part in parts]
            columns[name] = pd.Series(colwise.concat_categoricals(pieces), index=index)
            continue
        pieces = [part.pop(name).to_frame() if name in part else part[[]] for part in parts]
        columns[name] = pd.concat(pieces)[name]
    return pd.DataFrame(columns, copy=False)


def _in_table_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The analyses' parts back in table order. A table that interleaves analyses (each
    star's analyses on adjacent rows) needs a real sort, done column by column so that
    a million rows never hold two copies of the whole frame (as sort_index would). The
    columns are moved out of ``frame``, which is left empty."""
    if frame.index.is_monotonic_increasing:
        return frame
    return colwise.move_rows(frame, np.argsort(frame.index.to_numpy(), kind="stable"))


def _fill_in(frame: pd.DataFrame, observations: pd.DataFrame) -> None:
    """The keys and paths into the parts' unfilled columns of ``frame`` (same rows),
    moved out of ``observations``."""
    for name in list(observations.columns):
        column, here = observations.pop(name), frame[name]
        if not (isinstance(here.dtype, pd.CategoricalDtype) and here.cat.categories.empty):
            # Also another analysis's parameter: its values stay on its rows.
            column = column.astype(object).where(column.notna(), here.astype(object))
        frame[name] = column


def _unfilled(n: int) -> pd.Categorical:
    """A column to be filled in by _fill_in: a byte a row, no value (no categories)."""
    return pd.Categorical.from_codes(np.full(n, -1, np.int8), categories=[])


def _observations(index: pd.Index, keys: dict, paths) -> pd.DataFrame:
    """The keys and paths of the rows at ``index``, one column each."""
    frame = pd.DataFrame(keys, index=index, copy=False)
    frame["path"] = pd.Series(paths, index=index, dtype="str")
    return frame


def _keys_by_product(raw: pd.DataFrame, analyses: pd.Series, registry) -> dict:
    """{product name: its rows' keys and paths (_observations)}: the keys of every row of
    each product parsed column-wise at once (a star two analyses read is parsed once);
    None for a product with a bad cell, whose analyses then parse combination by
    combination."""
    out = {}
    for product in {cls.product.name: cls.product for cls in registry.values()}.values():
        names = [name for name, cls in registry.items() if cls.product.name == product.name]
        index = raw.index[analyses.isin(names)]
        if len(index):
            columns = [c for c in product.key_names if c in raw.columns]
            # Every row (one product): raw's own columns, not a copy of them.
            cells = raw[columns] if len(index) == len(raw) else raw.loc[index, columns]
            key_frame = cells.reindex(columns=product.key_names, fill_value="")
            fast = _parse_key_columns(product, key_frame)
            out[product.name] = fast and _observations(index, *fast)
    return out


def _parse_analysis_rows(
    rows: pd.DataFrame, cls: type[Analysis], data_columns: list[str], shared: bool
):
    """Parse one analysis's rows; returns (frame, its keys and paths, [(index, column,
    message)]). The frame's key and path columns are left unfilled (_fill_in); the keys
    and paths are None when ``shared``, parsed for its product (_keys_by_product), else
    parsed here, combination by combination."""
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
    # A few distinct values in a million rows: categoricals (columns.compact).
    out["source"] = colwise.compact(colwise.factorize(rows["source"]))
    out["line"] = rows["line"]
    out["analysis"] = colwise.compact((np.zeros(len(rows), np.intp), [cls.name]))

    # Observation keys: column by column when every cell is good (shared: fast), else
    # combination by combination, which reports each bad row exactly.
    own = None
    if not shared:
        key_frame = rows.reindex(columns=list(key_names), fill_value="")
        keys, paths, key_problems = _parse_key_combos(product, key_frame)
        if key_problems:
            return out, None, problems + key_problems
        keys = {name: colwise.compact(colwise.factorize(v)) for name, v in keys.items()}
        own = _observations(rows.index, keys, paths)
    for name in (*key_names, "path"):
        out[name] = _unfilled(len(rows))

    # Task parameters: parse each distinct raw value once.
    significant = []  # (codes, "|name=canonical" per distinct value)
    for name, param in params.items():
        column = rows[name] if name in rows.columns else pd.Series("", index=rows.index)
        codes, raws = colwise.factorize(column)
        values = []
        for i, raw_value in enumerate(raws):
            try:
                values.append(param.parse(raw_value))
            except ValueError as exc:
                problems.append((column.index[np.argmax(codes == i)], name, str(exc)))
        if problems:
            continue
        out[name] = colwise.expand((codes, values))
        if param.significant:
            significant.append((codes, [f"|{name}={canonical(v)}" for v in values]))
    if problems:
        return out, own, problems

    # The group of each distinct combination of significant values, made once.
    codes = colwise.combine([c for c, _ in significant], len(rows))
    firsts = colwise.first_rows(codes)
    names = [cls.name + "".join(terms[c[r]] for c, terms in significant) for r in firsts]
    out["group"] = colwise.compact((codes, names))
    # Parameters that name model files (e.g. a grid) become paths: check them here,
    # with line and column, not when the plan is being written.
    for idx in rows.index[firsts]:
        try:
            cls.model_files({name: out.at[idx, name] for name in params})
        except ValueError as exc:
            problems.append((idx, getattr(exc, "column", "analysis"), str(exc)))
    return out, own, problems


def _parse_key_combos(product: DataProduct, key_frame: pd.DataFrame):
    """Parse each distinct combination of key cells with DataProduct.parse_keys:
    ({key: [value per row]}, [path per row], [(index, column, message)])."""
    names = list(key_frame.columns)
    parsed, problems = {}, []
    for idx, *combo in key_frame.drop_duplicates().itertuples(name=None):
        try:
            keys = product.parse_keys(dict(zip(names, combo, strict=True)))
            parsed[tuple(combo)] = (keys, product.relative_path(keys))
        except ObservationKeyError as exc:
            problems.append((idx, exc.column, str(exc)))
        except ValueError as exc:
            problems.append((idx, "obj", str(exc)))
    if problems:
        return {}, [], problems
    looked_up = [parsed[t] for t in key_frame.itertuples(index=False, name=None)]
    keys = {name: [k[name] for k, _ in looked_up] for name in names}
    return keys, [p for _, p in looked_up], []


def _parse_key_columns(product: DataProduct, key_frame: pd.DataFrame):
    """The same result as _parse_key_combos when every cell is good, ~10x faster on a
    million rows; None at the first problem (the caller then reports every problem)."""
    cells = {name: key_frame[name] for name in key_frame.columns}
    try:
        return product.parse_key_columns(cells)
    except ValueError:
        return None


def _duplicates(frame: pd.DataFrame, raw: pd.DataFrame, where) -> list[str]:
    """Two rows asking for the same analysis of the same observation with the
    same parameters would produce two identical results: almost always a mistake."""
    # Rows with the same group and path hash are a superset of the duplicates, and few:
    # the exact check (the joined canonical strings) runs on those candidate rows only.
    codes = colwise.combine(
        [frame["group"].factorize()[0], pd.factorize(colwise.string_hashes(frame["path"]))[0]],
        len(frame),
    )
    frame = frame[pd.Series(codes).duplicated(keep=False).to_numpy()]
    ident = frame["group"].astype(str) + "|" + frame["path"]
    for col in frame.columns:
        if col not in ("source", "line", "analysis", "path", "group"):
            # Python values, as parsed (a categorical's would be numpy scalars)
            ident = ident + "|" + frame[col].astype(object).map(canonical)
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
    *,
    registry: Mapping[str, type[Analysis]],
    check_csv: Callable[[pd.DataFrame], None] | None = None,
) -> TaskTable:
    """Read the CSV table and any YAML batch-mode specs, validate, return tasks.

    ``check_csv`` is called with the raw CSV frame once it has validated (e.g. a
    schema check), so a million-row table is read only once."""
    frames = []
    csv = read_csv_table(table) if table else None
    if csv is not None:
        frames.append(csv)
    frames += [read_yaml_specs(s) for s in specs]
    frames = [f for f in frames if not f.empty]
    if not frames:
        names = ", ".join(str(f) for f in ([table] if table else []) + list(specs))
        raise TableError([f"no tasks: no data rows in {names or 'the (empty) task list'}"])
    raw = pd.concat(frames, ignore_index=True).fillna("")
    tasks = validate(raw, registry)
    if check_csv is not None and csv is not None:
        check_csv(csv)
    return tasks
