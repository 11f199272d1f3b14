"""Values as JSON writes them: parameters in plan files, results in the journal."""

from __future__ import annotations


def jsonable(value):
    """A numpy scalar or array as the plain Python value or list json writes."""
    return value.tolist() if hasattr(value, "tolist") else value
