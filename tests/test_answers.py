"""Typed answers: what people type, turned into checked values (None = unknown)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import DIALOG, SHIPPED
from screen_bot.answers import AnswerError, check_value, parse_text
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.schema import Question
from screen_bot.verdict import unusual


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load(DIALOG)


def q(protocol: Protocol, variable: str) -> Question:
    return protocol.questions[variable]


def rejected(question: Question, text: str) -> str:
    with pytest.raises(AnswerError) as info:
        parse_text(question, text)
    message = str(info.value)
    assert message.strip(), "an error message must say something"
    assert "\n" not in message, "an error message is one line"
    return message


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2", 1.2),
        ("1,2", 1.2),
        (" 1.2 ", 1.2),
        ("1.2 mg/dL", 1.2),
        ("1.2mg/dl", 1.2),
        ("1.2 MG/DL", 1.2),
        (".5", 0.5),
        ("30", 30),
        ("0.05", 0.05),
    ],
)
def test_serum_creatinine_mg_dl(protocol: Protocol, text: str, expected: float) -> None:
    assert parse_text(q(protocol, "serum_creatinine_mg_dl"), text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "106 µmol/L",  # U+00B5 MICRO SIGN
        "106 μmol/L",  # U+03BC GREEK SMALL LETTER MU
        "106 umol/L",
        "106 umol/l",
        "106µmol/L",
        "106 µmol/l",
    ],
)
def test_serum_creatinine_umol_l_is_divided_by_88_4(protocol: Protocol, text: str) -> None:
    assert "\u00b5" in "106 µmol/L" and "\u03bc" in "106 μmol/L"  # the two characters differ
    assert parse_text(q(protocol, "serum_creatinine_mg_dl"), text) == pytest.approx(106 / 88.4)


def test_umol_l_conversion_respects_the_range(protocol: Protocol) -> None:
    question = q(protocol, "serum_creatinine_mg_dl")
    assert parse_text(question, "2652 µmol/L") == pytest.approx(30)  # 30 mg/dL
    message = rejected(question, "2700 µmol/L")  # 30.5 mg/dL
    assert "0.05" in message and "30" in message


def test_unknown_unit_is_rejected_and_names_the_units(protocol: Protocol) -> None:
    message = rejected(q(protocol, "serum_creatinine_mg_dl"), "106 mmol/L")
    assert "mg/dL" in message and "µmol/L" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45/40", 45 / 40),
        ("45 / 40", 45 / 40),
        ("120/40", 3.0),
        ("121/40", 121 / 40),
        ("1.5", 1.5),
        ("1,5", 1.5),
        ("3", 3),
        ("3x", 3),
        ("3 × ULN", 3),
        ("0", 0),
    ],
)
@pytest.mark.parametrize(
    "variable", ["ast_x_uln", "alt_x_uln", "bilirubin_x_uln", "creatinine_x_uln"]
)
def test_times_uln(protocol: Protocol, variable: str, text: str, expected: float) -> None:
    assert parse_text(q(protocol, variable), text) == pytest.approx(expected)


@pytest.mark.parametrize(("text", "expected"), [("4.2/1.4", 3), ("2.10/0.70", 3), ("30.6/10.2", 3)])
def test_a_ratio_of_exactly_3_is_3(protocol: Protocol, text: str, expected: float) -> None:
    # 4.2 / 1.4 is 3.0000000000000004 in binary floating point: I8a's "≤ 3" would fail.
    assert parse_text(q(protocol, "ast_x_uln"), text) == expected


@given(
    ratio_hundredths=st.integers(min_value=0, max_value=100_000),
    uln_tenths=st.integers(min_value=1, max_value=10_000),
)
def test_a_ratio_is_the_decimal_quotient(
    protocol: Protocol, ratio_hundredths: int, uln_tenths: int
) -> None:
    """value/ULN typed as decimals reads as the ratio's own decimal, not a float near it."""
    ratio, uln = Decimal(ratio_hundredths) / 100, Decimal(uln_tenths) / 10
    # four decimals (exact: the product has three at most), as 1.008 may be 1008
    value = f"{ratio * uln:.4f}"
    assert parse_text(q(protocol, "alt_x_uln"), f"{value}/{uln}") == float(ratio)


def test_a_converted_unit_is_the_decimal_quotient(protocol: Protocol) -> None:
    question = q(protocol, "serum_creatinine_mg_dl")
    assert parse_text(question, "132.6 µmol/L") == 1.5  # 1.4999999999999998 in floats
    assert parse_text(question, "106 µmol/L") == float(Decimal(106) / Decimal("88.4"))


