"""The text of the batch plan files (planfile.py: the format), made column-wise: a
million members as JSON without a dict per member."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import columns as colwise
from .manifest import jsonable
from .planfile import MEMBER_FIELDS, dumps

_SLOT = '"members":0'  # where the members go in a plan's head (first; sort_keys)


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


def column_texts(values: Sequence, sizes: Sequence[int]) -> list[str]:
    """The JSON of one member column for each of consecutive batches of ``sizes`` rows:
    ``[v1,v2,...]``, or ``{"all":v}`` where the batch's values are all equal."""
    texts = json_values(values)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    # A batch is constant when no member differs from the one before it.
    differs = pc.not_equal(texts[1:], texts[:-1]).to_numpy(zero_copy_only=False)
    changes = np.concatenate([[0], np.cumsum(differs)])
    first = starts[:-1]
    constant = changes[starts[1:] - 1] == changes[first]
    lists = pa.LargeListArray.from_arrays(pa.array(starts), texts)
    varying = np.flatnonzero(~constant)
    comma = pa.scalar(",", pa.large_string())
    joined = pc.binary_join(lists.take(pa.array(varying)), comma).to_pylist()
    out = [f'{{"all":{t}}}' for t in texts.take(pa.array(first)).to_pylist()]
    for i, text in zip(varying, joined, strict=True):
        out[i] = f"[{text}]"
    return out


def members_texts(columns: dict[str, Sequence], key_names: Sequence[str], sizes) -> list[str]:
    """The ``members`` JSON of consecutive batches of ``sizes`` rows; ``columns`` holds
    MEMBER_FIELDS and "keys.<key>" for each key, a row per member."""
    sizes = list(sizes)
    keys = {k: column_texts(columns[f"keys.{k}"], sizes) for k in sorted(key_names)}
    fields = {name: column_texts(columns[name], sizes) for name in MEMBER_FIELDS}
    names = {k: json.dumps(k) for k in keys}  # once, not once per batch
    out = []
    for b, n in enumerate(sizes):
        key_text = ",".join(f"{names[k]}:{texts[b]}" for k, texts in keys.items())
        out.append(
            f'{{"keys":{{{key_text}}},"line":{fields["line"][b]},"n":{n},'
            f'"path":{fields["path"][b]},"source":{fields["source"][b]}}}'
        )
    return out


def plan_text(batch: str, analysis: str, params: dict, members: str) -> str:
    """The plan file of a batch whose ``members`` JSON is given (members_texts)."""
    head = dumps({"analysis": analysis, "batch": batch, "members": 0, "params": params})
    return head.replace(_SLOT, f'"members":{members}', 1) + "\n"
