import pytest

from starbatch.engine.identifiers import ObservationKeyError
from starbatch.sdss.products import APSTAR, APVISIT
from starbatch.workflow import SCHEMAS


def test_apstar_path_follows_dr17_template():
    keys = APSTAR.parse_keys(
        {"telescope": "apo25m", "field": "000+02", "obj": "2M17335483-2753043"}
    )
    assert APSTAR.relative_path(keys) == (
        "dr17/apogee/spectro/redux/dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits"
    )


def test_lco_prefix_is_derived_from_telescope():
    keys = APSTAR.parse_keys({"telescope": "lco25m", "field": "47TUC", "obj": "2M00240000-7200000"})
    assert APSTAR.relative_path(keys).endswith("lco25m/47TUC/asStar-dr17-2M00240000-7200000.fits")


def test_apvisit_path_pads_fiber():
    keys = APVISIT.parse_keys(
        {
            "apred": "r13",
            "telescope": "apo25m",
            "field": "F",
            "plate": "5095",
            "mjd": "55844",
            "fiber": "7",
        }
    )
    assert APVISIT.relative_path(keys) == (
        "dr17/apogee/spectro/redux/r13/visit/apo25m/F/5095/55844/apVisit-r13-5095-55844-007.fits"
    )


@pytest.mark.parametrize(
    "column,value",
    [
        ("obj", "../../etc/passwd"),
        ("obj", "a/b"),
        ("field", ".."),
        ("obj", "/abs"),
        ("field", "-rf"),
        ("obj", "x\\y"),
        ("obj", "a b"),
    ],
)
def test_unsafe_identifiers_are_rejected_naming_the_column(column, value):
    raw = {"telescope": "apo25m", "field": "000+02", "obj": "2M1"}
    raw[column] = value
    with pytest.raises(ObservationKeyError, match="unsafe") as info:
        APSTAR.parse_keys(raw)
    assert info.value.column == column


def test_unknown_telescope_without_prefix_asks_for_prefix():
    with pytest.raises(ObservationKeyError, match="prefix"):
        APSTAR.parse_keys({"telescope": "xyz", "field": "f", "obj": "o"})
    keys = APSTAR.parse_keys({"telescope": "xyz", "field": "f", "obj": "o", "prefix": "ap"})
    assert keys["prefix"] == "ap"


def test_the_table_schema_uses_the_engines_identifier_pattern():

    import yaml

    from starbatch.engine.identifiers import IDENTIFIER_PATTERN

    path = SCHEMAS / "observations.schema.yaml"
    defs = yaml.safe_load(path.read_text())["$defs"]
    assert defs["identifier"]["pattern"] == f"^{IDENTIFIER_PATTERN}$"
    assert defs["identifier_or_blank"]["pattern"] == f"^({IDENTIFIER_PATTERN})?$"