def test_ratio_only_for_times_uln_questions(protocol: Protocol) -> None:
    for variable in ("serum_creatinine_mg_dl", "qtc_ms", "lvef_percent", "age"):
        rejected(q(protocol, variable), "45/40")


def test_ratio_with_zero_uln(protocol: Protocol) -> None:
    rejected(q(protocol, "ast_x_uln"), "45/0")


# -- unknown -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["?", " ? ", "unknown", "Unknown", "UNKNOWN", "not known yet"])
@pytest.mark.parametrize(
    "variable", ["age", "sex", "arrhythmia", "ast_x_uln", "serum_creatinine_mg_dl", "qtc_ms"]
)
def test_unknown_is_none(protocol: Protocol, variable: str, text: str) -> None:
    assert parse_text(q(protocol, variable), text) is None


def test_check_value_none_is_unknown(protocol: Protocol) -> None:
    for variable in protocol.order:
        assert check_value(q(protocol, variable), None) is None


# -- yes / no, choices --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["yes", "Yes", "YES", "y", "Y", " yes "])
def test_yes(protocol: Protocol, text: str) -> None:
    assert parse_text(q(protocol, "arrhythmia"), text) is True


@pytest.mark.parametrize("text", ["no", "No", "NO", "n", "N", " no "])
def test_no(protocol: Protocol, text: str) -> None:
    assert parse_text(q(protocol, "arrhythmia"), text) is False


@pytest.mark.parametrize("text", ["maybe", "yess", "42", "female"])
def test_yes_no_rejects_other_words(protocol: Protocol, text: str) -> None:
    message = rejected(q(protocol, "arrhythmia"), text)
    assert "yes" in message and "no" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("female", "female"),
        ("Female", "female"),
        ("f", "female"),
        ("F", "female"),
        ("fem", "female"),
        ("male", "male"),
        ("MALE", "male"),
        ("m", "male"),
        ("ma", "male"),
    ],
)
def test_choice_and_prefix(protocol: Protocol, text: str, expected: str) -> None:
    assert parse_text(q(protocol, "sex"), text) == expected


@pytest.mark.parametrize("text", ["x", "women", "femalee", "1"])
def test_choice_rejects_others(protocol: Protocol, text: str) -> None:
    message = rejected(q(protocol, "sex"), text)
    assert "female" in message and "male" in message


def test_empty_answer_is_rejected(protocol: Protocol) -> None:
    for variable in ("age", "sex", "arrhythmia"):
        rejected(q(protocol, variable), "   ")


# -- range and type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "text", "low", "high"),
    [
        ("age", "121", "0", "120"),
        ("age", "-1", "0", "120"),
        ("ecog", "6", "0", "5"),
        ("karnofsky", "101", "0", "100"),
        ("crcl_ml_min", "500.1", "0", "500"),
        ("ast_x_uln", "1001", "0", "1000"),
        ("ast_x_uln", "-0.5", "0", "1000"),
        ("crcl_ml_min", "501", "0", "500"),
        ("weight_kg", "19.9", "20", "300"),
        ("weight_kg", "301", "20", "300"),
        ("serum_creatinine_mg_dl", "0.04", "0.05", "30"),
        ("serum_creatinine_mg_dl", "31", "0.05", "30"),
        ("lvef_percent", "100.5", "0", "100"),
        ("qtc_ms", "199", "200", "800"),
        ("qtc_ms", "801", "200", "800"),
    ],
)
def test_out_of_range_names_the_range(
    protocol: Protocol, variable: str, text: str, low: str, high: str
) -> None:
    message = rejected(q(protocol, variable), text)
    assert f"{low}–{high}" in message, message


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("age", "14"),
        ("age", "65"),
        ("age", "0"),
        ("age", "120"),
        ("weight_kg", "20"),
        ("weight_kg", "300"),
        ("qtc_ms", "200"),
        ("qtc_ms", "800"),
        ("serum_creatinine_mg_dl", "0.05"),
        ("crcl_ml_min", "0"),
        ("crcl_ml_min", "500"),
    ],
)
def test_range_ends_are_accepted(protocol: Protocol, variable: str, text: str) -> None:
    assert parse_text(q(protocol, variable), text) == pytest.approx(float(text))


