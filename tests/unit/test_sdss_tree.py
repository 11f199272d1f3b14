"""Every path template agrees with the SDSS tree's own configuration: sdss-access
(offline, with sdss-tree's dr16/dr17/dr19/ipl*/sdsswork files) builds the same path as
starbatch for many key sets, its special functions (@healpixgrp|, @sdss_id_groups|)
agree with ours, and the template texts match once the tree's variables are named."""

import os

import numpy as np
import pytest
import sdss_access.path as sdss_access_path

from starbatch.engine.identifiers import ObservationKeyError
from starbatch.sdss import products as P

SAS = "/sas-root"
# (product, sdss-access file type, releases whose layout it declares)
CASES = [
    (P.APSTAR, "apStar", ("dr16", "dr17")),
    (P.APVISIT, "apVisit", ("dr16", "dr17")),
    (P.APSTAR_DR19, "apStar", tuple(P.APOGEE_REDUX)),
    (P.APVISIT_DR19, "apVisit", tuple(P.APOGEE_REDUX)),
    (P.MWMSTAR, "mwmStar", tuple(P.MWM_ASTRA)),
    (P.MWMVISIT, "mwmVisit", tuple(P.MWM_ASTRA)),
]


@pytest.fixture
def tree():
    """tree(release): an sdss-access Path for that release. Loading a release sets the
    tree's environment variables ($APOGEE_REDUX, ...) that its paths expand, so use
    one release at a time; the process environment is put back afterwards."""
    saved = dict(os.environ)
    os.environ["SAS_BASE_DIR"] = SAS
    try:
        yield lambda release: sdss_access_path.Path(release=release, preserve_envvars=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def key_sets(n: int, seed: int) -> list[dict]:
    """Varied keys: all telescopes, HEALPix over the whole nside-128 sphere, sdss_id
    from 1 to 1e8 (short ids exercise the zero padding of the groups)."""
    rng = np.random.default_rng(seed)
    sets = []
    for i in range(n):
        sdss_id = int(
            rng.choice([rng.integers(1, 100), rng.integers(100, 10**4), rng.integers(10**4, 10**8)])
        )
        sets.append(
            {
                "apred": str(rng.choice(["dr17", "1.4", "1.3", "r13"])),
                "telescope": str(rng.choice(["apo25m", "lco25m", "apo1m"])),
                "field": str(rng.choice(["000+02", "K04_083+13", "N188", "47TUC", "120-08-RV"])),
                "obj": f"2M{rng.integers(0, 24):02d}{rng.integers(0, 600000):06d}"
                f"{rng.choice(['+', '-'])}{rng.integers(0, 9000000):07d}",
                "plate": str(rng.integers(1000, 200000)),
                "mjd": int(rng.integers(55000, 61000)),
                "fiber": int(rng.integers(1, 301)),
                "healpix": int(rng.integers(0, 12 * 128**2)) if i else 0,
                "v_astra": str(rng.choice(["0.6.0", "0.5.0", "0.7.1"])),
                "sdss_id": sdss_id,
            }
        )
    return sets


@pytest.mark.parametrize("product,filetype,releases", CASES, ids=[c[0].name for c in CASES])
def test_every_path_matches_sdss_access(tree, product, filetype, releases):
    checked = 0
    for release in releases:
        access = tree(release)
        for raw in key_sets(150, seed=len(release) + len(filetype)):
            raw = {k: v for k, v in raw.items() if k in product.key_names}
            keys = product.parse_keys({**raw, "release": release})
            tree_keys = {"apstar": "stars", **keys}
            if "telescope" in keys:  # DR16/DR17 templates spell the prefix out
                tree_keys["prefix"] = P.TELESCOPE_PREFIX[keys["telescope"]]
            expected = access.full(filetype, **tree_keys)
            assert expected.startswith(SAS + "/"), expected
            assert product.relative_path(keys) == expected[len(SAS) + 1 :], (release, keys)
            checked += 1
    assert checked == 150 * len(releases)


def test_special_functions_match_sdss_access(tree):
    access = tree("dr19")
    for keys in key_sets(500, seed=7):
        assert P.healpix_group(keys) == access.healpixgrp("apStar", healpix=keys["healpix"])
        expected = access.sdss_id_groups("mwmStar", sdss_id=keys["sdss_id"])
        assert P.sdss_id_groups(keys) == expected
    for sdss_id in (0, 1, 99, 100, 101, 9999, 10000, 123456789):
        expected = access.sdss_id_groups("mwmStar", sdss_id=sdss_id)
        assert P.sdss_id_groups({"sdss_id": sdss_id}) == expected


# Our template text with the tree's variables and special functions put back.
TREE_NAMES = {
    "{release}/apogee/spectro/redux": "$APOGEE_REDUX",
    "{redux}": "$APOGEE_REDUX",
    "{astra}": "$MWM_ASTRA",
    "{healpixgrp}": "@healpixgrp|",
    "{sdss_id_groups}": "@sdss_id_groups|",
}


@pytest.mark.parametrize("product,filetype,releases", CASES, ids=[c[0].name for c in CASES])
def test_template_text_is_the_trees(tree, product, filetype, releases):
    ours = product.template
    for name, tree_name in TREE_NAMES.items():
        ours = ours.replace(name, tree_name)
    for release in releases:
        assert ours == tree(release).templates[filetype], release


def test_release_without_the_layout_is_an_error_naming_the_column():
    with pytest.raises(ObservationKeyError, match="'ipl4' has no MwmStarFile") as info:
        P.MWMSTAR.relative_path(P.MWMSTAR.parse_keys({"release": "ipl4", "sdss_id": "5"}))
    assert info.value.column == "release"
    keys = P.APSTAR_DR19.parse_keys(
        {"release": "dr17", "telescope": "apo25m", "healpix": "1", "obj": "2M1"}
    )
    with pytest.raises(ObservationKeyError, match="DR16/DR17 files"):
        P.APSTAR_DR19.relative_path(keys)


@pytest.mark.parametrize(
    "product,column,value,message",
    [
        (P.MWMSTAR, "v_astra", "../0.6.0", "unsafe"),
        (P.MWMSTAR, "v_astra", "0.6/../x", "unsafe"),
        (P.MWMSTAR, "sdss_id", "-5", "negative"),
        (P.MWMSTAR, "sdss_id", "12a", "integer"),
        (P.MWMSTAR, "release", "../dr19", "unsafe"),
        (P.APSTAR_DR19, "obj", "a/b", "unsafe"),
        (P.APSTAR_DR19, "healpix", "-1", "negative"),
        (P.APSTAR_DR19, "telescope", "..", "unsafe"),
        (P.APVISIT_DR19, "field", "/etc", "unsafe"),
    ],
)
def test_new_keys_are_validated(product, column, value, message):
    raw = {
        "telescope": "apo25m",
        "healpix": "3",
        "obj": "2M1",
        "sdss_id": "42",
        "field": "F",
        "plate": "1",
        "mjd": "60000",
        "fiber": "1",
    }
    raw = {k: v for k, v in raw.items() if k in product.key_names}
    raw[column] = value
    with pytest.raises(ObservationKeyError, match=message) as info:
        product.parse_keys(raw)
    assert info.value.column == column
