"""The validator's traps from issue #11 ("Validator: the traps that passed silently"), each on
the smallest dialog file that shows it."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from format2 import (
    SCREENED_ON,
    a_date,
    build,
    choice,
    cockcroft_gault,
    dialog,
    dump,
    exclusion,
    inclusion,
    integer,
    line_of,
    number,
    problems,
    validate,
    write,
    yes_no,
)
from screen_bot import verdict
from screen_bot.engine import Engine
from screen_bot.protocol import DialogFileError, load
from screen_bot.protocol.schema import MAX_SOURCE

SEX = choice("sex", ["female", "male"])
CHILDBEARING = yes_no("childbearing_potential", when="sex == 'female'")


# -- a rule reading a question that may not be asked -------------------------------------------


def test_a_rule_reading_a_question_that_may_not_be_asked_is_explained(tmp_path: Path) -> None:
    data = dialog(
        [SEX, CHILDBEARING, yes_no("contraception_agreed", when="childbearing_potential")],
        [exclusion("E1", "childbearing_potential and not contraception_agreed")],
    )
    (problem,) = problems(tmp_path, data)
    assert problem.line == line_of(dump(data), "applies_when:")
    assert "reads 'childbearing_potential'" in problem.message
    assert "not asked when 'sex == 'female'' does not hold" in problem.message
    assert "sex = male" in problem.message  # the example: a man
    assert "stays open with nothing left to ask" in problem.message
    assert "(sex == 'female') and" in problem.fix  # the guard an exclusion needs


def test_the_same_rule_with_its_guard_is_accepted_and_decides_for_a_man(tmp_path: Path) -> None:
    protocol = build(
        tmp_path,
        dialog(
            [SEX, CHILDBEARING, yes_no("contraception_agreed", when="childbearing_potential")],
            [
                exclusion(
                    "E1",
                    "sex == 'female' and childbearing_potential and not contraception_agreed",
                )
            ],
        ),
    )
    man = verdict.build(protocol, {"sex": "male"}, screened_on=SCREENED_ON)
    assert man.verdict == "eligible" and man.open_items == []


def test_an_inclusion_gets_the_inclusion_form_of_the_fix(tmp_path: Path) -> None:
    data = dialog([SEX, CHILDBEARING], [inclusion("I1", "not childbearing_potential")])
    (problem,) = problems(tmp_path, data)
    assert "not (sex == 'female') or" in problem.fix


def test_a_condition_decided_by_a_known_part_asks_every_man(tmp_path: Path) -> None:
    """``when: sex == 'male' or childbearing_potential``: a man is asked, though his
    childbearing_potential was never asked (the known part decides)."""
    protocol = build(
        tmp_path,
        dialog(
            [
                SEX,
                CHILDBEARING,
                yes_no("contraception_agreed", when="sex == 'male' or childbearing_potential"),
            ],
            [
                exclusion(
                    "E1",
                    "(sex == 'male' or sex == 'female' and childbearing_potential) "
                    "and not contraception_agreed",
                )
            ],
        ),
    )
    engine = Engine(protocol)

    def asked(*typed: str) -> str:
        session = engine.start(screened_on=SCREENED_ON)
        for text in typed:
            engine.answer_text(session, text)
        return session.state

    assert asked("male") == "contraception_agreed"
    assert asked("female") == "childbearing_potential"
    assert asked("female", "yes") == "contraception_agreed"
    assert asked("female", "?") == "contraception_agreed"  # unknown: asked
    assert asked("female", "no") == "eligible"  # not asked of her
    assert asked("male", "no") == "not_eligible"


# -- no cascade after one broken expression ----------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        "weight_kg >",  # cannot be parsed
        "weight_kg >= 'heavy'",  # a type error
        "weigth_kg >= 40",  # an unknown name
    ],
)
def test_one_broken_rule_causes_no_read_by_no_rule_cascade(tmp_path: Path, broken: str) -> None:
    data = dialog(
        [number("weight_kg"), yes_no("consent")],
        [inclusion("I1", broken), inclusion("I2", "consent")],
    )
    found = problems(tmp_path, data)
    assert len(found) == 1, [str(p) for p in found]
    assert "read by no rule" not in found[0].message


def test_a_question_really_read_by_no_rule_is_reported(tmp_path: Path) -> None:
    data = dialog([number("weight_kg"), yes_no("consent")], [inclusion("I2", "consent")])
    (problem,) = problems(tmp_path, data)
    assert "question 'weight_kg' is read by no rule" in problem.message
    assert problem.line == line_of(dump(data), "variable: weight_kg")


# -- specific hints ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["rule", "condition"])
def test_an_unquoted_choice_gets_the_quoted_one_suggested(tmp_path: Path, where: str) -> None:
    questions = [choice("child_pugh_class", ["A", "B", "C"]), yes_no("cirrhosis")]
    rules = [exclusion("E1", "cirrhosis and child_pugh_class == 'B'")]
    if where == "rule":
        rules = [exclusion("E1", "cirrhosis and child_pugh_class == C")]
    else:
        questions[1] = yes_no("cirrhosis", when="child_pugh_class == C")
    data = dialog(questions, rules)
    (problem,) = problems(tmp_path, data)
    assert "'C'" in problem.message
    assert "put it in quotes: 'C' is a choice of 'child_pugh_class'" in problem.fix


@pytest.mark.parametrize("rule", ["sex = 'male'", "age >= 18 and sex = 'male'"])
def test_a_single_equals_gets_a_specific_hint(tmp_path: Path, rule: str) -> None:
    data = dialog([SEX, number("age")], [exclusion("E1", rule), inclusion("I1", "age >= 0")])
    (problem,) = problems(tmp_path, data)
    assert "use == to compare" in problem.fix
    assert problem.line == line_of(dump(data), "applies_when:")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("    text: consent?", "   text: consent?"),  # one space short
        ("    text: consent?", "  text: consent?"),  # at the list item's column
        ("    text: consent?", "     text: consent?"),  # one space too many
        ("  - variable: consent", "  -variable: consent"),
    ],
)
def test_bad_indentation_gets_a_specific_hint(tmp_path: Path, old: str, new: str) -> None:
    source = dump(dialog([yes_no("consent")], [inclusion("I1", "consent")]))
    assert source.count(old) == 1
    (problem,) = problems(tmp_path, source.replace(old, new))
    assert "YAML" in problem.message
    assert "check the indentation" in problem.fix
    assert abs((problem.line or 0) - line_of(source, old)) <= 1


QUOTED_FIRST = [
    choice("meds", ["metformin", "insulin"], multiple=True),
    choice("grade", ["a", "b"], ordered=True),
]
READS_BOTH = exclusion("E0", "'insulin' in meds and grade == 'b'")  # E1 is last


@pytest.mark.parametrize("rule", ["'metformin' in meds or 'insulin' in meds", "'a' < grade"])
def test_a_rule_starting_with_a_quoted_choice_gets_the_fix_to_quote_it_whole(
    tmp_path: Path, rule: str
) -> None:
    """README writes `'blinatumomab' in prior_therapies`; after `applies_when: ` YAML reads
    the quoted choice as the whole value and cannot place the rest. The fix offered was
    about indentation, which is right."""
    source = dump(dialog(QUOTED_FIRST, [READS_BOTH, exclusion("E1", rule)]))
    quoted = f'applies_when: "{rule}"'
    assert source.count(quoted) == 1 and build(tmp_path, source)  # the line offered loads
    broken = source.replace(quoted, f"applies_when: {rule}")
    (problem,) = problems(tmp_path, broken)
    assert "YAML" in problem.message
    assert problem.line == line_of(broken, f"applies_when: {rule}")
    assert problem.fix == f"put the whole expression in quotes: {quoted}"


def test_a_one_line_criterion_starting_with_a_quoted_choice_gets_the_same_fix(
    tmp_path: Path,
) -> None:
    source = dump(dialog(QUOTED_FIRST, [READS_BOTH, exclusion("E1", "'a' < grade")]))
    broken = source[: source.index("  - id: E1")] + (
        "  - {id: E1, kind: exclusion, label: x, source: x., applies_when: 'a' < grade}\n"
    )
    (problem,) = problems(tmp_path, broken)
    assert problem.line == line_of(broken, "applies_when: 'a' < grade")
    assert problem.fix.startswith("put the whole expression in quotes: applies_when: \"'a' ")


def test_a_long_quoted_text_followed_by_more_gets_the_fix_too(tmp_path: Path) -> None:
    """A protocol's quote in `source:` runs to hundreds of characters; the hint's search
    before the error is bounded (a long line cost its length squared), but from the line's
    start it is not needed: matched whole."""
    quote = " ".join(["Age 14-65 years (inclusive), regardless of gender."] * 12)
    source = dump(dialog([yes_no("consent")], [inclusion("I1", "consent")]))
    broken = source.replace("    source: ", f'    source: "{quote}" (section 5.1)\n    x: ', 1)
    (problem,) = problems(tmp_path, broken)
    assert problem.fix.startswith("put the whole expression in quotes: source: '\"Age 14-65")


def test_a_tab_gets_the_spaces_hint(tmp_path: Path) -> None:
    source = dump(dialog([yes_no("consent")], [inclusion("I1", "consent")]))
    broken = source.replace("    text: consent?", "\ttext: consent?")
    (problem,) = problems(tmp_path, broken)
    assert "indent with spaces, never tabs" in problem.fix
    assert problem.line == line_of(broken, "\ttext: consent?")


def test_problems_are_sorted_by_line(tmp_path: Path) -> None:
    data = dialog(
        [yes_no("consent"), choice("child_pugh_class", ["A", "B", "C"]), number("age")],
        [
            inclusion("I1", "consent and age >= 18"),
            exclusion("E1", "child_pugh_class == C"),
            inclusion("I2", "agee < 80"),
            exclusion("E2", "child_pugh_class = 'A'"),
        ],
        notes=[{"criteria": ["I9"], "text": "Which?"}],
    )
    found = problems(tmp_path, data)
    lines = [p.line for p in found]
    assert len(found) == 4
    assert all(isinstance(n, int) for n in lines)
    assert lines == sorted(lines)


def test_a_duplicate_criterion_id_names_both_lines(tmp_path: Path) -> None:
    data = dialog(
        [yes_no("consent"), number("age")],
        [inclusion("I1", "consent"), inclusion("I2", "age >= 18"), inclusion("I1", "age < 80")],
    )
    source = dump(data)
    (problem,) = problems(tmp_path, data)
    first, second = line_of(source, "- id: I1"), line_of(source, "- id: I1", 1)
    assert problem.line == second
    assert f"also at line {first}" in problem.message
    assert "duplicate id 'I1'" in problem.message


def test_a_duplicate_variable_names_both_lines(tmp_path: Path) -> None:
    data = dialog([yes_no("consent"), yes_no("consent")], [inclusion("I1", "consent")])
    source = dump(data)
    found = problems(tmp_path, data)
    first, second = line_of(source, "variable: consent"), line_of(source, "variable: consent", 1)
    assert any(p.line == second and f"line {first}" in p.message for p in found)


def test_time_unit_of_format_1_gets_a_migration_hint(tmp_path: Path) -> None:
    data = dialog(
        [number("months_since_transplant", 0, 600, time_unit="months")],
        [inclusion("I1", "months_since_transplant >= 2")],
    )
    (problem,) = problems(tmp_path, data)
    assert "time_unit" in problem.message
    assert "type: date" in problem.fix
    assert "screening_date >= transplant_date + months(2)" in problem.fix
    assert problem.line == line_of(dump(data), "time_unit:")


# -- numbers that are not finite ----------------------------------------------------------------

X_WITH_LIMITS = dialog(
    [
        yes_no("a"),
        number("x", 0, 777, confirm_below=1, also_accepts=[{"unit": "g", "divide_by": 1000}]),
    ],
    [inclusion("I1", "a and x > limit")],
    tables=[{"name": "limit", "label": "a limit", "rows": [{"when": "a", "value": 5}]}],
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("max: 777", "max: .nan"),
        ("max: 777", "max: 1e400"),
        ("max: 777", "max: .inf"),
        ("confirm_below: 1", "confirm_below: .nan"),
        ("divide_by: 1000", "divide_by: .inf"),
        ("value: 5", "value: .inf"),
        ("value: 5", "value: -.inf"),
        ("value: 5", "value: .nan"),
    ],
)
def test_a_number_that_is_not_finite_is_refused_at_its_line(
    tmp_path: Path, old: str, new: str
) -> None:
    """.nan as a limit refused every answer; .inf in a table broke the SQL engine's query."""
    source = dump(X_WITH_LIMITS)
    assert build(tmp_path, source).id == "synthetic"  # the file with finite numbers loads
    (problem,) = problems(tmp_path, source.replace(old, new))
    assert "finite number" in problem.message
    assert ".nan or .inf" in problem.fix
    assert problem.line == line_of(source, old)