@pytest.mark.parametrize("text", ["abc", "forty", "yes", "inf", "nan"])
def test_wrong_type_names_the_range(protocol: Protocol, text: str) -> None:
    message = rejected(q(protocol, "qtc_ms"), text)
    assert "200–800" in message


@pytest.mark.parametrize("variable", ["age", "ecog", "karnofsky"])
def test_int_questions_reject_decimals(protocol: Protocol, variable: str) -> None:
    message = rejected(q(protocol, variable), "2.5")
    assert "whole number" in message
    with pytest.raises(AnswerError, match="whole number"):
        check_value(q(protocol, variable), 2.5)


def test_int_question_age_12_5(protocol: Protocol) -> None:
    message = rejected(q(protocol, "age"), "12.5")
    assert "0–120" in message
    assert isinstance(parse_text(q(protocol, "age"), "12"), int)
    assert isinstance(parse_text(q(protocol, "age"), "12.0"), int)


# -- batch values (already typed, from JSON) -----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("age", 40, 40),
        ("age", 40.0, 40),
        ("sex", "male", "male"),
        ("arrhythmia", True, True),
        ("arrhythmia", False, False),
        ("ast_x_uln", 3, 3),
        ("ast_x_uln", 3.01, 3.01),
        # batch JSON takes the forms a typed answer takes (dictionary 1.1, issue #11)
        ("age", "40", 40),
        ("ast_x_uln", "45/40", 45 / 40),
        ("serum_creatinine_mg_dl", "133 µmol/L", 133 / 88.4),
    ],
)
def test_check_value_accepts(
    protocol: Protocol, variable: str, value: object, expected: object
) -> None:
    assert check_value(q(protocol, variable), value) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("age", "forty"),
        ("age", "4" * 400),
        ("age", 10**400),
        ("age", True),
        ("age", 121),
        ("age", 12.5),
        ("arrhythmia", 1),
        ("arrhythmia", "yes"),
        ("sex", "Female"),
        ("sex", "f"),
        ("qtc_ms", 199),
        ("qtc_ms", float("nan")),
        ("qtc_ms", float("inf")),
    ],
)
def test_check_value_rejects(protocol: Protocol, variable: str, value: object) -> None:
    with pytest.raises(AnswerError) as info:
        check_value(q(protocol, variable), value)
    assert "\n" not in str(info.value)


# -- answers as people type them (issue #13) --------------------------------------------------

TYPED_FORMS = [
    ("arrhythmia", "yes.", True),
    ("arrhythmia", "Yep", True),
    ("arrhythmia", "да", True),
    ("arrhythmia", "Нет", False),
    ("arrhythmia", "nope!", False),
    ("arrhythmia", "unk", None),
    ("arrhythmia", "n/a", None),
    ("ast_x_uln", "-", None),
    ("age", "40y", 40),
    ("age", "40 yrs", 40),
    ("qtc_ms", "420 msec", 420),
    ("lvef_percent", "55 percent", 55),
    ("sex", "Man", "male"),
    ("sex", "woman", "female"),
    ("sex", "f", "female"),
]


@pytest.mark.parametrize(("variable", "text", "expected"), TYPED_FORMS)
def test_answers_as_people_type_them(
    protocol: Protocol, variable: str, text: str, expected: object
) -> None:
    assert parse_text(q(protocol, variable), text) == expected


def test_the_yes_no_refusal_lists_what_is_accepted(protocol: Protocol) -> None:
    with pytest.raises(AnswerError) as info:
        parse_text(q(protocol, "arrhythmia"), "maybe")
    assert "y / n" in str(info.value) and "да / нет" in str(info.value)


def test_a_bare_number_out_of_range_hints_at_the_other_unit(protocol: Protocol) -> None:
    with pytest.raises(AnswerError) as info:
        parse_text(q(protocol, "serum_creatinine_mg_dl"), "106")
    assert "Did you mean 106 µmol/L?" in str(info.value)
    with pytest.raises(AnswerError) as info:
        parse_text(q(protocol, "serum_creatinine_mg_dl"), "99999")  # fits no unit
    assert "Did you mean" not in str(info.value)


def test_a_value_given_with_its_unit_is_not_hinted_at_another_unit(protocol: Protocol) -> None:
    # "2700 µmol/L" was refused with "30.543 is out of range (0.05–30 mg/dL). Did you mean
    # 30.543 µmol/L?": typing that records 0.35 mg/dL. The hint is for a bare number only.
    question = q(protocol, "serum_creatinine_mg_dl")
    for text in ("2700 µmol/L", "31 mg/dL", "31 mg/dl"):
        message = rejected(question, text)
        assert "out of range" in message and "Did you mean" not in message, message


