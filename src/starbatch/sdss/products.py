"""The SDSS data products: their observation keys and path templates under the SAS
root, and the reader of each. The templates are the SDSS tree's (sdss-tree's
dr16/dr17/dr19/ipl*/sdsswork configuration, with its special functions such as
@healpixgrp|); tests/unit/test_sdss_tree.py checks every one against sdss-access.

A new product is one `DataProduct(...)` declaration here plus an entry in PRODUCTS.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from starbatch.engine.dataproduct import DataProduct
from starbatch.engine.identifiers import ObservationKeyError
from starbatch.engine.params import REQUIRED, Parameter

from .spectrum import Spectrum
from .telescopes import TELESCOPE_PREFIX


def _prefix(keys: dict) -> str:
    return TELESCOPE_PREFIX[keys["telescope"]]


def _read_apstar(path, apstar_row: int = 0) -> Spectrum:
    from .readers import read_apstar

    return read_apstar(path, row=apstar_row)


def _read_apvisit(path) -> Spectrum:
    from .readers import read_apvisit

    return read_apvisit(path)


def _read_mwm(path, kind: str, observatory: str = "APO", mwm_row: int = 0) -> Spectrum:
    # H-band analyses only: the APOGEE HDU of the file (an empty one is a flagged row).
    from .readers_mwm import read_mwm

    return read_mwm(path, kind, "APOGEE", observatory, mwm_row)


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


# SDSS-V (DR19 and the internal releases with the same layout). Where each release keeps
# the APOGEE reductions ($APOGEE_REDUX) and Astra's spectra ($MWM_ASTRA), relative to
# $SAS_BASE_DIR. IPL-4's Astra tree has no {v_astra} directory, so it has no mwm entry.
APOGEE_REDUX = {
    "dr19": "dr19/spectro/apogee/redux",
    "ipl3": "ipl-3/spectro/apogee/redux",
    "ipl4": "ipl-4/spectro/apogee/redux",
    "sdsswork": "sdsswork/mwm/apogee/spectro/redux",
}
MWM_ASTRA = {
    "dr19": "dr19/spectro/astra",
    "ipl3": "ipl-3/spectro/astra",
    "sdsswork": "sdsswork/mwm/spectro/astra",
}
DR19_APRED = "1.4"
DR19_V_ASTRA = "0.6.0"
OBSERVATORIES = ("APO", "LCO")


def _release_root(roots: Mapping[str, str], product: str, keys: Mapping) -> str:
    try:
        return roots[keys["release"]]
    except KeyError:
        raise ObservationKeyError(
            "release",
            f"release {keys['release']!r} has no {product} in the SDSS-V layout; use one of "
            f"{', '.join(roots)} (DR16/DR17 files: the ApStarFile/ApVisitFile analyses)",
        ) from None


def healpix_group(keys: Mapping) -> str:
    """sdss-access's @healpixgrp|: HEALPix // 1000."""
    return f"{int(keys['healpix']) // 1000:d}"


def sdss_id_groups(keys: Mapping) -> str:
    """sdss-access's @sdss_id_groups|: two directory levels from the last four digits
    (at most 100 x 100 folders of ~1,000 files each for 10 million sources)."""
    sdss_id = int(keys["sdss_id"])
    return f"{(sdss_id // 100) % 100:02d}/{sdss_id % 100:02d}"


_DR19_KEYS = (
    _key("release", "dr19", help_="dr19, or an internal release: ipl3, ipl4, sdsswork"),
    _key("apred", DR19_APRED),
    _key("telescope", REQUIRED, help_="apo25m, lco25m or apo1m"),
)

APSTAR_DR19 = DataProduct(
    name="ApStarFileDR19",
    keys=(
        *_DR19_KEYS,
        _key("healpix", REQUIRED, int, help_="HEALPix (nside 128) of the star"),
        _key("obj", REQUIRED, help_="APOGEE ID, e.g. 2M17335483-2753043"),
    ),
    template=(
        "{redux}/{apred}/stars/{telescope}/{healpixgrp}/{healpix}/"
        "apStar-{apred}-{telescope}-{obj}.fits"
    ),
    read=_read_apstar,
    read_parameters=APSTAR.read_parameters,
    computed={
        "redux": partial(_release_root, APOGEE_REDUX, "ApStarFile"),
        "healpixgrp": healpix_group,
    },
)

APVISIT_DR19 = DataProduct(
    name="ApVisitFileDR19",
    keys=(
        *_DR19_KEYS,
        _key("field", REQUIRED),
        _key("plate", REQUIRED),
        _key("mjd", REQUIRED, int),
        _key("fiber", REQUIRED, int),
    ),
    template=(
        "{redux}/{apred}/visit/{telescope}/{field}/{plate}/{mjd}/"
        "apVisit-{apred}-{telescope}-{plate}-{mjd}-{fiber:0>3}.fits"
    ),
    read=_read_apvisit,
    computed={"redux": partial(_release_root, APOGEE_REDUX, "ApVisitFile")},
)

_MWM_KEYS = (
    _key("release", "dr19", help_="dr19, or an internal release: ipl3, sdsswork"),
    _key("v_astra", DR19_V_ASTRA, help_="Astra version, e.g. 0.6.0"),
    _key("sdss_id", REQUIRED, int, help_="SDSS-V source identifier"),
)
_OBSERVATORY = Parameter(
    "observatory",
    str,
    "APO",
    help="which APOGEE HDU to read: APO (HDU3) or LCO (HDU4)",
    choices=OBSERVATORIES,
)

MWMSTAR = DataProduct(
    name="MwmStarFile",
    keys=_MWM_KEYS,
    template="{astra}/{v_astra}/spectra/star/{sdss_id_groups}/mwmStar-{v_astra}-{sdss_id}.fits",
    read=partial(_read_mwm, kind="mwmStar"),
    read_parameters=(_OBSERVATORY,),
    computed={
        "astra": partial(_release_root, MWM_ASTRA, "MwmStarFile"),
        "sdss_id_groups": sdss_id_groups,
    },
)

MWMVISIT = DataProduct(
    name="MwmVisitFile",
    keys=_MWM_KEYS,
    template=("{astra}/{v_astra}/spectra/visit/{sdss_id_groups}/mwmVisit-{v_astra}-{sdss_id}.fits"),
    read=partial(_read_mwm, kind="mwmVisit"),
    read_parameters=(
        _OBSERVATORY,
        Parameter("mwm_row", int, 0, help="which visit: row of the APOGEE HDU (0 = first)"),
    ),
    computed={
        "astra": partial(_release_root, MWM_ASTRA, "MwmVisitFile"),
        "sdss_id_groups": sdss_id_groups,
    },
)

PRODUCTS = {p.name: p for p in (APSTAR, APVISIT, APSTAR_DR19, APVISIT_DR19, MWMSTAR, MWMVISIT)}
