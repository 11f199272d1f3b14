"""The column-wise building blocks of planning (engine/columns.py): compact columns
give back exactly the values they were made from."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from starbatch.engine import columns as colwise
from starbatch.engine.plan.files import json_values


def test_compact_column_gives_back_the_values_and_merges_equal_ones():
    codes = np.tile([0, 1, 2, 1, 0, 2, 2, 0], 2)
    column = colwise.compact((codes, ["a", "b", "a"]))  # two cells that parse alike
    assert isinstance(column, pd.Categorical) and list(column.categories) == ["a", "b"]
    assert list(column) == ["a", "b", "a", "b", "a", "a", "a", "a"] * 2
    ints = colwise.compact((codes, [5, 7, 9]))
    assert [type(v) for v in pd.Series(ints).astype(object)] == [int] * 16
    assert list(ints) == [5, 7, 9, 7, 5, 9, 9, 5] * 2
    blank = colwise.compact((np.tile([0, 1], 4), [None, "ap"]))  # None: missing
    assert pd.isna(blank[0]) and blank[1] == "ap"


def test_compact_strings_that_seldom_repeat_stay_arrow_strings():
    column = colwise.compact((np.arange(4), ["o1", "o2", "o3", "o4"]))
    assert column.dtype == "str" and list(column) == ["o1", "o2", "o3", "o4"]


def test_concat_categoricals_keeps_values_order_and_missing_rows():
    a = colwise.compact((np.tile([0, 1, 0, 0, 1], 2), ["x", "y"]))
    b = colwise.compact((np.tile([0, 0, 1, 0], 2), ["z", "x"]))
    joined = colwise.concat_categoricals([a, 2, b])
    expected = [*a, np.nan, np.nan, *b]
    assert pd.Series(joined).astype(object).equals(pd.Series(expected, dtype=object))
    assert list(joined.categories) == ["x", "y", "z"]  # order of first appearance


def test_concat_categoricals_of_different_dtypes_keeps_each_value():
    strings = colwise.compact((np.zeros(4, int), ["5"]))
    ints = colwise.compact((np.tile([0, 1], 4), [5, 6]))
    joined = pd.Series(colwise.concat_categoricals([strings, 1, ints])).astype(object)
    assert joined.isna().tolist() == [False] * 4 + [True] + [False] * 8
    assert [type(v) for v in joined.dropna()] == [str] * 4 + [int] * 8
    assert list(joined.dropna()) == ["5"] * 4 + [5, 6] * 4


def test_json_of_a_categorical_equals_json_of_its_values():
    values = pd.Series(colwise.compact((np.array([0, 1, 0, 2]), ["a", 'b"', "c"])))
    expected = [json.dumps(v) for v in values.astype(object)]
    assert json_values(values).to_pylist() == expected
    ints = pd.Series(colwise.compact((np.array([1, 0, 1]), [55844, 7])))
    assert json_values(ints).to_pylist() == ["7", "55844", "7"]


def test_only_bytes_scans_chunk_by_chunk_and_across_chunk_boundaries():
    strings = pa.array(["abc", "de", "f.", ".g"], pa.large_string())  # data: abcdef..g
    for chunk in (1, 2, 3, 4, 100):
        assert colwise.only_bytes(strings, b"abcdefg.", chunk=chunk)
        assert not colwise.only_bytes(strings, b"abcdefg", chunk=chunk)
        assert not colwise.only_bytes(strings, b"", b"..", chunk=chunk)  # bytes 6 and 7
        assert colwise.only_bytes(strings, b"", b"cf", chunk=chunk)
    assert colwise.only_bytes(pa.array([], pa.large_string()), b"a", b"..")


def test_move_rows_from_joined_parts_takes_each_row_once():
    parts = [
        pd.DataFrame({"path": pd.array(["a", "b"], dtype="str"), "n": [0, 1]}, index=[0, 2]),
        pd.DataFrame({"path": pd.array(["c"], dtype="str"), "n": [2]}, index=[1]),
    ]
    frame = pd.concat(parts)
    assert pa.array(frame["path"].array).num_chunks == 2  # as the parts were joined
    expected = frame.sort_index()
    moved = colwise.move_rows(frame, np.array([0, 2, 1]))
    pd.testing.assert_frame_equal(moved, expected)
    assert frame.columns.empty
    assert isinstance(colwise.one_chunk(moved["path"].array), pa.Array)
