"""Data-product declarations: which observation parameters identify a file, how they
map to a path under the data root, and which reader turns the file into what an
analysis takes. The engine knows only this shape; the SDSS products are declared in
starbatch.sdss.products."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .identifiers import ObservationKeyError, check_identifier
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
        for name, derive in self.derived.items():
            if keys.get(name) is None:
                known = {k: v for k, v in keys.items() if v is not None}
                try:
                    keys[name] = derive(known)
                except KeyError as exc:
                    raise ObservationKeyError(
                        name, f"cannot derive {name!r} from {exc}: set {name!r} explicitly"
                    ) from None
        return keys

    def parse_keys(self, raw: Mapping[str, Any]) -> dict:
        """Typed, validated observation keys of one observation."""
        return self.derive({p.name: self.parse_key(p, raw.get(p.name)) for p in self.keys})

    def parse_key_columns(self, cells: Mapping[str, Sequence]) -> tuple[dict, list[str]]:
        """Many observations at once: ``cells`` holds one sequence of raw cells per key.
        A key's value depends on its own cell alone, so each column's distinct cells are
        parsed once (a million rows, a million objects, a few thousand fields); only
        derived keys and the path are made per row. Returns ({key: values}, paths);
        raises ObservationKeyError (or ValueError) at the first bad cell."""
        columns = {}
        for p in self.keys:
            values = {c: self.parse_key(p, c) for c in dict.fromkeys(cells[p.name])}
            columns[p.name] = [values[c] for c in cells[p.name]]
        paths = []
        needs_derive = [name for name in self.derived if None in columns[name]]
        for i, row in enumerate(zip(*columns.values(), strict=True)):
            keys = dict(zip(columns, row, strict=True))
            if needs_derive:
                self.derive(keys)
                for name in needs_derive:
                    columns[name][i] = keys[name]
            paths.append(self.relative_path(keys))
        return columns, paths

    def relative_path(self, keys: Mapping[str, Any]) -> str:
        fields = {**keys, **{name: f(keys) for name, f in self.computed.items()}}
        path = self.template.format(**fields)
        # Defence in depth: the keys were checked, but the result must be too. The string
        # test first: a Path per row costs seconds on a million rows.
        if (path.startswith("/") or ".." in path) and (
            Path(path).is_absolute() or ".." in Path(path).parts
        ):
            raise ValueError(f"observation path {path!r} escapes the data root")
        return path
