"""The SDSS data products: their observation keys and path templates under the SAS
root (the DR16/DR17 templates of the SDSS tree), and the reader of each.

A new product is one `DataProduct(...)` declaration here plus an entry in PRODUCTS.
"""

from __future__ import annotations

from starbatch.engine.params import REQUIRED, Parameter
from starbatch.engine.products import DataProduct

from .spectrum import Spectrum

TELESCOPE_PREFIX = {"apo25m": "ap", "apo1m": "ap", "lco25m": "as"}
# apStar file-name prefix -> telescope (the DR17 apStar header has no TELESCOP card).
PREFIX_TELESCOPE = {"ap": "apo25m", "as": "lco25m"}


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
