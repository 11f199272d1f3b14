"""Data-product declarations: which observation parameters identify a file, how they
map to a path under the data root, and which reader turns the file into what an
analysis takes. The engine knows only this shape; the SDSS products are declared in
starbatch.sdss.products."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from string import Formatter
from typing import Any

from .identifiers import IDENTIFIER_PATTERN, ObservationKeyError, check_identifier
from .params import Parameter


@dataclass(frozen=True)
class DataProduct:
    name: str
    keys: tuple[Parameter, ...]
    template: str  # relative to the data root, str.format fields = key names
    read: Callable[..., Any]
    # Task parameters every analysis on this product gets (passed to `read`).
    read_parameters: tuple[Parameter, ...] = ()
    # Keys that may be left blank and are then computed from the others.
    derived: Mapping[str, Callable[[dict], str]] = field(default_factory=dict)
    # Template fields that are not table columns but functions of the keys (the SDSS
    # tree's special functions, e.g. @healpixgrp|); they may raise ObservationKeyError.
    computed: Mapping[str, Callable[[Mapping], str]] = field(default_factory=dict)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.keys)

    def parse_key(self, p: Parameter, cell: Any) -> Any:
        """One key cell, typed and checked (None: blank, to be derived).
        Raises ObservationKeyError naming the key."""
        try:
            value = p.parse(cell)
            if value is None and p.name in self.derived:
                return None
            if p.type is str:
                return check_identifier(p.name, value)
            if value < 0:
                raise ValueError(f"{p.name!r} must not be negative, got {value}")
            return value
        except ObservationKeyError:
            raise
        except ValueError as exc:
            raise ObservationKeyError(p.name, str(exc)) from None

    def derive(self, keys: dict) -> dict:
        """``keys`` with the blank derived keys filled in (in place)."""
        for name in self.derived:
            if keys.get(name) is None:
                keys[name] = self._derive(name, {k: v for k, v in keys.items() if v is not None})
        return keys

    def _derive(self, name: str, known: Mapping) -> Any:
        try:
            return self.derived[name](known)
        except KeyError as exc:
            raise ObservationKeyError(
                name, f"cannot derive {name!r} from {exc}: set {name!r} explicitly"
            ) from None

    def parse_keys(self, raw: Mapping[str, Any]) -> dict:
        """Typed, validated observation keys of one observation."""
        return self.derive({p.name: self.parse_key(p, raw.get(p.name)) for p in self.keys})

    def parse_key_columns(self, cells: Mapping[str, Sequence]) -> tuple[dict, Any]:
        """Many observations at once: ``cells`` holds one sequence of raw cells per key.
        A key's value depends on its own cell alone, so each column's distinct cells are
        parsed once; derived keys and computed fields are worked out once per distinct
        combination of the keys they read, and paths are joined column-wise (a million
        rows in well under a second). Returns ({key: pandas array (columns.compact)},
        arrow array of paths); raises ObservationKeyError (or ValueError) at the first bad cell."""
        from . import columns as col  # numpy/pyarrow: not for every Snakefile parse

        keys = {}
        for p in self.keys:
            codes, cells_seen = col.factorize(cells[p.name])
            values = self._parse_plain_keys(p, cells_seen)
            keys[p.name] = (codes, values or [self.parse_key(p, c) for c in cells_seen])
        for name in self.derived:
            codes, values = keys[name]
            blank = col.rows_where(keys[name], lambda v: v is None)
            if blank.any():
                part = {k: (c[blank], v) for k, (c, v) in keys.items()}
                got_codes, got = col.apply_by_reads(partial(self._derive, name), part, True)
                codes = codes.copy()
                codes[blank] = got_codes + len(values)
                keys[name] = (codes, values + got)
        fields = {**keys, **{n: col.apply_by_reads(f, keys) for n, f in self.computed.items()}}
        pieces = []
        for literal, name, spec, conversion in Formatter().parse(self.template):
            pieces += [literal] if literal else []
            if name is not None and (spec or conversion):
                text = partial(_format_field, spec=spec, conversion=conversion)
                pieces.append(col.strings(fields[name], text))
            elif name is not None:
                pieces.append(col.strings(fields[name], str))
        paths = col.concat(pieces, len(next(iter(keys.values()))[0]))
        for path in col.starting_or_containing(paths, "/", ".."):
            _check_path(path)
        return {name: col.compact(column) for name, column in keys.items()}, paths

    def _parse_plain_keys(self, p: Parameter, cells: list) -> list | None:
        """parse_key of every cell of a string key, by arrow, when each is plain ASCII
        and a safe identifier or blank with a default (nearly always); else None."""
        from . import columns as col

        strings = col.text_array(cells)
        if p.type is not str or p.choices or not cells or strings is None:
            return None
        if not col.only_bytes(strings, col.PRINTABLE_ASCII):
            return None  # str.strip() and arrow's trim agree on printable ASCII only
        values = col.trim(strings)
        filled = values.filter(col.non_empty(values))
        if not col.all_match(filled, IDENTIFIER_PATTERN) or col.any_contains(filled, ".."):
            return None  # check_identifier says which and why
        values = values.to_pylist()
        if len(filled) < len(values):
            try:
                default = self.parse_key(p, "")
            except ValueError:
                return None
            values = [v if v else default for v in values]
        return values

    def relative_path(self, keys: Mapping[str, Any]) -> str:
        fields = {**keys, **{name: f(keys) for name, f in self.computed.items()}}
        return _check_path(self.template.format(**fields))


def _format_field(value: Any, spec: str, conversion: str | None) -> str:
    """One template field as str.format renders it."""
    return format(Formatter().convert_field(value, conversion), spec)


def _check_path(path: str) -> str:
    # Defence in depth: the keys were checked, but the result must be too. The string
    # test first: a Path per row costs seconds on a million rows.
    if (path.startswith("/") or ".." in path) and (
        Path(path).is_absolute() or ".." in Path(path).parts
    ):
        raise ValueError(f"observation path {path!r} escapes the data root")
    return path
