"""The text of the batch plan files, made column-wise: a million members as JSON
without a dict per member. The text is exactly ``json.dumps(doc, indent=1,
sort_keys=True) + "\\n"`` (a test checks), so a batch planned before keeps its bytes
and its mtime, and nothing reruns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import columns as colwise
from .manifest import jsonable

MEMBER_FIELDS = ("line", "path", "source")
_SLOT = re.compile(r'"@([^@"]+)@"')  # a slot in a layout: "@name@"
_MEMBERS = '\n "members": []'  # where the members go in a plan (no value holds a raw \n)
_BETWEEN_MEMBERS = ",\n  "


def dumps(doc) -> str:
    return json.dumps(doc, indent=1, sort_keys=True)


def member_layout(key_names: Sequence[str]) -> list[str]:
    """A member's JSON as it sits in a plan (two levels deep), split at its values:
    [text, column, text, column, ..., text]; columns are "line" or "keys.<key>"."""
    member = {name: f"@{name}@" for name in MEMBER_FIELDS}
    member["keys"] = {k: f"@keys.{k}@" for k in key_names}
    return _SLOT.split(dumps(member).replace("\n", "\n  "))


_PLAIN = bytes(b for b in colwise.PRINTABLE_ASCII if b not in b'"\\')  # json.dumps keeps


def json_values(values: Sequence) -> pa.Array:
    """One JSON text per value. Plain strings and integers (nearly every cell) are
    encoded by arrow; anything else once per distinct value by json.dumps. A categorical's
    categories are encoded, once each."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        if not values.hasnans:
            return json_values(values.cat.categories).take(pa.array(values.cat.codes))
        values = values.astype(object)  # NaN as json.dumps writes it
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        array = None
    if isinstance(array, pa.ChunkedArray):  # an index or column joined from parts
        array = array.combine_chunks()
    if array is not None and not array.null_count:
        if pa.types.is_integer(array.type):
            return pc.cast(array, pa.large_string())
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            array = array.cast(pa.large_string())
            if colwise.only_bytes(array, _PLAIN):
                return colwise.concat(['"', array, '"'], len(array))
    return colwise.strings(colwise.factorize(values), lambda v: json.dumps(jsonable(v)))


def member_texts(columns: dict[str, Sequence], layout: list[str]) -> pa.Array:
    """Each row's member JSON; ``columns`` holds the values of each layout column."""
    n = len(columns["line"])
    pieces = [text if i % 2 == 0 else json_values(columns[text]) for i, text in enumerate(layout)]
    return colwise.concat(pieces, n)


def joined_members(texts: pa.Array, sizes: Iterable[int]) -> list[str]:
    """The member texts of consecutive batches of ``sizes`` rows, each batch's joined."""
    offsets = pa.array(np.concatenate([[0], np.cumsum(list(sizes))]), pa.int32())
    lists = pa.ListArray.from_arrays(offsets, texts)
    return pc.binary_join(lists, pa.scalar(_BETWEEN_MEMBERS, pa.large_string())).to_pylist()


def plan_text(batch: str, analysis: str, params: dict, members: str) -> str:
    """The plan file of a batch whose members' joined JSON is ``members``."""
    head = dumps({"analysis": analysis, "batch": batch, "members": [], "params": params})
    before, after = head.split(_MEMBERS)
    return f'{before}\n "members": [\n  {members}\n ]{after}\n'
