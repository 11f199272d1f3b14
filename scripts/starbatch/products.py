"""Data products: which observation parameters identify a file, how they map to
a path under the SAS root (the SDSS DR16/DR17 templates), and how to read it.

A new product is one `DataProduct(...)` declaration plus an entry in PRODUCTS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import REQUIRED, Parameter
from .spectrum import Spectrum

# Identifiers become path components, so they may hold no separators, no "..",
# and must not start with "." or "-": this is what keeps a table row from
# escaping the data root or smuggling options.
SAFE_IDENTIFIER = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]*")

TELESCOPE_PREFIX = {"apo25m": "ap", "apo1m": "ap", "lco25m": "as"}


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


@dataclass(frozen=True)
class DataProduct:
    name: str
    keys: tuple[Parameter, ...]
    template: str  # relative to the SAS root, str.format fields = key names
    read: Callable[..., Spectrum]
    # Task parameters every analysis on this product gets (passed to `read`).
    read_parameters: tuple[Parameter, ...] = ()
    derived: Mapping[str, Callable[[dict], str]] = field(default_factory=dict)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.keys)

    def parse_keys(self, raw: Mapping[str, Any]) -> dict:
        """Typed, validated observation keys; raises ValueError naming the key."""
        out = {}
        for p in self.keys:
            try:
                value = p.parse(raw.get(p.name))
            except ValueError as exc:
                raise ObservationKeyError(p.name, str(exc)) from None
            if value is None and p.name in self.derived:
                continue
            try:
                if p.type is str:
                    value = check_identifier(p.name, value)
                elif value < 0:
                    raise ValueError(f"{p.name!r} must not be negative, got {value}")
                out[p.name] = value
            except ValueError as exc:
                raise ObservationKeyError(p.name, str(exc)) from None
        for name, derive in self.derived.items():
            if out.get(name) is None:
                try:
                    out[name] = derive(out)
                except KeyError as exc:
                    raise ObservationKeyError(
                        name, f"cannot derive {name!r} from {exc}: set {name!r} explicitly"
                    ) from None
        return out

    def relative_path(self, keys: Mapping[str, Any]) -> str:
        path = self.template.format(**keys)
        # Defence in depth: the keys were checked, but the result must be too.
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"observation path {path!r} escapes the data root")
        return path


def _prefix(keys: dict) -> str:
    return TELESCOPE_PREFIX[keys["telescope"]]


def _read_apstar(path, apstar_row: int = 0) -> Spectrum:
    from .readers import read_apstar

    return read_apstar(path, row=apstar_row)


def _read_apvisit(path) -> Spectrum:
    from .readers import read_apvisit

    return read_apvisit(path)


def _key(name: str, default=None, type_=str, help_="") -> Parameter:
    return Parameter(name, type=type_, default=default, help=help_)


APSTAR = DataProduct(
    name="ApStarFile",
    keys=(
        _key("release", "dr17"),
        _key("apred", "dr17"),
        _key("telescope", REQUIRED, help_="apo25m, lco25m or apo1m"),
        _key("field", REQUIRED),
        _key("prefix", None, help_="ap (APO) or as (LCO); derived from telescope if blank"),
        _key("obj", REQUIRED, help_="APOGEE ID, e.g. 2M17335483-2753043"),
        _key("apstar", "stars"),
    ),
    template=(
        "{release}/apogee/spectro/redux/{apred}/{apstar}/{telescope}/{field}/"
        "{prefix}Star-{apred}-{obj}.fits"
    ),
    read=_read_apstar,
    read_parameters=(
        Parameter(
            "apstar_row",
            int,
            0,
            help="row of the apStar arrays: 0 pixel-weighted stack, 1 global stack, 2+ visits",
        ),
    ),
    derived={"prefix": _prefix},
)

APVISIT = DataProduct(
    name="ApVisitFile",
    keys=(
        _key("release", "dr17"),
        _key("apred", "dr17"),
        _key("telescope", REQUIRED),
        _key("field", REQUIRED),
        _key("plate", REQUIRED),
        _key("mjd", REQUIRED, int),
        _key("prefix", None),
        _key("fiber", REQUIRED, int),
    ),
    template=(
        "{release}/apogee/spectro/redux/{apred}/visit/{telescope}/{field}/{plate}/{mjd}/"
        "{prefix}Visit-{apred}-{plate}-{mjd}-{fiber:0>3}.fits"
    ),
    read=_read_apvisit,
    derived={"prefix": _prefix},
)

PRODUCTS = {p.name: p for p in (APSTAR, APVISIT)}