# -- validate on a directory -------------------------------------------------------------------


def test_validate_refuses_two_files_with_one_protocol_id(tmp_path: Path) -> None:
    data = dialog([yes_no("consent")], [inclusion("I1", "consent")], id="same")
    first, second = write(tmp_path, data, "a.yaml"), write(tmp_path, data, "b.yaml")
    result = validate(tmp_path)
    assert result.returncode == 2
    assert str(first) in result.stderr and str(second) in result.stderr


def test_judgment_may_name_the_questions_whose_open_items_are_the_investigators(
    tmp_path: Path,
) -> None:
    """A rule that reads a plain fact beside the investigator's call: an unknown fact is
    missing data, an unknown call a judgment, and the fact has one open item."""
    rule = "prior_allo_hsct and chronic_gvhd_extensive"
    questions = [yes_no("prior_allo_hsct"), yes_no("chronic_gvhd_extensive")]
    judged = exclusion("E1", rule, judgment=["chronic_gvhd_extensive"])
    protocol = build(tmp_path, dialog(questions, [inclusion("I1", "not prior_allo_hsct"), judged]))
    found = verdict.build(protocol, {})
    assert [(i.variable, i.kind, i.criteria) for i in found.open_items] == [
        ("prior_allo_hsct", "missing", ["I1", "E1"]),
        ("chronic_gvhd_extensive", "judgment", ["E1"]),
    ]
    wrong = exclusion("E1", rule, judgment=["prior_allo_hsct", "weight_kg"])
    (problem,) = problems(tmp_path, dialog(questions, [wrong]), "wrong.yaml")
    assert "E1's judgment names 'weight_kg', not a question its rule reads" in problem.message
    assert problem.fix == "name questions of its rule: chronic_gvhd_extensive, prior_allo_hsct"