# -- thousands separators, ranges, exponents, signs (audit 11) -------------------------------


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("alt_x_uln", "1,200/40", "1,200 could be 1.2 or 1200: type 1.2/40 or 1200/40."),
        ("alt_x_uln", "1.200/40", "1.200 could be 1.2 or 1200: type 1.2/40 or 1200/40."),
        ("alt_x_uln", "1,250/40", "1,250 could be 1.25 or 1250: type 1.25/40 or 1250/40."),
        ("alt_x_uln", "1,200", "1,200 could be 1.2 or 1200: type 1.2 if that is what you mean."),
        ("alt_x_uln", "45/1,000", "1,000 could be 1 or 1000: type 45/1 or 45/1000."),
        (
            "lvef_percent",
            "12,500",
            "12,500 could be 12.5 or 12500: type 12.5 if that is what you mean.",
        ),
        ("alt_x_uln", "1.000", "1.000 could be 1 or 1000: type 1 or 1000."),
        ("alt_x_uln", "45/1.000", "1.000 could be 1 or 1000: type 45/1 or 45/1000."),
        (
            "serum_creatinine_mg_dl",
            "1,100 µmol/L",
            "1,100 could be 1.1 or 1100: type 1100 µmol/L if that is what you mean.",
        ),
        (
            "alt_x_uln",
            "1,200,000/40",
            "Please type it without the thousands separators: 1200000/40",
        ),
        ("alt_x_uln", "1.200.000", "Please type it without the thousands separators: 1200000"),
    ],
)
def test_a_mark_that_may_be_a_thousands_separator_is_asked_about(
    protocol: Protocol, variable: str, text: str, message: str
) -> None:
    # "1,200/40" (ALT 1,200 U/L, ULN 40: 30 × ULN) was read as 0.03 × ULN and the patient
    # screened eligible; "1,200" alone as 1.2, past the > 20 × ULN confirmation.
    assert rejected(q(protocol, variable), text) == message
    with pytest.raises(AnswerError, match="^" + re.escape(message) + "$"):
        check_value(q(protocol, variable), text)  # a batch text: the same reader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2", 1.2),
        ("1.2", 1.2),
        ("0,030", 0.03),
        ("0.500", 0.5),
        ("00,500", 0.5),
        ("1.25", 1.25),
        ("1,25", 1.25),
        ("45,0", 45),
        ("45,0000", 45),
        ("999.99", 999.99),
        ("1200/40", 30),
        ("1,5/40,0", 1.5 / 40),
        ("+1.5", 1.5),
        ("1.", 1),
        ("1.2.", 1.2),  # a full stop after the number
    ],
)
def test_a_decimal_mark_that_cannot_be_a_thousands_separator_is_a_decimal(
    protocol: Protocol, text: str, expected: float
) -> None:
    assert parse_text(q(protocol, "alt_x_uln"), text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("variable", "text", "expected"),
    [
        ("alt_x_uln", "1.200", 1.2),  # 1200 × ULN is out of range (0–1000)
        ("alt_x_uln", "3.001", 3.001),
        ("crcl_ml_min", "50.001", 50.001),
        ("crcl_ml_min", "49.999", 49.999),
        ("qtc_ms", "450.001", 450.001),
        ("lvef_percent", "100.000 %", 100),
        ("serum_creatinine_mg_dl", "1.250", 1.25),
    ],
)
def test_a_dot_whose_thousands_reading_is_no_answer_is_a_decimal_mark(
    protocol: Protocol, variable: str, text: str, expected: float
) -> None:
    # a value just past a limit is typed so (50.001): refused, batch rows lost a verdict
    assert parse_text(q(protocol, variable), text) == pytest.approx(expected)
    assert check_value(q(protocol, variable), text) == pytest.approx(expected)


def test_a_mark_after_four_digits_is_a_decimal_mark(protocol: Protocol) -> None:
    # no thousands separator follows four digits: 1234,567 is 1234.567 (out of range here)
    assert rejected(q(protocol, "qtc_ms"), "1234,567").startswith("1234.57 is out of range")


