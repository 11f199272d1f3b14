"""Task parameters: declared by an analysis with a type, a default and whether
they are significant (split batches) or not (device, verbosity, ...)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # sentinel: the parameter has no default

_TRUE = {"true", "yes", "1", "on", "t", "y"}
_FALSE = {"false", "no", "0", "off", "f", "n"}


def is_blank(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True
    return isinstance(raw, str) and raw.strip() == ""


@dataclass(frozen=True)
class Parameter:
    """A task parameter. ``type`` is one of int, float, bool, str."""

    name: str
    type: type = str
    default: Any = REQUIRED
    significant: bool = True
    help: str = ""
    # Allowed values (str parameters), checked when the table is read.
    choices: tuple = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def parse(self, raw: Any) -> Any:
        """Turn a table cell or YAML value into the declared type (blank -> default).

        Raises ValueError saying what was expected; callers add row and column."""
        if is_blank(raw):
            if self.required:
                raise ValueError(f"parameter {self.name!r} is required (no default)")
            return self.default
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"expected true/false for {self.name!r}, got {raw!r}")
        if self.type is int:
            try:
                value = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"expected an integer for {self.name!r}, got {raw!r}") from None
            if not value.is_integer():
                raise ValueError(f"expected an integer for {self.name!r}, got {raw!r}")
            return int(value)
        if self.type is float:
            try:
                value = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"expected a number for {self.name!r}, got {raw!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number for {self.name!r}, got {raw!r}")
            return value
        value = str(raw).strip()
        if self.choices and value not in self.choices:
            raise ValueError(
                f"expected one of {', '.join(self.choices)} for {self.name!r}, got {raw!r}"
            )
        return value


def canonical(value: Any) -> str:
    """A string that is equal exactly when two parsed values are equal, so that
    5 and 5.0 for a float parameter group together (both parse to 5.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