def test_the_reserved_id_all_is_refused(tmp_path: Path) -> None:
    """``--protocol all`` means every protocol: a protocol with that id could not be chosen."""
    data = dialog([yes_no("consent")], [inclusion("I1", "consent")], id="all")
    (problem,) = problems(tmp_path, data)
    assert "'all' is reserved" in problem.message
    assert problem.line == 1


@pytest.mark.parametrize("name", ["referral", "screened_on"])
def test_a_variable_named_like_a_batch_rows_own_key_is_refused(tmp_path: Path, name: str) -> None:
    """README Batch: a row's keys are the variable names plus an optional `referral` and
    `screened_on`; a question so named was read both ways (JSON took the answer, CSV the
    referral code)."""
    data = dialog([yes_no(name)], [inclusion("I1", name)])
    (problem,) = problems(tmp_path, data)
    assert f"'{name}' is reserved" in problem.message
    assert problem.line == line_of(dump(data), f"variable: {name}")
    assert "rename the variable" in problem.fix


# -- choices and synonyms every way of answering reads alike (outside audit) -----------------


@pytest.mark.parametrize(
    ("question", "marker", "said", "fix"),
    [
        (  # typed 'male' would mean female in chat and check, male in a batch row
            choice("sex", ["female", "male"], synonyms={"male": "female"}),
            "male: female",
            "synonym 'male' is the choice 'male'",
            "remove the synonym 'male'",
        ),
        (  # lower-cased into one key when typed: the last would silently win
            choice("sex", ["female", "male"], synonyms={"m": "male", "M": "female"}),
            "M: female",
            "synonyms 'm' and 'M' differ only in case",
            "keep one of them",
        ),
        (  # chat maps a typed 'csf' to 'CSF', a batch row reads 'csf'
            choice("sex", ["CSF", "csf", "female"]),
            "- csf",
            "choices 'CSF' and 'csf' differ only in case",
            "keep one of them",
        ),
        (  # typed, it is always the answer "unknown"
            choice("sex", ["female", "male", "?"]),
            "- '?'",
            "choice '?' is a word the dialog reserves",
            "'? result'",
        ),
        (  # typed in the terminal, it goes back a question
            choice("sex", ["female", "male", "Back"]),
            "- Back",
            "choice 'Back' is a word the dialog reserves: typed, it is read as a command",
            "'Back result'",
        ),
        (  # typed in Telegram, it is a command
            choice("sex", ["female", "male", "/other"]),
            "- /other",
            "choice '/other' is a word the dialog reserves: typed, it is read as a command",
            "without the leading '/', e.g. 'other'",
        ),
        (
            choice("sex", ["female", "male"], synonyms={"?": "female"}),
            "'?': female",
            "synonym '?' is a word the dialog reserves",
            "remove the synonym '?'",
        ),
        (  # typed or in a CSV cell, it is the answer unknown (only a choice may be one)
            choice("sex", ["female", "male"], synonyms={"unknown": "female"}),
            "unknown: female",
            "synonym 'unknown' is a word the dialog reserves: typed, it is read as unknown",
            "remove the synonym 'unknown'",
        ),
        (  # a multi-select answer is comma-separated: this choice cannot be typed
            choice("sex", ["female", "male; other"], multiple=True),
            "- male; other",
            "choice 'male; other' of a multi-select question holds a comma",
            "write it without them",
        ),
    ],
)
def test_choices_and_synonyms_read_two_ways_are_refused_at_their_line(
    tmp_path: Path, question: dict, marker: str, said: str, fix: str
) -> None:
    rule = "'female' in sex" if question.get("multiple") else "sex == 'female'"
    data = dialog([question], [exclusion("E1", rule)])
    (problem,) = problems(tmp_path, data)
    assert said in problem.message
    assert fix in problem.fix
    assert problem.line == line_of(dump(data), marker)