@given(
    number=st.integers(min_value=1000, max_value=10**12),
    mark=st.sampled_from([",", "."]),
    after=st.sampled_from(["", "/40", " × ULN", "/40 x ULN"]),
)
def test_a_number_with_thousands_separators_is_never_read_as_a_fraction(
    protocol: Protocol, number: int, mark: str, after: str
) -> None:
    """Any n ≥ 1000 written with thousands separators is never read as n/1000 (or
    n/1000000) where n is an answer: it is refused, naming n as the thing to type. Where n is
    no answer, a dot is a decimal mark and a comma is still refused."""
    question = q(protocol, "alt_x_uln")
    grouped = f"{number:,}".replace(",", mark)
    thousands = f"{number}{after}"
    try:
        parse_text(question, thousands)
    except AnswerError:
        if number < 10**6:  # 1200 × ULN is out of range
            if mark == ".":
                decimal = f"{Decimal(number) / 1000}{after}"
                assert parse_text(question, grouped + after) == parse_text(question, decimal)
            else:
                rejected(question, grouped + after)
            return
    message = rejected(question, grouped + after)
    assert f" {thousands}" in message, message


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("lvef_percent", "60-65"),
        ("lvef_percent", "60 - 65 %"),
        ("lvef_percent", "60–65"),
        ("lvef_percent", "60−65"),  # U+2212 MINUS SIGN
        ("age", "45-50"),
        ("lvef_percent", "60 ± 5"),
        ("lvef_percent", "60+/-5"),
        ("lvef_percent", "60 to 65"),
        ("alt_x_uln", "45-50/40"),
    ],
)
def test_a_range_is_asked_as_one_number(protocol: Protocol, variable: str, text: str) -> None:
    # was "Unit not recognised; use %.", and "60-65 %" was refused in turn
    message = rejected(q(protocol, variable), text)
    assert message.startswith("Please type one number, not a range ("), message


@pytest.mark.parametrize("text", ["1e2", "1E-3", "1.5e3 × ULN"])
def test_an_exponent_is_asked_in_plain_digits(protocol: Protocol, text: str) -> None:
    message = rejected(q(protocol, "alt_x_uln"), text)
    assert message == f"Please type the number in plain digits, not as {text}."


@pytest.mark.parametrize(
    ("variable", "text"), [("alt_x_uln", "-0"), ("age", "-0"), ("qtc_ms", "-0.0")]
)
def test_a_minus_sign_is_refused_where_the_range_starts_at_zero_or_above(
    protocol: Protocol, variable: str, text: str
) -> None:
    # "-0" was accepted and shown as "-0 × ULN"; the dictionary says number (decimal, ≥ 0)
    message = rejected(q(protocol, variable), text)
    assert message.startswith("Please type the number without a minus sign ("), message
    with pytest.raises(AnswerError, match="minus sign"):
        check_value(q(protocol, variable), text)


def test_a_minus_sign_is_read_where_the_range_goes_below_zero(protocol: Protocol) -> None:
    question = q(protocol, "qtc_ms").model_copy(update={"min": -50})
    assert parse_text(question, "-0") == 0
    assert rejected(question, "-51").startswith("-51 is out of range (-50–800 ms)")


@pytest.mark.parametrize(
    ("variable", "text", "shown"),
    [
        ("qtc_ms", "800.0001", "800.0001"),
        ("qtc_ms", "199.99999", "199.99999"),
        ("qtc_ms", "800.000000001", "800.000000001"),
        ("serum_creatinine_mg_dl", "30.0000001", "30.0000001"),
        ("qtc_ms", "801", "801"),
    ],
)
def test_an_out_of_range_value_is_shown_outside_the_range(
    protocol: Protocol, variable: str, text: str, shown: str
) -> None:
    # "800.0001" was shown as "800 is out of range (200–800 ms)"
    assert rejected(q(protocol, variable), text).startswith(f"{shown} is out of range (")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("１,２００/４０", "1,200"),
        ("١,٢٠٠/٤٠", "1,200"),
        ("１.２００/４０", "1.200"),
        ("１.０００", "1.000"),
    ],
)
def test_a_thousands_separator_between_other_digits_is_asked_about_too(
    protocol: Protocol, text: str, shown: str
) -> None:
    # full-width or Arabic-Indic "1,200/40" was read as 0.03 × ULN: the rule saw ASCII only
    assert rejected(q(protocol, "alt_x_uln"), text).startswith(f"{shown} could be ")
    assert parse_text(q(protocol, "alt_x_uln"), "４５/４０") == 1.125


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        (
            "alt_x_uln",
            "3,001",
            "3,001 could be 3.001 or 3001: type 3.001 if that is what you mean.",
        ),
        (
            "crcl_ml_min",
            "49,999",
            "49,999 could be 49.999 or 49999: type 49.999 if that is what you mean.",
        ),
        (
            "alt_x_uln",
            "3000/1.200",
            "1.200 could be 1.2 or 1200: type 3000/1200 if that is what you mean.",
        ),
    ],
)
def test_a_refusal_offers_only_the_readings_that_are_answers(
    protocol: Protocol, variable: str, text: str, message: str
) -> None:
    # "3,001" was told "type 3.001 or 3001", and 3001 × ULN is out of range
    assert rejected(q(protocol, variable), text) == message


