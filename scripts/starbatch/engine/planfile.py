"""The batch plan files: their format, and their members read back (plantext.py makes
the text, column-wise).

A plan is one line of JSON, exactly ``json.dumps(doc, sort_keys=True,
separators=(",", ":")) + "\\n"`` (a test checks), with the members stored by column::

    {"analysis": ..., "batch": ..., "params": {...},
     "members": {"n": 100, "line": [2, 3, ...], "path": [...], "source": COLUMN,
                 "keys": {"obj": [...], "telescope": {"all": "apo25m"}, ...}}}

A column is a list of ``n`` values, or ``{"all": value}`` when every member has the
same one (the source and most keys of a batch). A survey plans millions of rows, and
a dict per member, indented, as plans were written before, took ~3x the bytes. Those
plans are still read, and planning keeps one that lists the same members
(``same_plan``), so upgrading starbatch reruns no batch.
"""

from __future__ import annotations

import json

MEMBER_FIELDS = ("line", "path", "source")


def dumps(doc) -> str:
    """A plan's text, less its newline."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def members(plan: dict, where: str = "batch plan") -> list[dict]:
    """The plan's members, one dict each: {"line", "path", "source", "keys": {...}}."""
    stored = plan.get("members", [])
    if isinstance(stored, list):  # a dict per member: as plans were written before
        return stored
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


def same_plan(old: bytes, new: str) -> bool:
    """Whether two plan texts describe the same batch (members, order and parameters)
    in whatever format each was written."""
    try:
        return _normalised(old) == _normalised(new)
    except (ValueError, TypeError, AttributeError):
        return False


def _normalised(text: bytes | str) -> dict:
    doc = json.loads(text)
    return {**doc, "members": members(doc)}
