"""Identifiers that become path components (fields, objects, grid and model names).

They may hold no separators, no "..", and must not start with "." or "-": this is what
keeps a table row from escaping the data root or smuggling options. The workflow's
wildcard constraints and the table schema use this same pattern (a test checks)."""

from __future__ import annotations

import re

IDENTIFIER_PATTERN = r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]*"
SAFE_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class ObservationKeyError(ValueError):
    """A bad observation key or identifier; ``column`` names the table column to fix."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column


def check_identifier(name: str, value: str) -> str:
    """``value`` unchanged if it is safe as a path component; else ObservationKeyError
    (a ValueError) naming ``name``, the table column to fix."""
    if not SAFE_IDENTIFIER.fullmatch(value) or ".." in value:
        raise ObservationKeyError(
            name,
            f"unsafe value {value!r} for {name!r}: identifiers may contain only letters, "
            "digits and _ . + - (no path separators, no '..', not starting with '.' or '-')",
        )
    return value