def test_a_dot_in_both_parts_is_asked_about_where_a_thousands_reading_fits(
    protocol: Protocol,
) -> None:
    # "1.200/40.000" was read as 0.03 × ULN, though 1200/40 (30 × ULN) is an answer too
    message = rejected(q(protocol, "alt_x_uln"), "1.200/40.000")
    assert message.startswith("1.200/40.000 could be read more than one way: type ")
    assert "1200/40 " in message and "1.2/40 " in message


def _offered(message: str) -> list[str]:
    """The forms a thousands-separator refusal tells the user to type."""
    match = re.search(r": type (.+?)( if that is what you mean)?\.$", message)
    assert match is not None, message
    return match[1].split(" or ")


@given(
    variable=st.sampled_from(["alt_x_uln", "creatinine_x_uln", "crcl_ml_min", "qtc_ms"]),
    whole=st.integers(min_value=1, max_value=999),
    decimals=st.integers(min_value=0, max_value=999),
    mark=st.sampled_from([",", "."]),
    uln=st.sampled_from(["", "/40", "/1.3", "/1.200", "/1,5", "/40.000"]),
)
def test_no_form_a_refusal_offers_is_refused_in_turn(
    protocol: Protocol, variable: str, whole: int, decimals: int, mark: str, uln: str
) -> None:
    """A refusal offering ways to type a number never offers one that is refused in turn:
    '1.105/1.3' was told 'type 1.105/1.3 or 1105/1.3', the very text typed, forever."""
    question = q(protocol, variable)
    text = f"{whole}{mark}{decimals:03d}{uln if question.uln_ratio else ''}"
    try:
        parse_text(question, text)
    except AnswerError as refused:
        if "could be" not in str(refused):
            return
        for form in _offered(str(refused)):
            parse_text(question, form)  # raises if the form is refused


@pytest.mark.parametrize(
    ("variable", "text", "expected"), [("alt_x_uln", "0/1.200", 0), ("alt_x_uln", "0/40.000", 0)]
)
def test_a_number_every_reading_of_which_is_the_same_answer_is_read(
    protocol: Protocol, variable: str, text: str, expected: float
) -> None:
    assert parse_text(q(protocol, variable), text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1.105/1.3" + " " * 26 + "x ULN",
        "1.105 / 1.300000000000000000000000000000",
        "1.1050/1.300",
        "49,999",
    ],
)
def test_a_form_offered_for_a_long_or_spaced_text_is_read(protocol: Protocol, text: str) -> None:
    # a 40-character text was offered "1.1050/1.3 … x ULN", 41 characters: refused as no number
    question = q(protocol, "crcl_ml_min" if text == "49,999" else "alt_x_uln")
    for form in _offered(rejected(question, text)):
        assert len(form) <= len(text)
        parse_text(question, form)


# -- plausibility warnings (audit 22, finding 4) ----------------------------------------------

CTL019 = load(SHIPPED / "ctl019-rr-ball.yaml")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("spo2_room_air_percent", 79.99999, "79.99999 % is unusual for spo2_room_air_percent"),
        ("total_bilirubin_mg_dl", 10.000001, "10.000001 mg/dL is unusual for total_bilirubin"),
        ("ejection_fraction_percent", 14.999999, "14.999999 % is unusual for ejection_fraction"),
        ("shortening_fraction_percent", 50.00001, "50.00001 % is unusual for shortening_fraction"),
        # shown as they were: the value was already off its limit
        ("total_bilirubin_mg_dl", 200 / 17.1, "11.6959 mg/dL is unusual for total_bilirubin"),
        ("spo2_room_air_percent", 79.9, "79.9 % is unusual for spo2_room_air_percent"),
        ("alt_x_uln", 25, "25 × ULN is unusual for alt_x_uln"),
        ("alt_x_uln", 123456789.5, "1.23457e+08 × ULN is unusual for alt_x_uln"),
    ],
)
def test_a_warning_shows_its_value_off_its_limit(variable: str, value: float, message: str) -> None:
    # "spo2 79.99999" was warned "80 % is unusual for spo2_room_air_percent (below 80 %)"
    assert unusual(CTL019.questions[variable], value).startswith(message)


