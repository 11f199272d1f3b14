"""Column-wise building blocks for planning a million rows: a column is held as
(codes, values), one code per row into a list of distinct values, so each distinct
value is parsed, formatted or encoded once and rows are made by indexing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Column = tuple[np.ndarray, list]  # (code per row, the values the codes index)


def factorize(cells: Sequence) -> Column:
    """Codes into the distinct cells, in order of first appearance."""
    if isinstance(cells, pd.Series) and cells.dtype == "str" and not cells.hasnans:
        codes, uniques = cells.factorize()  # arrow's, without a Python object per row
        return codes, uniques.tolist()
    if isinstance(cells, pd.Series) and isinstance(cells.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(cells, use_na_sentinel=False)  # by the codes
        return codes, uniques.tolist()  # Python scalars, as below
    codes, uniques = pd.factorize(np.asarray(cells, dtype=object), use_na_sentinel=False)
    return codes, list(uniques)


def combine(codes: Sequence[np.ndarray], n: int) -> np.ndarray:
    """One code per distinct combination of several columns' codes."""
    out = np.zeros(n, dtype=np.int64)
    for c in codes:
        out = pd.factorize(out * (int(c.max(initial=0)) + 1) + c)[0]
    return out


def first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each code, in code order (codes as factorize numbers them)."""
    return np.unique(codes, return_index=True)[1]


def expand(column: Column) -> np.ndarray:
    """The column as one object per row."""
    codes, values = column
    return objects(values)[codes]


def objects(values: Sequence) -> np.ndarray:
    """``values`` as a one-dimensional object array (np.asarray would make rows of
    tuples)."""
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table


def compact(column: Column):
    """The column as a pandas array in little memory: a categorical (a small code per row,
    each distinct value once; None is missing), or arrow strings for strings that seldom
    repeat (a categorical's index holds a hash table of Python strings, ~90 bytes per
    category). An object array would hold 8 bytes per row and a Python object per value."""
    codes, values = column
    # Distinct cells can parse to equal values (" a" and "a"): categories are unique.
    value_codes, uniques = pd.factorize(objects(values))
    categories = _index(list(uniques))
    if categories.dtype == "str" and len(categories) * 4 > len(codes):
        return pd.Series(strings(column, str), dtype="str").array
    return pd.Categorical.from_codes(value_codes[codes], categories)


def _index(values: list) -> pd.Index:
    """``values`` in an index that gives back the same values: arrow strings when all
    are strings, int64 when all are Python ints that fit, else as objects."""
    kinds = {type(v) for v in values}
    try:
        if kinds == {str}:
            return pd.Index(values, dtype="str")
        if kinds == {int}:
            return pd.Index(values, dtype="int64")
    except OverflowError:
        pass
    return pd.Index(values, dtype=object)


def concat_categoricals(pieces: Sequence[pd.Categorical | int]) -> pd.Categorical:
    """Categoricals end to end (an int: that many missing values), categories in order of
    first appearance: pd.concat would make an object column of categoricals whose
    categories differ. Categories of different dtypes are joined as objects (compact
    makes str, int64 or object ones)."""
    own = [p.categories for p in pieces if not isinstance(p, int)]
    # Factorizing the categories end to end gives each piece's codes into the union
    # (no index engine: for strings, a hash table of Python strings).
    union_codes, categories = own[0].append(own[1:]).factorize()
    bounds = np.cumsum([len(c) for c in own])[:-1]
    # The appended -1: code -1 (missing) picks it, so a missing value stays missing.
    recode = iter(np.append(c, -1) for c in np.split(union_codes, bounds))
    codes = [np.full(p, -1) if isinstance(p, int) else next(recode)[p.codes] for p in pieces]
    return pd.Categorical.from_codes(np.concatenate(codes), categories)


def move_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame``'s rows at ``positions`` (in that order) as a new frame, made column by
    column, each column taken out of ``frame`` (left empty) once moved, so that a
    million rows are never held twice, as ``frame.take`` would hold them."""
    index = frame.index[positions]
    columns = {}
    for name in list(frame.columns):
        column = frame.pop(name)
        dtype, values = column.dtype, one_chunk(column.array)
        del column  # the chunks, once joined
        columns[name] = pd.Series(values.take(positions), index=index, dtype=dtype)
        del values
        release_memory()  # arrow keeps a freed column for reuse, as resident memory
    return pd.DataFrame(columns, index=index, copy=False)


def one_chunk(values):
    """Arrow-backed pandas values as one arrow array (others as they are). Arrow's take
    from a chunked array (the analyses' parts joined) first joins the chunks into a copy
    of its own: with the chunks and the result, three copies of a column at once."""
    if not isinstance(values, pd.arrays.ArrowExtensionArray):
        return values
    chunked = pa.array(values)  # no copy: the chunks pandas holds
    if isinstance(chunked, pa.ChunkedArray):
        return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    return chunked


