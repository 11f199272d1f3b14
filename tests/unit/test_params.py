import pytest

from starbatch.engine.params import Parameter, canonical


def test_float_parameter_normalises_int_spelling():
    p = Parameter("a", float)
    assert canonical(p.parse("5")) == canonical(p.parse("5.0")) == canonical(p.parse(" 5.00 "))


def test_int_parameter_accepts_integral_float_but_not_fraction():
    p = Parameter("order", int)
    assert p.parse("10") == 10 and p.parse("10.0") == 10
    with pytest.raises(ValueError, match="integer"):
        p.parse("10.5")


def test_blank_gives_default_or_required_error():
    assert Parameter("a", float, 2.5).parse("") == 2.5
    with pytest.raises(ValueError, match="required"):
        Parameter("a", float).parse("")


@pytest.mark.parametrize("raw,value", [("true", True), ("No", False), ("1", True), ("off", False)])
def test_bool_parsing(raw, value):
    assert Parameter("b", bool, False).parse(raw) is value


@pytest.mark.parametrize("raw", ["maybe", "nan", "inf", "abc"])
def test_bad_values_name_the_parameter(raw):
    p = Parameter("x", bool if raw == "maybe" else float, 0.0)
    with pytest.raises(ValueError, match="'x'"):
        p.parse(raw)