_LIMITS = [
    (question, limit)
    for question in CTL019.questions.values()
    for limit in (question.confirm_below, question.confirm_above)
    if limit is not None
]


@given(st.sampled_from(_LIMITS), st.floats(-1, 1), st.integers(-16, 0))
def test_a_warned_value_never_shows_on_or_inside_its_limits(
    limit_of: tuple[Question, float], offset: float, exponent: int
) -> None:
    question, limit = limit_of
    message = unusual(question, limit + offset * 10.0**exponent)
    if message:  # the value shown is unusual too
        shown = float(message.split(" ", 1)[0])
        low, high = question.confirm_below, question.confirm_above
        assert (low is not None and shown < low) or (high is not None and shown > high), message


# -- other scripts' decimal and thousands marks (audit 22, finding 5) ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("١٫٢", 1.2), ("٠٫٩ mg/dL", 0.9), ("١٠٦٫٠ µmol/L", float(Decimal("106.0") / Decimal("88.4")))],
)
def test_the_arabic_decimal_separator_is_a_decimal_mark(
    protocol: Protocol, text: str, expected: float
) -> None:
    # "١٫٢" was refused with "Unit not recognised; use mg/dL or µmol/L": its digits were
    # read, their own decimal mark (U+066B) was not
    assert parse_text(q(protocol, "serum_creatinine_mg_dl"), text) == expected


def test_the_arabic_thousands_separator_follows_the_thousands_rule(protocol: Protocol) -> None:
    # U+066C is read as a comma: where it may be a thousands separator it is asked about
    message = rejected(q(protocol, "alt_x_uln"), "١٬٢٠٠/٤٠")
    assert message.startswith("1,200 could be 1.2 or 1200"), message
    assert rejected(q(protocol, "crcl_ml_min"), "١٬٢٠٠٬٠٠٠").endswith("separators: 1200000")


# -- an upper limit of normal below 0 (audit 22, finding 5) ---------------------------------


@pytest.mark.parametrize("text", ["45/-40", "45 / -40", "45/-0,5", "1.5/-1 x ULN"])
def test_a_negative_upper_limit_of_normal_is_told_to_be_positive(
    protocol: Protocol, text: str
) -> None:
    # "45/-40" was refused with "Unit not recognised; use × ULN"
    message = rejected(q(protocol, "ast_x_uln"), text)
    assert message == "The upper limit of normal must be a positive number.", message


def test_a_plus_sign_on_the_upper_limit_of_normal_is_read(protocol: Protocol) -> None:
    assert parse_text(q(protocol, "ast_x_uln"), "45/+40") == 1.125


# -- digits beyond a double's (audit 23, finding 3) ------------------------------------------

_NUMBER_QUESTIONS = [
    question
    for protocol in (load(DIALOG), CTL019)
    for question in protocol.questions.values()
    if question.type in ("int", "number")
]
# each the other side of a limit or threshold once rounded to a double (17+ digits)
TOO_PRECISE = [
    ("lvef_percent", "49.999999999999999"),  # 50: I8e's LVEF ≥ 50 was met
    ("age", "13.9999999999999999"),  # 14: I1's age ≥ 14 was met
    ("ecog", "2.9999999999999999"),  # 3: taken as a whole number
    ("serum_creatinine_mg_dl", "0.0499999999999999999"),  # 0.05: its minimum
]


@pytest.mark.parametrize(("variable", "text"), TOO_PRECISE)
@pytest.mark.parametrize("reader", [parse_text, check_value], ids=["typed", "batch-text"])
def test_a_number_with_more_digits_than_a_double_holds_is_refused(
    protocol: Protocol, variable: str, text: str, reader: Callable[[Question, str], object]
) -> None:
    with pytest.raises(AnswerError) as refused:
        reader(q(protocol, variable), text)
    assert str(refused.value).startswith(f"Too many digits in {text}: please type 15 ")