def string_hashes(strings: Sequence, chunk: int = 100_000) -> np.ndarray:
    """A 64-bit hash per string (equal strings, equal hashes; in this process only),
    made a chunk at a time: a million paths hashed without a million Python strings or
    a dictionary of them (factorizing would copy every distinct string)."""
    array = pa.array(strings)
    out = np.empty(len(array), np.int64)
    for start in range(0, len(array), chunk):
        out[start : start + chunk] = [hash(s) for s in array.slice(start, chunk).to_pylist()]
    return out


def rows_where(column: Column, test: Callable[[Any], bool]) -> np.ndarray:
    """A boolean mask of the rows whose value passes ``test``."""
    codes, values = column
    return np.isin(codes, [i for i, v in enumerate(values) if test(v)])


def starting_or_containing(strings: pa.Array, prefix: str, part: str) -> list[str]:
    """The strings that start with ``prefix`` or contain ``part``."""
    hit = pc.starts_with(strings, prefix)
    if not only_bytes(strings, b"", part.encode()):  # one scan of the buffer first
        hit = pc.or_(hit, pc.match_substring(strings, part))
    return strings.filter(hit).to_pylist()


PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def only_bytes(
    strings: pa.Array, allowed: bytes, without: bytes = b"", chunk: int = 1 << 20
) -> bool:
    """Whether every string holds only bytes from ``allowed`` (all if empty) and never
    ``without``: one scan of the data buffer (of a slice, the whole buffer: a false
    "no" only costs the caller its slow path), ``chunk`` bytes at a time: a copy of a
    million paths' buffer would be ~80 MB."""
    buffer = strings.buffers()[-1]
    data = memoryview(b"" if buffer is None else buffer)
    overlap = max(len(without) - 1, 0)  # a ``without`` across two chunks
    for start in range(0, len(data), chunk):
        piece = bytes(data[start : start + chunk + overlap])
        if (without and without in piece) or (allowed and piece.translate(None, allowed)):
            return False
    return True


def trim(strings: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(strings)


def non_empty(strings: pa.Array) -> pa.Array:
    return pc.not_equal(pc.utf8_length(strings), 0)


def any_contains(strings: pa.Array, part: str) -> bool:
    return bool(pc.any(pc.match_substring(strings, part)).as_py())


def all_match(strings: pa.Array, pattern: str) -> bool:
    """Whether every string matches the (RE2) ``pattern`` as a whole."""
    return pc.all(pc.match_substring_regex(strings, f"^(?:{pattern})$")).as_py() is not False


def text_array(values: Sequence) -> pa.Array | None:
    """``values`` as an arrow string array, or None if they are not all strings."""
    try:
        array = pa.array(values, pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return None if array.null_count else array


def strings(column: Column, text: Callable[[Any], str]) -> pa.Array:
    """``text(value)`` per row as an arrow string array, calling ``text`` once per value."""
    codes, values = column
    plain = text is str and all(type(v) is str for v in values)  # str() would change nothing
    texts = values if plain else [text(v) for v in values]
    return pa.array(texts, pa.large_string()).take(pa.array(codes))


def concat(pieces: Sequence[pa.Array | str], n: int) -> pa.Array:
    """Row-wise concatenation of string arrays and literal strings."""
    if not any(isinstance(p, pa.Array) for p in pieces):
        return pa.array(["".join(pieces)] * n, pa.large_string())
    text = pa.large_string()
    pieces = [p if isinstance(p, pa.Array) else pa.scalar(p, text) for p in pieces]
    return pc.binary_join_element_wise(*pieces, pa.scalar("", text))


def release_memory() -> None:
    """Hand arrow's freed temporaries back to the system: its allocator keeps them for
    reuse, hundreds of MB after a million-row step, which would count as our memory."""
    pa.default_memory_pool().release_unused()


class _Reads(Mapping):
    """One row's values that notes which of them a function reads."""

    def __init__(self, row: dict, hide_none: bool):
        self.row, self.hide_none, self.read = row, hide_none, set()

    def __getitem__(self, name):
        self.read.add(name)
        value = self.row[name]
        if value is None and self.hide_none:
            raise KeyError(name)
        return value

    def __iter__(self):  # reading the whole row: it depends on every column
        self.read.update(self.row)
        return iter(k for k, v in self.row.items() if not (self.hide_none and v is None))

    def __len__(self):
        return sum(1 for _ in self)


def apply_by_reads(
    fn: Callable[[Mapping], Any], columns: Mapping[str, Column], hide_none: bool = False
) -> Column:
    """``fn(row)`` for every row, called once per distinct combination of the columns it
    reads (found by watching it). For a pure ``fn`` that is exact: rows that agree on
    everything it read run it the same way. ``hide_none``: None values look absent."""
    n = len(next(iter(columns.values()))[0])
    reads: list[str] = []
    while True:
        group = combine([columns[name][0] for name in reads], n)
        results = []
        for r in first_rows(group):
            row = _Reads({k: v[c[r]] for k, (c, v) in columns.items()}, hide_none)
            results.append(fn(row))
            if not row.read.issubset(reads):  # it read more: regroup by that too
                reads += sorted(row.read.difference(reads))
                break
        else:
            return group, results