def test_synonyms_that_agree_with_every_reading_are_accepted(tmp_path: Path) -> None:
    """A synonym repeating its own choice in another case, a choice that merely starts
    like a reserved word, and a comma in a single choice mean the same in every reading."""
    sex = choice("sex", ["female", "male"], synonyms={"Male": "male", "f": "female"})
    sample = choice("sample", ["background", "csf, lumbar"])
    protocol = build(
        tmp_path,
        dialog(
            [sex, sample],
            [exclusion("E1", "sex == 'male'"), exclusion("E2", "sample == 'background'")],
        ),
    )
    assert protocol.questions["sex"].synonyms == {"Male": "male", "f": "female"}


CHOICES_TEMPLATE = """\
id: synthetic
title: A synthetic protocol
version: '1'
questions:
  - variable: sex
    type: choice
    text: Sex?
    choices:
      - female
      - male
      - CHOICE
    synonyms:
      f: female
criteria:
  - id: E1
    kind: exclusion
    label: a woman
    source: a woman
    applies_when: sex == 'female'
"""


@pytest.mark.parametrize(
    ("written", "said", "fix"),
    [
        ("' other '", "choice ' other ' is spaced as no typed answer", "write it as 'other'"),
        ("'not  known'", "is spaced as no typed answer", "write it as 'not known'"),
        ('"a\\nb"', "choice 'a\\nb' holds a line break (U+000A)", "write it as 'a b'"),
        ('"x\\ty"', "holds a tab (U+0009)", "write it as 'x y'"),
        ('"ma\\u200ble"', "holds the invisible character U+200B", "remove the choice"),
        ('"ot\\u202eher"', "holds the bidi control U+202E", "write it as 'other'"),
        ('"x\\ud800"', "holds a lone surrogate (U+D800)", "write it as 'x'"),
        ('"x\\x1b[31m"', "holds the control character U+001B (ESC)", "write it as 'x[31m'"),
    ],
)
def test_a_choice_no_typed_answer_selects_is_refused_at_its_line(
    tmp_path: Path, written: str, said: str, fix: str
) -> None:
    """' other ' or 'a\\nb' passed, and the dialog asked for one of them for ever; a choice
    with a zero-width space looked like 'male' beside it."""
    source = CHOICES_TEMPLATE.replace("CHOICE", written)
    (problem,) = problems(tmp_path, source)
    assert said in problem.message
    assert fix in problem.fix
    assert problem.line == line_of(source, written)


@pytest.mark.parametrize(
    ("written", "said"),
    [("' m'", "synonym ' m' is spaced"), ('"m\\u200b"', "synonym 'm\\u200b' holds")],
)
def test_a_synonym_no_typed_answer_selects_is_refused_at_its_line(
    tmp_path: Path, written: str, said: str
) -> None:
    source = CHOICES_TEMPLATE.replace("      - CHOICE\n", "").replace(
        "      f: female", f"      f: female\n      {written}: male"
    )
    (problem,) = problems(tmp_path, source)
    assert said in problem.message
    assert "write it as 'm'" in problem.fix
    assert problem.line == line_of(source, written)


def test_the_same_file_with_a_plain_choice_loads(tmp_path: Path) -> None:
    protocol = build(tmp_path, CHOICES_TEMPLATE.replace("CHOICE", "other person"))
    assert protocol.questions["sex"].choices == ["female", "male", "other person"]


@pytest.mark.parametrize(
    "typed",
    ["\U0001f468\u200d\u2695\ufe0f", "\u0632\u0646\u200c\u0647\u0627"],  # 👨‍⚕️, زن‌ها
)
def test_a_choice_with_a_joiner_a_keyboard_types_loads(tmp_path: Path, typed: str) -> None:
    """The zero-width joiner (inside emoji sequences) and non-joiner (inside Persian words)
    are typed by phone keyboards: a choice holding one is selected by a typed answer."""
    protocol = build(tmp_path, CHOICES_TEMPLATE.replace("CHOICE", f'"{typed}"'))
    assert protocol.questions["sex"].choices == ["female", "male", typed]


# -- "never true" and "not asked" searched on answers drawn from the conditions (outside audit) --

THERAPIES = choice("prior_therapies", ["chemo", "radiation", "car_t"], multiple=True)


@pytest.mark.parametrize(
    ("first", "condition"),
    [
        (  # true for an event 3 months ago only
            a_date("event_date"),
            "screening_date >= event_date + months(2) and screening_date < event_date + months(6)",
        ),
        (a_date("event_date"), "screening_date >= event_date + years(15)"),  # 20 years ago
        (a_date("event_date"), "event_date == screening_date - weeks(7)"),  # one day only
        (  # a planned date 10 to 14 days ahead
            a_date("start_date", future=True),
            "start_date > screening_date + days(9) and start_date <= screening_date + days(14)",
        ),
        (  # two of three therapies
            THERAPIES,
            "'chemo' in prior_therapies and 'radiation' in prior_therapies"
            " and 'car_t' not in prior_therapies",
        ),
    ],
)
def test_a_condition_true_for_some_answers_is_not_called_never_true(
    tmp_path: Path, first: dict, condition: str
) -> None:
    follow_up = yes_no("follow_up", when=condition)
    data = dialog([first, follow_up], [exclusion("E1", f"({condition}) and follow_up")])
    protocol = build(tmp_path, data)
    assert protocol.when["follow_up"].text == condition


