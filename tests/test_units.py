"""Unit spellings people write compare equal (rules/units.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screen_bot.rules.units import same_unit, unit_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("mL/min/1.73 m²", "ml/min/1.73m2"),
        ("mL/min/1.73 m²", "ML/MIN/1.73 M2"),
        ("mL/min/1.73 m²", "mL/min/1.73 m^2"),
        ("µmol/L", "umol/l"),  # µ: the micro sign U+00B5
        ("μmol/L", "umol/l"),  # μ: Greek small mu U+03BC
        ("µmol/L", "μmol/L"),
        ("micromol/L", "µmol/L"),
        ("micro mol / L", "umol/L"),
        ("× ULN", "xULN"),
        ("×ULN", "x uln"),
        ("kg/m²", "kg/m2"),
        ("m²", "M2"),
        ("mg/dL", "mg/dl"),
        ("mg/dL", " mg / dL "),
        ("mg/dL", "mg/\u00a0dL"),  # a no-break space is a space
        ("×10⁹/L", "x10^9/l"),
        ("mL/min", "ml/min"),
    ],
)
def test_spellings_of_one_unit_are_the_same(a: str, b: str) -> None:
    assert unit_key(a) == unit_key(b)
    assert same_unit(a, b)
    assert same_unit(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("mg/dL", "mmol/L"),
        ("mg/dL", "mg/L"),
        ("µmol/L", "mmol/L"),
        ("µmol/L", "mol/L"),
        ("mL/min", "mL/min/1.73 m²"),
        ("m²", "m"),
        ("m²", "m3"),
        ("kg", "g"),
        ("× ULN", "ULN"),
        ("cm", "mm"),
    ],
)
def test_different_units_differ(a: str, b: str) -> None:
    assert unit_key(a) != unit_key(b)
    assert not same_unit(a, b)


def test_canonical_keys() -> None:
    assert unit_key("mL/min/1.73 m²") == "ml/min/1.73m2"
    assert unit_key("µmol/L") == "umol/l"
    assert unit_key("× ULN") == "xuln"


def test_no_unit_equals_only_no_unit() -> None:
    assert same_unit(None, None)
    assert same_unit(None, "")
    assert same_unit("", None)
    assert same_unit("", "  ")
    assert not same_unit(None, "mg/dL")
    assert not same_unit("mg/dL", None)
    assert not same_unit("", "x")


@given(st.text())
def test_unit_key_is_idempotent(unit: str) -> None:
    assert unit_key(unit_key(unit)) == unit_key(unit)


ascii_units = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/.%")


@given(ascii_units, st.lists(st.integers(min_value=0, max_value=50), max_size=5))
def test_case_and_spaces_never_matter(unit: str, cuts: list[int]) -> None:
    spaced = unit
    for cut in sorted(cuts, reverse=True):
        spaced = spaced[:cut] + " " + spaced[cut:]
    assert same_unit(unit, spaced.upper())
    assert same_unit(unit.lower(), f"  {spaced}\t")
