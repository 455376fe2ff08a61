"""Format 2 question types, end to end through a small dialog file: dates, dates or none,
planned dates, multi-select, ordered choices and text (issue #11, "Format" 1, 3, 4, 5)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from format2 import (
    SCREENED_ON,
    a_date,
    build,
    choice,
    date_or_none,
    dialog,
    exclusion,
    inclusion,
    line_of,
    problems,
    text,
    yes_no,
)
from screen_bot import verdict
from screen_bot.answers import AnswerError, check_value, parse_text
from screen_bot.engine import Engine, loggable_answers, typed_values
from screen_bot.protocol import Protocol

# -- dates -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("dated"),
        dialog(
            [
                a_date("transplant_date"),
                date_or_none("last_mi_date"),
                a_date("planned_infusion_date", future=True),
            ],
            [
                inclusion("I1", "screening_date >= transplant_date + months(2)"),
                exclusion("E1", "screening_date < last_mi_date + months(12)"),
                inclusion("I2", "planned_infusion_date >= transplant_date + months(6)"),
            ],
            anchors=["planned_infusion_date"],
        ),
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2025-08-14", date(2025, 8, 14)),
        ("14.08.2025", date(2025, 8, 14)),
        ("14/08/2025", date(2025, 8, 14)),  # day first
        ("14 Aug 2025", date(2025, 8, 14)),
        ("today", SCREENED_ON),
        ("3 months ago", date(2025, 10, 15)),
        ("10 weeks ago", date(2025, 11, 6)),  # 70 days before 15 Jan 2026
        ("12 days ago", date(2026, 1, 3)),
    ],
)
def test_a_date_is_typed_in_every_documented_form(
    dated: Protocol, typed: str, expected: date
) -> None:
    for variable in ("transplant_date", "last_mi_date"):
        assert parse_text(dated.questions[variable], typed, SCREENED_ON) == expected


def test_day_first_is_not_month_first(dated: Protocol) -> None:
    question = dated.questions["transplant_date"]
    assert parse_text(question, "03/04/2025", SCREENED_ON) == date(2025, 4, 3)
    with pytest.raises(AnswerError, match="day first"):
        parse_text(question, "08/14/2025", SCREENED_ON)


@pytest.mark.parametrize("typed", ["2026-01-16", "16.01.2026", "in 2 weeks", "tomorrow"])
def test_a_date_after_the_screening_date_is_refused_with_the_reason(
    dated: Protocol, typed: str
) -> None:
    for variable in ("transplant_date", "last_mi_date"):
        with pytest.raises(AnswerError, match=r"after the screening date 2026-01-15"):
            parse_text(dated.questions[variable], typed, SCREENED_ON)
    with pytest.raises(AnswerError, match="after the screening date"):
        check_value(dated.questions["transplant_date"], "2026-01-16", SCREENED_ON)


@pytest.mark.parametrize("typed", ["none", "never", "None", "NEVER"])
def test_date_or_none_takes_none_and_never(dated: Protocol, typed: str) -> None:
    assert parse_text(dated.questions["last_mi_date"], typed, SCREENED_ON) == "none"
    with pytest.raises(AnswerError, match="needs a date"):
        parse_text(dated.questions["transplant_date"], typed, SCREENED_ON)


def test_date_or_none_in_batch(dated: Protocol) -> None:
    question = dated.questions["last_mi_date"]
    assert check_value(question, "none", SCREENED_ON) == "none"
    assert check_value(question, "2025-03-01", SCREENED_ON) == date(2025, 3, 1)
    with pytest.raises(AnswerError, match="YYYY-MM-DD"):
        check_value(question, "01.03.2025", SCREENED_ON)
    with pytest.raises(AnswerError, match="none is not allowed"):
        check_value(dated.questions["transplant_date"], "none", SCREENED_ON)


def test_a_planned_date_lies_on_or_after_the_screening_date(dated: Protocol) -> None:
    question = dated.questions["planned_infusion_date"]
    assert parse_text(question, "14.08.2026", SCREENED_ON) == date(2026, 8, 14)
    assert parse_text(question, "today", SCREENED_ON) == SCREENED_ON
    assert parse_text(question, "in 3 weeks", SCREENED_ON) == date(2026, 2, 5)
    for past in ("14.01.2026", "3 months ago"):
        with pytest.raises(AnswerError, match="planned date cannot be in the past"):
            parse_text(question, past, SCREENED_ON)
    with pytest.raises(AnswerError, match="planned date cannot be in the past"):
        check_value(question, "2026-01-14", SCREENED_ON)


def test_dates_drive_the_verdict(dated: Protocol) -> None:
    answers = {
        "transplant_date": date(2025, 10, 1),
        "last_mi_date": "none",
        "planned_infusion_date": date(2026, 4, 1),
    }
    assert verdict.build(dated, answers, screened_on=SCREENED_ON).verdict == "eligible"
    recent = {**answers, "last_mi_date": date(2025, 3, 1)}
    found = verdict.build(dated, recent, screened_on=SCREENED_ON)
    assert [r.criterion for r in found.reasons] == ["E1"]


def test_the_dialog_stores_dates_as_text_and_reads_them_back_as_dates(dated: Protocol) -> None:
    engine = Engine(dated)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer_text(session, "3 months ago") == ""
    assert engine.answer_text(session, "never") == ""
    assert session.answers["transplant_date"].value == "2025-10-15"
    assert typed_values(dated, session) == {
        "transplant_date": date(2025, 10, 15),
        "last_mi_date": "none",
    }


# -- multi-select ------------------------------------------------------------------------------

THERAPIES = ["gene_therapy", "blinatumomab", "car_t", "other"]


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("multi"),
        dialog(
            [choice("prior_therapies", THERAPIES, multiple=True)],
            [
                exclusion("E1", "'blinatumomab' in prior_therapies"),
                inclusion("I1", "'car_t' not in prior_therapies"),
                exclusion("E2", "any_of(prior_therapies, 'gene_therapy', 'other')"),
                inclusion("I2", "none_of(prior_therapies, 'gene_therapy', 'car_t')"),
            ],
        ),
    )


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("blinatumomab, car_t", ("blinatumomab", "car_t")),
        ("car_t,blinatumomab", ("blinatumomab", "car_t")),  # kept in the question's order
        ("Gene_Therapy; other", ("gene_therapy", "other")),
        ("blina", ("blinatumomab",)),  # a unique prefix, as for a single choice
        ("none", ()),
        ("?", None),
    ],
)
def test_multi_select_is_typed_comma_separated(
    multi: Protocol, typed: str, expected: tuple[str, ...] | None
) -> None:
    assert parse_text(multi.questions["prior_therapies"], typed) == expected


def test_a_word_that_is_no_choice_is_named(multi: Protocol) -> None:
    with pytest.raises(AnswerError, match="'chemo' is not one of") as info:
        parse_text(multi.questions["prior_therapies"], "car_t, chemo")
    assert "commas" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["blinatumomab"], ("blinatumomab",)),
        (["other", "gene_therapy"], ("gene_therapy", "other")),
        ([], ()),
        ("car_t, other", ("car_t", "other")),
    ],
)
def test_multi_select_in_batch_is_a_json_list(
    multi: Protocol, value: Any, expected: tuple[str, ...]
) -> None:
    assert check_value(multi.questions["prior_therapies"], value) == expected


@pytest.mark.parametrize("value", [["chemo"], [1], "chemo", 3, {"car_t": True}])
def test_multi_select_in_batch_refuses_what_is_no_choice(multi: Protocol, value: Any) -> None:
    with pytest.raises(AnswerError):
        check_value(multi.questions["prior_therapies"], value)


@pytest.mark.parametrize(
    ("prior", "failed"),
    [
        ((), []),
        (("blinatumomab",), ["E1"]),
        (("car_t",), ["I1", "I2"]),
        (("other",), ["E2"]),
        (("gene_therapy", "car_t"), ["I1", "E2", "I2"]),
    ],
)
def test_in_not_in_any_of_none_of(
    multi: Protocol, prior: tuple[str, ...], failed: list[str]
) -> None:
    found = verdict.build(multi, {"prior_therapies": prior}, screened_on=SCREENED_ON)
    assert [r.criterion for r in found.reasons] == failed
    assert found.verdict == ("not_eligible" if failed else "eligible")


def test_an_unknown_multi_select_leaves_every_rule_open_as_one_item(multi: Protocol) -> None:
    found = verdict.build(multi, {"prior_therapies": None}, screened_on=SCREENED_ON)
    assert found.verdict == "unresolved"
    (item,) = found.open_items
    assert item.variable == "prior_therapies"
    assert item.criteria == ["E1", "I1", "E2", "I2"]


def test_the_dialog_stores_a_multi_select_as_a_list(multi: Protocol) -> None:
    engine = Engine(multi)
    session = engine.start(screened_on=SCREENED_ON)
    engine.answer_text(session, "car_t, gene_therapy")
    assert session.answers["prior_therapies"].value == ["gene_therapy", "car_t"]
    assert typed_values(multi, session) == {"prior_therapies": ("gene_therapy", "car_t")}
    assert engine.verdict(session).verdict == "not_eligible"


def test_a_multi_select_cannot_be_compared(tmp_path: Path) -> None:
    data = dialog(
        [choice("prior_therapies", THERAPIES, multiple=True)],
        [exclusion("E1", "prior_therapies == 'car_t'")],
    )
    (problem,) = problems(tmp_path, data)
    assert "multi-select" in problem.message
    assert "'choice' in prior_therapies" in problem.fix


def test_in_with_a_choice_that_is_not_listed_is_refused(tmp_path: Path) -> None:
    data = dialog(
        [choice("prior_therapies", THERAPIES, multiple=True)],
        [exclusion("E1", "any_of(prior_therapies, 'car_t', 'cart')")],
    )
    (problem,) = problems(tmp_path, data)
    assert "'cart' is not a choice of 'prior_therapies'" in problem.message


@pytest.mark.parametrize(
    ("rule", "fix"),
    [
        ("sex == 'female' == 'male'", "sex == 'female' and sex == 'male'"),
        ("sex == 'female' != 'male'", "sex == 'female' and sex != 'male'"),
        ("'female' == 'male' == sex", "'female' == sex and 'male' == sex"),
    ],
)
def test_a_chain_of_choice_comparisons_is_refused_with_its_comparisons(
    tmp_path: Path, rule: str, fix: str
) -> None:
    # 'male' was "not a choice of ''female' == 'male''", the fix "use one of []"
    data = dialog([choice("sex", ["female", "male"])], [inclusion("I1", rule)])
    (problem,) = problems(tmp_path, data)
    assert problem.message == f"{rule!r} chains comparisons of a choice"
    assert problem.fix == f"compare one value at a time: {fix}"


def test_two_quoted_values_compared_are_refused_as_no_answer(tmp_path: Path) -> None:
    data = dialog([choice("sex", ["female", "male"])], [inclusion("I1", "'female' == 'male'")])
    (problem,) = problems(tmp_path, data)
    assert (
        problem.message == "\"'female' == 'male'\" compares two fixed values, no question's answer"
    )
    assert problem.fix == "compare a choice question with a value, e.g. sex == 'female'"


# -- ordered choices ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("ordered"),
        dialog(
            [
                choice("cns_status", ["CNS1", "CNS2", "CNS3"], ordered=True),
                choice("acute_gvhd_grade", ["0", "1", "2", "3", "4"], ordered=True),
            ],
            [
                exclusion("E1", "cns_status >= 'CNS3'"),
                exclusion("E2", "acute_gvhd_grade >= 2"),
                inclusion("I1", "acute_gvhd_grade != 4"),
            ],
        ),
    )


@pytest.mark.parametrize(
    ("cns", "grade", "failed"),
    [
        ("CNS1", "0", []),
        ("CNS2", "1", []),
        ("CNS3", "1", ["E1"]),
        ("CNS1", "2", ["E2"]),
        ("CNS2", "4", ["E2", "I1"]),
    ],
)
def test_ordered_choices_compare_by_position(
    ordered: Protocol, cns: str, grade: str, failed: list[str]
) -> None:
    answers = {"cns_status": cns, "acute_gvhd_grade": grade}
    found = verdict.build(ordered, answers, screened_on=SCREENED_ON)
    assert [r.criterion for r in found.reasons] == failed


def test_a_numbered_choice_is_answered_as_a_number_or_as_text(ordered: Protocol) -> None:
    question = ordered.questions["acute_gvhd_grade"]
    assert check_value(question, 2) == "2"
    assert check_value(question, "2") == "2"
    assert parse_text(question, "3") == "3"
    for wrong in (5, 2.5, True, "II"):
        with pytest.raises(AnswerError):
            check_value(question, wrong)
    with pytest.raises(AnswerError):  # a number names a choice only when the choices are numbers
        check_value(ordered.questions["cns_status"], 3)


@pytest.mark.parametrize(
    ("rule", "answer", "applies"),
    [
        ("'CNS2' < cns_status <= 'CNS3'", {"cns_status": "CNS1"}, False),
        ("'CNS2' < cns_status <= 'CNS3'", {"cns_status": "CNS2"}, False),
        ("'CNS2' < cns_status <= 'CNS3'", {"cns_status": "CNS3"}, True),
        ("'2' <= acute_gvhd_grade <= '4'", {"acute_gvhd_grade": "1"}, False),
        ("'2' <= acute_gvhd_grade <= '4'", {"acute_gvhd_grade": "2"}, True),
        ("'2' <= acute_gvhd_grade <= '4'", {"acute_gvhd_grade": "4"}, True),
    ],
)
def test_a_range_of_an_ordered_choice_may_be_a_chain(
    tmp_path: Path, rule: str, answer: dict[str, str], applies: bool
) -> None:
    # a chain holding a quoted choice was refused as a whole, so a site file with such a
    # range, valid before, broke on upgrade; each link compares the answer with one value
    choices = {
        "cns_status": ["CNS1", "CNS2", "CNS3"],
        "acute_gvhd_grade": ["0", "1", "2", "3", "4"],
    }
    (variable,) = answer
    protocol = build(
        tmp_path,
        dialog([choice(variable, choices[variable], ordered=True)], [exclusion("E1", rule)]),
    )
    found = verdict.build(protocol, answer, screened_on=SCREENED_ON)
    assert [r.criterion for r in found.reasons] == (["E1"] if applies else [])


def test_an_unordered_choice_cannot_be_ordered(tmp_path: Path) -> None:
    data = dialog(
        [choice("cns_status", ["CNS1", "CNS2", "CNS3"])],
        [exclusion("E1", "cns_status >= 'CNS3'")],
    )
    (problem,) = problems(tmp_path, data)
    assert "orders a choice answer" in problem.message
    assert "ordered: true" in problem.fix


def test_a_number_naming_no_choice_is_refused(tmp_path: Path) -> None:
    data = dialog(
        [choice("acute_gvhd_grade", ["0", "1", "2", "3", "4"], ordered=True)],
        [exclusion("E1", "acute_gvhd_grade >= 5")],
    )
    (problem,) = problems(tmp_path, data)
    assert "5 is not a choice of 'acute_gvhd_grade'" in problem.message


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "consented and comments == 'ok'",
        "consented and comments",
        "consented and known(comments)",
        "consented and unknown(comments)",
    ],
)
def test_no_rule_may_read_a_text_answer(tmp_path: Path, rule: str) -> None:
    data = dialog([yes_no("consented"), text("comments")], [inclusion("I1", rule)])
    found = problems(tmp_path, data)
    source = (tmp_path / "dialog.yaml").read_text(encoding="utf-8")
    assert any(
        "'comments' is a text answer" in p.message and p.line == line_of(source, "met_when")
        for p in found
    ), [str(p) for p in found]


def test_no_condition_may_read_a_text_answer(tmp_path: Path) -> None:
    data = dialog(
        [text("comments"), yes_no("consented", when="known(comments)")],
        [inclusion("I1", "consented")],
    )
    assert any("'comments' is a text answer" in p.message for p in problems(tmp_path, data))


def test_a_text_answer_is_kept_but_never_logged(tmp_path: Path) -> None:
    protocol = build(
        tmp_path, dialog([yes_no("consented"), text("comments")], [inclusion("I1", "consented")])
    )
    engine = Engine(protocol)
    session = engine.start(screened_on=SCREENED_ON)
    engine.answer_text(session, "yes")
    assert engine.question(session) is not None  # the text question is still asked
    engine.answer_text(session, "called the family on Tuesday")
    assert session.answers["comments"].value == "called the family on Tuesday"
    assert engine.verdict(session).verdict == "eligible"
    logged = loggable_answers(protocol, typed_values(protocol, session))
    assert logged == {"consented": True}