NINE = ["blina", "ino", "car_t", "gene", "cd22", "allo", "auto", "tki", "ritux"]


@pytest.mark.parametrize(
    ("first", "condition"),
    [
        (  # two of nine therapies: past the subsets searched
            choice("prior_therapies", NINE, multiple=True),
            "'blina' in prior_therapies and 'ino' in prior_therapies and "
            "none_of(prior_therapies, 'car_t', 'gene', 'cd22', 'allo', 'auto', 'tki', 'ritux')",
        ),
        (  # baseline 1.2, now 1.3: thresholds less than 1 apart between two answers
            number("scr_baseline", 0, 20),
            "scr_now > scr_baseline and scr_baseline > 1.0 and scr_now < 1.5",
        ),
    ],
)
def test_a_condition_the_candidates_may_miss_falls_back_to_the_over_approximation(
    tmp_path: Path, first: dict, condition: str
) -> None:
    """Where the search tries samples only, finding none is no proof: not 'never true'."""
    questions = [first, number("scr_now", 0, 20), yes_no("follow_up", when=condition)]
    rules = [exclusion("E1", f"({condition}) and follow_up"), exclusion("E2", "scr_now > 15")]
    data = dialog(questions, rules)
    assert build(tmp_path, data).when["follow_up"].text == condition


def test_a_condition_true_only_for_a_later_answer_to_another_date_is_not_called_never_true(
    tmp_path: Path,
) -> None:
    """Two dates compared with each other: the candidates of one follow the other's."""
    condition = (
        "relapse_date >= diagnosis_date + months(30) and relapse_date < diagnosis_date + months(31)"
    )
    questions = [
        a_date("diagnosis_date"),
        a_date("relapse_date"),
        yes_no("late_relapse_treated", when=condition),
    ]
    data = dialog(questions, [exclusion("E1", f"({condition}) and late_relapse_treated")])
    assert build(tmp_path, data).when["late_relapse_treated"].text == condition


@pytest.mark.parametrize("years", [1, 20, 90])
def test_a_rule_reading_a_question_not_asked_past_a_long_window_is_refused(
    tmp_path: Path, years: int
) -> None:
    """years(1) was refused and years(20) accepted: then a diagnosis 26 years ago ended
    'unresolved' on a question never asked."""
    questions = [
        a_date("diagnosis_date"),
        yes_no("relapse", when=f"screening_date < diagnosis_date + years({years})"),
    ]
    data = dialog(
        questions,
        [inclusion("I1", "known(diagnosis_date)"), exclusion("E1", "relapse")],
    )
    (problem,) = problems(tmp_path, data)
    assert "rule of E1 reads 'relapse', which is not asked when" in problem.message
    assert problem.line == line_of(dump(data), "applies_when:")


@pytest.mark.parametrize(
    ("questions", "rule", "variable"),
    [
        (
            [
                a_date("transplant_date"),
                yes_no("relapsed"),
                a_date("relapse_date", when="relapsed"),
            ],
            "relapse_date < transplant_date + months(6)",
            "relapse_date",
        ),
        (
            [
                integer("alt_baseline"),
                yes_no("repeat_done"),
                integer("alt_repeat", when="repeat_done"),
            ],
            "alt_repeat > alt_baseline",
            "alt_repeat",
        ),
    ],
)
def test_a_rule_comparing_a_question_not_asked_with_another_answer_is_refused(
    tmp_path: Path, questions: list, rule: str, variable: str
) -> None:
    """With the other answer still to choose, the search took the comparison as never
    unknown: 'relapsed = no' then ended unresolved on a relapse date never asked."""
    data = dialog(questions, [exclusion("E1", rule)])
    (problem,) = problems(tmp_path, data)
    assert f"rule of E1 reads '{variable}', which is not asked when" in problem.message


def test_a_number_equal_to_another_answer_is_not_called_never_true(tmp_path: Path) -> None:
    """The second dose's candidates include the first's threshold, not only its own."""
    condition = "dose_day1 == 55 and dose_day2 == dose_day1"
    questions = [integer("dose_day1"), integer("dose_day2"), yes_no("same_dose", when=condition)]
    data = dialog(questions, [exclusion("E1", f"({condition}) and same_dose")])
    assert build(tmp_path, data).when["same_dose"].text == condition


def test_a_table_row_reading_its_own_table_is_one_problem_at_the_row(tmp_path: Path) -> None:
    """The row is reported; the condition reading the table is not told to 'ask' the table
    (it is no question) before it: one mistake, one report."""
    table = {
        "name": "limit",
        "label": "a limit",
        "rows": [
            {"when": "age < 18 and limit > 0", "value": 1.0},
            {"when": "age >= 18", "value": 2.0},
        ],
    }
    questions = [integer("age"), number("level"), yes_no("high", when="level > limit")]
    data = dialog(questions, [exclusion("E1", "high")], tables=[table])
    (problem,) = problems(tmp_path, data)
    assert "'limit' cannot be read here" in problem.message
    assert problem.line == line_of(dump(data), "limit > 0")


@pytest.mark.parametrize(("written", "shown"), [("1.1", "1.1"), ("1.10", "1.10"), ("2", "2")])
def test_an_unquoted_version_gets_the_fix_to_quote_it_as_written(
    tmp_path: Path, written: str, shown: str
) -> None:
    text = dump(dialog([yes_no("a")], [inclusion("I1", "a")])).replace(
        "version: '1'", f"version: {written}"
    )
    (problem,) = problems(tmp_path, text)
    assert problem.line == line_of(text, "version:")
    assert f'put the value in quotes as written, e.g. version: "{shown}"' in problem.fix