def test_fifteen_significant_digits_are_read_and_zeros_around_them_do_not_count(
    protocol: Protocol,
) -> None:
    assert parse_text(q(protocol, "lvef_percent"), "49.9999999999999") == 49.9999999999999
    assert parse_text(q(protocol, "age"), "14.0000000000000000000") == 14
    creatinine = q(protocol, "serum_creatinine_mg_dl")
    assert parse_text(creatinine, "0.0500000000000000000000") == 0.05


@pytest.mark.parametrize("text", ["49.99999999999999", "0.30000000000000004", "3.3000000000000003"])
def test_more_digits_are_read_where_they_are_a_doubles_shortest_decimal(
    protocol: Protocol, text: str
) -> None:
    # as Python or a spreadsheet writes a double: that double, on its side of every limit
    assert parse_text(q(protocol, "lvef_percent"), text) == float(text)
    assert rejected(q(protocol, "ecog"), "2.9999999999999996").startswith("Please type a whole")


@pytest.mark.parametrize(
    ("variable", "double"),
    [
        ("lvef_percent", 55.3),
        ("lvef_percent", 59.99999999999999),
        ("serum_creatinine_mg_dl", 0.1),
        ("serum_creatinine_mg_dl", 0.7),
    ],
)
@pytest.mark.parametrize("reader", [parse_text, check_value], ids=["typed", "batch-text"])
def test_a_doubles_seventeen_significant_digits_are_read_as_that_double(
    protocol: Protocol, variable: str, double: float, reader: Callable[[Question, str], object]
) -> None:
    # printf("%.17g"), PostgreSQL's extra_float_digits=3, MATLAB's num2str(x, 17):
    # 55.299999999999997 was refused as too many digits, though it reads back as 55.3
    text = format(double, ".17g")
    assert reader(q(protocol, variable), text) == double


@st.composite
def _typed_numbers(draw: st.DrawFn) -> tuple[Question, str]:
    """A question and a plain decimal for it: a limit or a whole number moved by 10**-k, a
    double as Python writes it or with 17 significant digits (%.17g), or any digits, up to
    23 decimals."""
    question = draw(st.sampled_from(_NUMBER_QUESTIONS))
    limits = [Decimal(repr(x)) for x in (question.min, question.max) if x is not None]
    base = draw(st.sampled_from([*limits, Decimal(draw(st.integers(0, 1000)))]))
    if draw(st.booleans()):
        near = draw(st.floats(float(base) - 1, float(base) + 1).filter(lambda x: x >= 0))
        written = draw(st.sampled_from([repr(near), format(near, ".17g")]))
        return question, format(Decimal(written), "f")
    if draw(st.booleans()):
        step = Decimal(10) ** -draw(st.integers(1, 23)) * draw(st.sampled_from([-1, 1]))
        return question, format(abs(base + step), "f")
    fraction = draw(st.text("0123456789", max_size=23))
    return question, f"{int(base)}.{fraction}" if fraction else str(int(base))


@given(_typed_numbers(), st.sampled_from([parse_text, check_value]))
def test_a_typed_number_is_read_as_typed_or_refused(
    typed: tuple[Question, str], reader: Callable[[Question, str], object]
) -> None:
    """Never another value, as 49.999999999999999 was read as 50: an answer accepted of more
    than 15 significant digits is the double whose shortest decimal or 17 significant digits
    is the number typed, so no limit (15 digits at most) lies between them, other than one
    whose own double that is; it is inside the limits; 15 significant digits or fewer are
    never refused for their digits, a double's 17 digits never."""
    question, text = typed
    exact = Decimal(text)
    try:
        value = reader(question, text)
    except AnswerError as refused:
        if len(re.sub(r"\D", "", text).strip("0")) <= 15 or exact == Decimal(
            format(float(exact), ".17g")
        ):
            assert "Too many digits" not in str(refused), text
        return
    assert isinstance(value, int | float), (text, value)
    if len(re.sub(r"\D", "", text).strip("0")) > 15:
        assert exact in (Decimal(repr(value)), Decimal(format(value, ".17g"))), (text, value)
    for limit in (question.min, question.max):
        if limit is not None and value != limit:  # each on the same side
            assert (exact < Decimal(repr(limit))) == (value < limit), (text, limit)
    if question.min is not None and question.max is not None:
        assert question.min <= value <= question.max, text
    if question.type == "int":
        assert value == int(value), text