@pytest.mark.parametrize(
    ("old", "new", "fix"),
    [
        ("min: 0", "min: true", "true and false are yes/no answers, not numbers"),
        ("max: 1000", "max: false", "true and false are yes/no answers, not numbers"),
        ("version: '1'", "version: !!binary aGVsbG8=", "remove the '!!binary' tag"),
    ],
)
def test_a_value_of_another_type_is_refused_not_converted(
    tmp_path: Path, old: str, new: str, fix: str
) -> None:
    """'min: true' was read as 1 (age 0 then out of range) and a !!binary version as the
    text it encodes."""
    text = dump(dialog([number("x")], [inclusion("I1", "x > 5")]))
    assert old in text
    (problem,) = problems(tmp_path, text.replace(old, new))
    assert problem.line == line_of(text, old)
    assert fix in problem.fix


PROTOCOL_ID_RULE = "lower-case letters, digits and -, the first a letter or digit (at most 40)"
CRITERION_ID_RULE = "a letter, then letters, digits, _, . and - (at most 32)"


@pytest.mark.parametrize(
    ("old", "new", "rule", "example"),
    [  # each spelling gets its own rule: a protocol id with '_' was told to use '_'
        ("id: synthetic", "id: blina_dli", PROTOCOL_ID_RULE, "blina-dli"),
        ("id: synthetic", "id: Blina DLI", PROTOCOL_ID_RULE, "blina-dli"),
        ("id: synthetic", "id: é", PROTOCOL_ID_RULE, "blina-dli"),
        (
            "variable: a",
            "variable: Prior-Therapy",
            "a lower-case letter, then lower-case letters, digits and _ (at most 64)",
            "prior_therapy",
        ),
        ("- id: I1", "- id: I 8c", CRITERION_ID_RULE, "I-8c"),
        ("- id: I1", "- id: 8c", CRITERION_ID_RULE, "I8c"),
    ],
)
def test_a_name_or_id_spelled_otherwise_gets_the_rule_of_its_own_spelling(
    tmp_path: Path, old: str, new: str, rule: str, example: str
) -> None:
    text = dump(dialog([yes_no("a")], [inclusion("I1", "a")]))
    assert old in text
    (problem,) = problems(tmp_path, text.replace(old, new))
    assert problem.fix == f"write {rule}, e.g. '{example}'"
    assert problem.line == line_of(text, old)


def _spelled(data: dict[str, Any], key: str, written: str) -> dict[str, Any]:
    """``data`` with its protocol id, question variable or criterion id ``written``."""
    data = deepcopy(data)
    if key == "id":
        data["id"] = written
    elif key == "variable":
        data["questions"][0]["variable"] = data["criteria"][0]["met_when"] = written
    else:
        data["criteria"][0]["id"] = written
    return data


@settings(max_examples=40, deadline=None)
@given(st.text(st.sampled_from("aZ9 _-.é\t"), min_size=1, max_size=45))
def test_the_spelling_a_fix_gives_as_an_example_is_accepted(
    tmp_path_factory: pytest.TempPathFactory, written: str
) -> None:
    """Whatever protocol id, variable or criterion id is refused for its spelling, the one
    the fix gives as its example loads."""
    directory = tmp_path_factory.mktemp("spelling")
    data = dialog([yes_no("a")], [inclusion("I1", "a")])
    for key in ("id", "variable", "criterion"):
        try:
            load(write(directory, _spelled(data, key, written)))
            continue
        except DialogFileError as err:
            spelled = [p for p in err.problems if "should match pattern" in p.message]
        if spelled:  # (else refused for another reason: a name no rule can read, say)
            example = spelled[0].fix.rpartition("e.g. '")[2].removesuffix("'")
            assert load(write(directory, _spelled(data, key, example))).spec is not None


@pytest.mark.parametrize(
    ("old", "new", "fix"),
    [
        (  # a date was "correct the value", while 1.10 got "put it in quotes as written"
            "version: '1'",
            "version: 2024-01-01",
            'put the value in quotes as written, e.g. version: "2024-01-01": unquoted, YAML '
            "reads it as a date",
        ),
        (  # told to write "True", which then passed as a rule every patient meets
            "met_when: a",
            "met_when: True",
            "write a rule on the answers, e.g. met_when: 14 <= age <= 65 (unquoted, YAML reads "
            "True as true/false",
        ),
        ("met_when: a", "met_when: 14", "write a rule on the answers"),
    ],
)
def test_a_value_yaml_reads_as_another_type_gets_the_fix_for_its_key(
    tmp_path: Path, old: str, new: str, fix: str
) -> None:
    text = dump(dialog([yes_no("a")], [inclusion("I1", "a")]))
    assert old in text
    (problem,) = problems(tmp_path, text.replace(old, new))
    assert problem.fix.startswith(fix)
    assert problem.line == line_of(text, old)


PLAIN = dialog(
    [
        integer("age", unit="years"),
        choice("sex", ["female", "male"], synonyms={"woman": "female"}),
        number("weight_kg", 1, 300, unit="kg"),
        number(
            "serum_creatinine_mg_dl",
            0.1,
            20,
            unit="mg/dL",
            also_accepts=[{"unit": "µmol/L", "divide_by": 88.4}],
        ),
    ],
    [inclusion("I1", "age >= 18 and crcl > limit"), exclusion("E1", "sex == 'male'")],
    tables=[
        {
            "name": "limit",
            "label": "a limit",
            "unit": "mL/min",
            "rows": [{"when": "age > 1", "value": 5}],
        }
    ],
    derived=[cockcroft_gault("crcl", "mL/min")],
)


@pytest.mark.parametrize(
    ("change", "fix"),
    [  # each of these ended in the placeholder "fix: correct the value"
        (("min: 0", "min: 200"), "swap them (min: 120, max: 200) or correct the one mistyped"),
        (("divide_by: 88.4", "divide_by: 0"), "write a number greater than 0: what a value"),
        (("divide_by: 88.4", "divide_by: -1"), "write a number greater than 0"),
        (
            ("    met_when: age >= 18 and crcl > limit\n", ""),
            "add met_when: <rule>, e.g. met_when: 14 <= age <= 65",
        ),
        (("met_when: age", "applies_when: age"), "rename applies_when to met_when, or make"),
        (
            ("woman: female", "woman: Female"),
            "after each synonym's ':' write one of the choices exactly as listed ('female', "
            "'male')",
        ),
        (("- male\n", "- female\n"), "list each choice once: 'female' is listed twice"),
        (
            ("min: 0", "min: 2020-01-01"),
            "write a plain number, e.g. 0.5, without quotes or a unit (YAML reads this as a date)",
        ),
        (("min: 0", "min: '0'"), "write a plain number, e.g. 0.5, without quotes or a unit"),
        (("value: 5", "value: five"), "write a plain number"),
        (
            ("title: A synthetic protocol", "title: " + "t" * 201),
            "shorten it to at most 200 characters (README, Dialog files: Limits)",
        ),
        (("version: '1'", "version: [1]"), "write one text, not a list"),
        (("version: '1'", "version: !!set {a}"), "write one text, not a set"),
        (("version: '1'", "version:"), "write the value after 'version:' (it is empty)"),
        (("type: choice", "type: choice\n    multiple: yes"), "write true or false"),
        (("    calculator: cockcroft_gault\n", ""), "add calculator: (inputs map each"),
        (("      - female\n      - male\n", ""), "list its choices, e.g. choices: [female, male]"),
        (("    rows:\n", "    rows: []\n    old_rows:\n"), None),
        (("rows:", "rows: 5\n    old_rows:"), "write rows as a list: one '- ' item a line"),
    ],
)
def test_a_schema_problem_gets_a_fix_of_its_own(
    tmp_path: Path, change: tuple[str, str], fix: str | None
) -> None:
    text = dump(PLAIN)
    assert build(tmp_path, text).id == "synthetic"
    old, new = change
    assert old in text
    found = problems(tmp_path, text.replace(old, new, 1))
    for problem in found:
        assert "correct the value" not in problem.fix
    if fix is not None:
        assert any(p.fix.startswith(fix) for p in found), found


@pytest.mark.parametrize(
    ("key", "limit", "fix"),
    [("questions", 500, "split the protocol"), ("criteria", 500, "split the protocol")],
)
def test_a_list_over_its_limit_is_told_the_limit_and_where_readme_lists_it(
    tmp_path: Path, key: str, limit: int, fix: str
) -> None:
    """'List should have at most 500 items' ended in 'correct the value', and README did not
    say that a file holds at most 500 questions or criteria."""
    questions = [yes_no(f"q{i}") for i in range(limit + (key == "questions"))]
    criteria = [
        exclusion(f"E{i}", f"q{i % len(questions)}") for i in range(limit + (key == "criteria"))
    ]
    (problem,) = problems(tmp_path, dialog(questions, criteria))
    assert (
        problem.message
        == f"{key}: List should have at most {limit} items after validation, not {limit + 1}"
    )
    assert (
        problem.fix
        == f"keep at most {limit} {key} (README, Dialog files: Limits): {fix} into two files"
    )
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    limits = readme[readme.index("**Limits**") :]
    assert f"1–{limit} {key}" in " ".join(limits[:800].split())


@pytest.mark.parametrize("length", [40, 41])
def test_a_unit_is_at_most_40_characters_and_is_told_so(tmp_path: Path, length: int) -> None:
    """A 41-character unit got 'Value should have at most 40 items after validation'."""
    data = dialog([integer("age", unit="u" * length)], [inclusion("I1", "age >= 18")])
    if length == 40:
        assert build(tmp_path, data).questions["age"].unit == "u" * 40
        return
    (problem,) = problems(tmp_path, data)
    assert problem.message == "questions.0.unit (age): String should have at most 40 characters"
    assert problem.fix == "shorten it to at most 40 characters (README, Dialog files: Limits)"


@pytest.mark.parametrize(
    ("criteria", "said"),
    [
        ([{"id": "K-I1"}, {"id": "K-E1"}], "criteria.1.source (K-E1): Field required"),
        ([{"id": "K-I1"}, {"id": "K E1"}], "criteria.1.source (K E1): Field required"),
        ([{"id": "K-I1"}, {}], "criteria.1.source: Field required"),  # no id written
    ],
)
def test_a_problem_inside_a_criterion_names_its_id(
    tmp_path: Path, criteria: list[dict[str, str]], said: str
) -> None:
    """Outside audit 17: a missing source was named 'criteria.0.source' only; in a file of
    18 criteria the id says which one without counting."""
    written = [inclusion("K-I1", "age >= 18"), inclusion("K-E1", "age <= 75")]
    for rule, written_id in zip(written, criteria, strict=True):
        if "id" in written_id:
            rule["id"] = written_id["id"]
        else:
            del rule["id"]
    del written[1]["source"]
    data = dialog([integer("age")], written)
    found = [p.message for p in problems(tmp_path, data)]
    assert said in found


def test_an_empty_confirm_estimate_is_told_it_is_empty(tmp_path: Path) -> None:
    """It got 'Value should have at least 1 item after validation', as the unit did."""
    data = dialog([integer("age")], [inclusion("I1", "age >= 18", confirm_estimate="")])
    (problem,) = problems(tmp_path, data)
    assert (
        problem.message
        == "criteria.0.confirm_estimate (I1): String should have at least 1 character"
    )
    assert problem.fix == "write the text (it is empty)"


def test_an_unquoted_list_item_gets_a_fix_that_keeps_it_a_list_item(tmp_path: Path) -> None:
    """'e.g. 0: "0"' would have made the item a mapping."""
    text = dump(dialog([choice("grade", ["0", "1"])], [inclusion("I1", "grade == '0'")]))
    text = text.replace("- '0'", "- 0")
    assert "- 0" in text
    problem = problems(tmp_path, text)[0]
    assert 'e.g. "0" for that item of the list' in problem.fix and '0: "0"' not in problem.fix


@pytest.mark.parametrize(
    ("where", "blank"),
    [("questions", {"text": " "}), ("criteria", {"label": "\t"}), ("top", {"title": "  "})],
)
def test_a_blank_text_the_user_is_shown_is_refused(tmp_path: Path, where: str, blank: dict) -> None:
    """A blank question text showed '[1/22]  ' and no question at all."""
    question, rule = yes_no("a"), inclusion("I1", "a")
    top = blank if where == "top" else {}
    question.update(blank if where == "questions" else {})
    rule.update(blank if where == "criteria" else {})
    data = dialog([question], [rule], **top)
    (problem,) = problems(tmp_path, data)
    assert problem.message.endswith("is blank")
    assert "write the text the user is shown" in problem.fix


@pytest.mark.parametrize(
    ("key", "written", "said", "fix"),
    [
        ("title", '"red \\e[31mtitle"', "the control character U+001B (ESC)", "delete it"),
        ("title", '"\\u202etitle"', "the bidi control U+202E", "delete it"),
        ("label", '"a\\u2066b"', "the bidi control U+2066", "delete it"),
        ("label", '"x\\ud800y"', "a lone surrogate (U+D800)", "write the character itself"),
        ("label", '"two\\nlines"', "a line break (U+000A)", "write it on one line"),
        ("version", '"1\\a"', "the control character U+0007", "delete it"),
        ("text", '"Age?\\x9b"', "the control character U+009B", "delete it"),
        ("source", '"quoted \\u202d"', "the bidi control U+202D", "delete it"),
    ],
)
def test_a_character_a_message_must_not_carry_is_refused_at_its_line(
    tmp_path: Path, key: str, written: str, said: str, fix: str
) -> None:
    """Control characters, ANSI escapes and bidi overrides in titles and labels passed and
    were printed raw; a lone surrogate passed in texts without a length limit."""
    text = dump(dialog([yes_no("a")], [inclusion("I1", "a")]))
    old = {"title": "title: ", "label": "label: ", "version": "version: "}.get(key, f"{key}: ")
    line = next(n for n in text.splitlines() if n.lstrip(" -").startswith(old))
    source = text.replace(line, line[: line.index(old) + len(old)] + written, 1)
    (problem,) = problems(tmp_path, source)
    assert said in problem.message
    assert fix in problem.fix
    assert problem.line == line_of(source, written)


def test_line_breaks_and_tabs_may_stay_in_a_question_text_help_or_source(
    tmp_path: Path,
) -> None:
    question = yes_no("a", text="First line?\nSecond line.", help="a\tb")
    rule = inclusion("I1", "a", source="The protocol's words,\n  quoted over two lines.")
    protocol = build(tmp_path, dialog([question], [rule]))
    assert protocol.questions["a"].text == "First line?\nSecond line."


@pytest.mark.parametrize(
    ("source", "fits"),
    [
        ("x" * MAX_SOURCE, True),
        ("x" * (MAX_SOURCE + 1), False),
        ("🙂" * (MAX_SOURCE // 2), True),  # two UTF-16 units each, as Telegram counts
        ("🙂" * (MAX_SOURCE // 2) + "x", False),
        ("x" + "\nx" * (MAX_SOURCE // 5 - 1) + "yyyy", True),  # a line break counts 4
        ("x" + "\nx" * (MAX_SOURCE // 5 - 1) + "yyyyy", False),
    ],
)
def test_a_source_longer_than_a_reason_keeps_in_one_message_is_refused(
    tmp_path: Path, source: str, fits: bool
) -> None:
    """A 60 KB quote passed, and the bot sent its verdict as 17 messages split inside the
    reason, which README says never happens."""
    data = dialog([yes_no("a")], [inclusion("I1", "a", source=source)])
    if fits:
        assert build(tmp_path, data).criteria["I1"].source == source
        return
    (problem,) = problems(tmp_path, data)
    assert problem.message.startswith("criteria.0.source (I1): is ")
    assert f"a source is at most {MAX_SOURCE:,}" in problem.message
    assert "quote the sentence that decides" in problem.fix
    assert problem.line == line_of(dump(data), "source:")


MANY = [yes_no(f"finding_{i}") for i in range(15)]


def test_a_condition_never_true_among_many_answers_is_found(tmp_path: Path) -> None:
    """3^16 combinations: past the limit, every one was not tried and the file was accepted;
    the search now stops at the first answer that decides (an age over its maximum)."""
    condition = " and ".join(q["variable"] for q in MANY) + " and age > 120"
    questions = [integer("age"), *MANY, yes_no("follow_up", when=condition)]
    data = dialog(questions, [exclusion("E1", f"({condition}) and follow_up")])
    (problem,) = problems(tmp_path, data)
    assert "'follow_up' is never asked" in problem.message


def test_a_rule_reading_a_question_not_asked_among_many_answers_is_refused(
    tmp_path: Path,
) -> None:
    """2^15 combinations of known answers: the one where nothing is found (follow_up not
    asked, the rule left open) was past the limit and not looked for."""
    condition = " or ".join(q["variable"] for q in MANY)
    questions = [*MANY, yes_no("follow_up", when=condition)]
    data = dialog(questions, [exclusion("E1", "follow_up")])
    (problem,) = problems(tmp_path, data)
    assert "rule of E1 reads 'follow_up', which is not asked when" in problem.message
    assert "finding_0 = no" in problem.message


def test_a_sex_question_with_a_third_choice_may_feed_cockcroft_gault(tmp_path: Path) -> None:
    """'other' beside female and male leaves the estimate unknown, as an unknown sex does."""
    data = dialog(
        [
            integer("age", 18, 100, unit="years"),
            choice("sex", ["female", "male", "other"]),
            number("weight_kg", 30, 250, unit="kg"),
            number("serum_creatinine_mg_dl", 0.1, 20, unit="mg/dL"),
        ],
        [exclusion("E1", "crcl < 50")],
    )
    data["derived"] = [cockcroft_gault("crcl", "mL/min")]
    protocol = build(tmp_path, data)
    body = {"age": 40, "weight_kg": 72, "serum_creatinine_mg_dl": 2}
    screened = {
        sex: verdict.build(protocol, {**body, "sex": sex}, screened_on=SCREENED_ON).verdict
        for sex in ("female", "male", "other")
    }
    assert screened == {"female": "not_eligible", "male": "eligible", "other": "unresolved"}
