"""Grading quiz answers, and scores that persist per trainee."""

from __future__ import annotations

import random
import stat
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import DIALOG, SHIPPED
from screen_bot.protocol import Protocol, load
from screen_bot.rules.evaluation import context, evaluate
from screen_bot.storage import Database
from screen_bot.training.cases import Case, baselines, generate_cases
from screen_bot.training.ids import id_matches
from screen_bot.training.quiz import Answer, Quiz, case_text, grade, missed, parse_answer
from screen_bot.training.scores import ScoreBook, progress_text
from screen_bot.training.terminal import run_quiz
from screen_bot.verdict import VerdictValue, build


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load(DIALOG)


@pytest.fixture(scope="module")
def baseline(protocol: Protocol) -> dict[str, Any]:
    for seed in range(1, 40):  # the random search finds such a man for most seeds
        pool = baselines(protocol, random.Random(seed))
        found = [b for b in pool if b.get("sex") == "male" and b.get("crcl_ml_min") is not None]
        if found:
            return found[0]
    raise AssertionError("no eligible man with a measured clearance in 39 seeds")


def make_case(protocol: Protocol, baseline: dict[str, Any], **changes: Any) -> Case:
    answers = {**baseline, **changes}
    return Case(answers, (), tuple(changes), build(protocol, answers))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eligible", Answer("eligible")),
        ("  Eligible ", Answer("eligible")),
        ("not eligible", Answer("not_eligible")),
        ("not_eligible E3a", Answer("not_eligible", "e3a")),
        ("NE i8e", Answer("not_eligible", "i8e")),
        ("n, E3", Answer("not_eligible", "e3")),
        ("E3c", Answer("not_eligible", "e3c")),
        ("unresolved", Answer("unresolved")),
        ("?", Answer("unresolved")),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_answer(text: str, expected: Answer | None) -> None:
    assert parse_answer(text) == expected


def test_criterion_ids_match_case_insensitively_and_by_part() -> None:
    assert id_matches("e3c", "E3c")
    assert id_matches("E3", "E3c")
    assert id_matches("i8", "I8d")
    assert not id_matches("E1", "E13")
    assert not id_matches("I1", "I10")
    assert not id_matches("E", "E3a")
    assert not id_matches("E3c", "E3")


def test_eligible_case(protocol: Protocol, baseline: dict[str, Any]) -> None:
    case = make_case(protocol, baseline, lvef_percent=60)  # exactly at E3a's limit
    assert case.expected == "eligible"
    assert grade(protocol, case, Answer("eligible")).correct
    wrong = grade(protocol, case, Answer("not_eligible", "E3a"))
    assert not wrong.correct
    assert "The answer is ELIGIBLE" in wrong.feedback
    assert "You named E3a LVEF < 60 %: does not apply (lvef_percent = 60)" in wrong.feedback
    assert not grade(protocol, case, Answer("unresolved")).correct


def test_not_eligible_case_needs_a_failed_criterion(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    case = make_case(protocol, baseline, lvef_percent=55)  # I8e met, E3a applies
    assert case.failed == ["E3a"]
    for named in ("E3a", "e3a", "E3", "e3"):
        result = grade(protocol, case, Answer("not_eligible", named))
        assert result.correct and result.feedback.startswith("✓ Correct"), named
        assert "“Left ventricular ejection fraction (EF) <60%.”" in result.feedback
    wrong = grade(protocol, case, Answer("not_eligible", "I8e"))
    assert not wrong.correct
    assert "I8e is not what failed" in wrong.feedback
    assert "You named I8e LVEF ≥ 50 %: met" in wrong.feedback
    missing = grade(protocol, case, Answer("not_eligible"))
    assert not missing.correct and "name the criterion" in missing.feedback
    assert not grade(protocol, case, Answer("eligible")).correct


def test_any_failed_criterion_is_accepted(protocol: Protocol, baseline: dict[str, Any]) -> None:
    case = make_case(protocol, baseline, bilirubin_x_uln=3.1)  # I8c and E5 both fail
    assert case.failed == ["I8c", "E5"]
    assert grade(protocol, case, Answer("not_eligible", "E5")).correct
    assert grade(protocol, case, Answer("not_eligible", "i8c")).correct
    assert not grade(protocol, case, Answer("not_eligible", "E6a")).correct


def test_unresolved_case(protocol: Protocol, baseline: dict[str, Any]) -> None:
    case = make_case(protocol, baseline, expected_survival_over_3_months=None)
    assert case.expected == "unresolved"
    result = grade(protocol, case, Answer("unresolved"))
    assert result.correct
    assert "I9 expected survival > 3 months" in result.feedback
    assert "investigator judgment" in result.feedback
    assert not grade(protocol, case, Answer("eligible")).correct


def test_an_unresolved_case_names_every_criterion_an_item_keeps_open(
    protocol: Protocol, baseline: dict[str, Any], tmp_path: Path
) -> None:
    """lvef_percent unknown keeps I8e and E3a open: the explanation quotes both, and a wrong
    answer counts as a miss of both (the next quiz weighs E3a too)."""
    case = make_case(protocol, baseline, lvef_percent=None)
    assert [(i.variable, i.criteria) for i in case.verdict.open_items] == [
        ("lvef_percent", ["I8e", "E3a"])
    ]
    feedback = grade(protocol, case, Answer("unresolved")).feedback
    for cid in ("I8e", "E3a"):
        c = protocol.criteria[cid]
        assert f"  {cid} {c.label}: lvef_percent unknown (missing data): “{c.source}”" in feedback
    assert missed(protocol, case, Answer("eligible")) == ["I8e", "E3a"]
    book = ScoreBook(Database(tmp_path / "scores.sqlite3"))
    Quiz(protocol, [case], "t", seed=0, book=book).submit(Answer("eligible"))
    assert book.misses("t", protocol.id) == Counter({"I8e": 1, "E3a": 1})
    assert case.criteria == ["I8e", "E3a"]


def test_naming_a_criterion_open_to_confirm_is_graded_wrong_with_why(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    # no measured clearance; the Cockcroft-Gault estimate is low, so E6b is open to confirm
    case = make_case(protocol, baseline, crcl_ml_min=None, weight_kg=48, serum_creatinine_mg_dl=6)
    assert case.expected == "unresolved"
    assert [(i.criterion, i.kind) for i in case.verdict.open_items] == [("E6b", "confirm")]
    result = grade(protocol, case, Answer("not_eligible", "E6b"))
    assert not result.correct
    assert "The answer is UNRESOLVED" in result.feedback
    assert (
        "You named E6b 24-hour CrCl < 50 mL/min: open to confirm by measurement" in result.feedback
    )
    assert "not failed" in result.feedback
    assert "To settle it: measure a 24-hour creatinine clearance." in result.feedback


def test_case_text_shows_answers_not_the_verdict(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    case = make_case(protocol, baseline, lvef_percent=55, qtc_ms=None)
    text = case_text(protocol, case, 2, 20)
    assert text.startswith("Case 2/20")
    assert "lvef_percent: 55 %" in text
    assert "qtc_ms: unknown" in text
    assert "E3a" not in text and "NOT ELIGIBLE" not in text


def test_scores_persist_and_weigh_the_next_quiz(protocol: Protocol, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "scores.sqlite3"
    book = ScoreBook(Database(path))
    quiz = Quiz.start(protocol, "42", count=4, seed=3, book=book)
    answers = iter(["?"] * 4)  # "unresolved" for every case
    output: list[str] = []
    assert run_quiz(quiz, read=lambda _prompt: next(answers), write=output.append) == 4
    assert output[-1].startswith(f"Score: {quiz.correct}/4")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = ScoreBook(Database(path))  # a second run, a new connection
    progress = again.progress("42", protocol.id)
    assert (progress.quizzes, progress.answered, progress.correct) == (1, 4, quiz.correct)
    missed = again.misses("42", protocol.id)
    wrong = [c for c in quiz.cases if c.expected != "unresolved"]
    # only what each wrong answer missed: the failed criteria, or an eligible case's aim
    expected = Counter(
        cid for c in wrong for cid in (c.failed if c.expected == "not_eligible" else c.focus)
    )
    assert missed == expected
    assert again.progress("someone else", protocol.id).answered == 0
    assert f"{quiz.correct}/4 correct" in progress_text(progress)

    second = Quiz.start(protocol, "42", count=2, seed=3, book=again)
    second.submit(Answer("eligible"))
    assert again.progress("42", protocol.id).quizzes == 2
    assert again.progress("42", protocol.id).last_quiz == (second.correct, 1)


def test_a_seed_gives_every_trainee_the_same_cases(protocol: Protocol, tmp_path: Path) -> None:
    # a seed is a class's shared list: a trainee's misses weigh only an unseeded quiz
    book = ScoreBook(Database(tmp_path / "scores.sqlite3"))
    history = Quiz.start(protocol, "b", count=20, seed=7, book=book)
    while not history.finished:
        history.submit(Answer("eligible"))
    weak = book.misses("b", protocol.id)
    assert weak  # trainee b has a history of misses, trainee a none

    def cases(quiz: Quiz) -> list[str]:
        return [case_text(protocol, case) for case in quiz.cases]

    fresh = cases(Quiz.start(protocol, "a", count=5, seed=42, book=book))
    assert cases(Quiz.start(protocol, "b", count=5, seed=42, book=book)) == fresh
    assert cases(Quiz.start(protocol, "b", 5, 42, book, weak)) == fresh  # as Telegram calls it


def test_quiz_stops_on_end_of_input(protocol: Protocol) -> None:
    quiz = Quiz.start(protocol, "cli", count=3, seed=1)
    answers = iter(["eligible"])

    def read(_prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    output: list[str] = []
    assert run_quiz(quiz, read=read, write=output.append) == 1
    assert output[-1].startswith(f"Score: {quiz.correct}/1")


def test_terminal_asks_for_the_criterion(protocol: Protocol, baseline: dict[str, Any]) -> None:
    case = make_case(protocol, baseline, lvef_percent=55)
    quiz = Quiz(protocol, [case], "cli", seed=0)
    answers = iter(["huh", "not eligible", "e3"])
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    output: list[str] = []
    run_quiz(quiz, read=read, write=output.append)
    assert prompts == ["Your verdict? ", "Your verdict? ", "Which criterion failed? "]
    assert any(line.startswith("Please answer") for line in output)
    assert quiz.correct == 1


def test_a_criterion_the_protocol_does_not_have_is_not_scored(
    protocol: Protocol, baseline: dict[str, Any], tmp_path: Path
) -> None:
    # a typo or a stray word is no answer: the same case again, nothing kept in the scores
    book = ScoreBook(Database(tmp_path / "scores.sqlite3"))
    case = make_case(protocol, baseline, lvef_percent=55)
    quiz = Quiz(protocol, [case], "cli", seed=0, book=book)
    answers = iter(["n I8z", "not eligible", "wrong", "ne e3"])
    output: list[str] = []
    assert run_quiz(quiz, read=lambda _prompt: next(answers), write=output.append) == 1
    assert "not a criterion of blina-dli: closest I8c, I8d, I8e; the same case again." in output
    everything = ", ".join(protocol.criteria)
    assert f"not a criterion of blina-dli: its criteria are {everything}; the same case again." in (
        output
    )
    assert quiz.correct == 1
    progress = book.progress("cli", protocol.id)
    assert (progress.answered, progress.correct) == (1, 1)


def test_a_quit_word_at_which_criterion_ends_the_quiz(
    protocol: Protocol, baseline: dict[str, Any], tmp_path: Path
) -> None:
    book = ScoreBook(Database(tmp_path / "scores.sqlite3"))
    case = make_case(protocol, baseline, lvef_percent=55)
    quiz = Quiz(protocol, [case], "cli", seed=0, book=book)
    answers = iter(["n", "q"])
    assert run_quiz(quiz, read=lambda _prompt: next(answers), write=lambda _: None) == 0
    assert book.progress("cli", protocol.id).answered == 0


def test_feedback_reads_the_case_on_its_own_screening_date() -> None:
    # a Telegram quiz may run past midnight: a CD19 sample 30 days old on the case's date
    # (C-I2: within 3 months) is what the case is about, whatever today is
    ctl = load(SHIPPED / "ctl019-rr-ball.yaml")
    day = date(2026, 1, 15)
    pool = baselines(ctl, random.Random(1), screened_on=day)
    answers = next(b for b in pool if b.get("cd19_flow_date") is not None)
    answers |= {"cd19_flow_date": day - timedelta(days=30), "cd19_flow_positive": True}
    case = Case(answers, ("C-I2",), ("cd19_flow_date",), build(ctl, answers, screened_on=day))
    assert case.expected == "eligible"
    result = grade(ctl, case, Answer("not_eligible", "C-I2"))
    assert "You named C-I2 relapsed - CD19 by flow within 3 months: met (" in result.feedback


def test_a_named_criterion_is_worded_by_its_kind(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    """An exclusion that did not fail "does not apply" (never "met", which reads as "it
    holds"), one that failed "applies"; an open one says what keeps it open."""
    eligible = make_case(protocol, baseline, lvef_percent=75)
    feedback = grade(protocol, eligible, Answer("not_eligible", "E3a")).feedback
    assert "You named E3a LVEF < 60 %: does not apply (lvef_percent = 75)" in feedback
    failing = make_case(protocol, baseline, lvef_percent=45)  # I8e and E3a both fail
    feedback = grade(protocol, failing, Answer("eligible", "E3a")).feedback
    assert "You named E3a LVEF < 60 %: failed: it applies (lvef_percent = 45)" in feedback
    feedback = grade(protocol, failing, Answer("unresolved", "I8e")).feedback
    assert "You named I8e LVEF ≥ 50 %: failed: it is not met (lvef_percent = 45)" in feedback
    unknown = make_case(protocol, baseline, lvef_percent=None)
    feedback = grade(protocol, unknown, Answer("not_eligible", "E3a")).feedback
    assert "You named E3a LVEF < 60 %: open: lvef_percent unknown (missing data)" in feedback


@pytest.mark.parametrize(("name", "seed"), [("blina-dli", 42), ("ctl019-rr-ball", 7)])
def test_a_named_exclusion_is_never_called_met(name: str, seed: int) -> None:
    """Over a seeded quiz, every exclusion named in a wrong answer: one that did not fail
    is worded "does not apply", whatever the case."""
    shipped = load(SHIPPED / f"{name}.yaml")
    exclusions = [c for c in shipped.criteria.values() if c.kind == "exclusion"]
    named = 0
    for case in generate_cases(shipped, 12, seed):
        wrong: VerdictValue = "unresolved" if case.expected != "unresolved" else "eligible"
        found = evaluate(shipped, case.answers, case.verdict.screened_on)
        status = {o.criterion: o.status for o in found}
        for c in exclusions:
            feedback = grade(shipped, case, Answer(wrong, c.id)).feedback
            assert f"You named {c.id} {c.label}: met" not in feedback
            if status[c.id] == "met":
                assert f"You named {c.id} {c.label}: does not apply" in feedback
                named += 1
    assert named


def _kidney_case(protocol: Protocol, base: dict[str, Any], focus: str, **changes: Any) -> Case:
    answers = {**base, **changes}
    day = date(2026, 11, 26)
    return Case(answers, (focus,), tuple(changes), build(protocol, answers, screened_on=day))


def test_feedback_shows_an_estimate_as_the_verdict_does(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    """The dictionary: an estimate is shown rounded to one decimal, with its inputs, and
    said to be one: crcl (estimated) = 52.4, not crcl = 52.4196."""
    kidney = {"age": 39, "sex": "male", "weight_kg": 71, "crcl_ml_min": None}
    case = _kidney_case(
        protocol, baseline, "I8d", **kidney, serum_creatinine_mg_dl=1.9, creatinine_x_uln=1.2
    )
    assert case.expected == "eligible"
    feedback = grade(protocol, case, Answer("eligible")).feedback
    assert "I8d creatinine ≤ 2 × ULN or CrCl ≥ 50: met (crcl (estimated) = 52.4, " in feedback
    assert "crcl = " not in feedback
    assert (
        "Estimated: crcl (creatinine clearance) 52.4 mL/min (rounded to 0.1; the unrounded "
        "value decides) by Cockcroft-Gault from age 39, sex male, weight_kg 71, "
        "serum_creatinine_mg_dl 1.9"
    ) in feedback
    named = grade(protocol, case, Answer("not_eligible", "E6b")).feedback
    assert (
        "You named E6b 24-hour CrCl < 50 mL/min: does not apply (crcl (estimated) = 52.4)" in named
    )


def test_a_confirm_item_shows_the_estimate_that_keeps_it_open(
    protocol: Protocol, baseline: dict[str, Any]
) -> None:
    kidney = {"age": 65, "sex": "male", "weight_kg": 71, "crcl_ml_min": None}
    case = _kidney_case(
        protocol, baseline, "E6b", **kidney, serum_creatinine_mg_dl=1.5, creatinine_x_uln=1.2
    )
    assert [(i.criterion, i.kind) for i in case.verdict.open_items] == [("E6b", "confirm")]
    feedback = grade(protocol, case, Answer("unresolved")).feedback
    assert (
        "  E6b 24-hour CrCl < 50 mL/min (crcl (estimated) = 49.3): crcl_ml_min unknown "
        "(to confirm by measurement): “"
    ) in feedback
    assert "Estimated: crcl (creatinine clearance) 49.3 mL/min" in feedback
    assert "from age 65, sex male, weight_kg 71, serum_creatinine_mg_dl 1.5" in feedback
    named = grade(protocol, case, Answer("not_eligible", "E6b")).feedback
    assert (
        "You named E6b 24-hour CrCl < 50 mL/min: open to confirm by measurement (it applies "
        "only on an estimate), not failed (crcl (estimated) = 49.3)"
    ) in named


@pytest.fixture(scope="module")
def ctl() -> Protocol:
    return load(SHIPPED / "ctl019-rr-ball.yaml")


@pytest.fixture(scope="module")
def ctl_adult(ctl: Protocol) -> dict[str, Any]:
    """An eligible adult man without a measured GFR (C-I6a reads CKD-EPI)."""
    day = date(2026, 11, 26)
    for seed in range(1, 40):
        for b in baselines(ctl, random.Random(seed), screened_on=day):
            if b.get("age", 0) >= 18 and b.get("sex") == "male":
                return b
    raise AssertionError("no eligible adult man in 39 seeds")


def test_ctl019_feedback_shows_the_gfr_estimate_with_its_formula(
    ctl: Protocol, ctl_adult: dict[str, Any]
) -> None:
    met = _kidney_case(
        ctl, ctl_adult, "C-I6a", age=22, serum_creatinine_mg_dl=1.7, measured_gfr_ml_min_173=None
    )
    assert met.expected == "eligible"
    feedback = grade(ctl, met, Answer("eligible")).feedback
    assert "gfr (estimated) = 57.7" in feedback and "gfr = " not in feedback
    assert (
        "Estimated: gfr (glomerular filtration rate) 57.7 mL/min/1.73 m² (rounded to 0.1; the "
        "unrounded value decides) by CKD-EPI 2021 from age 22, sex male, "
        "serum_creatinine_mg_dl 1.7"
    ) in feedback
    # above the adult limit, CKD-EPI < 60 only leaves C-I6a to confirm by measurement
    confirm = _kidney_case(
        ctl, ctl_adult, "C-I6a", age=22, serum_creatinine_mg_dl=1.8, measured_gfr_ml_min_173=None
    )
    assert [(i.criterion, i.kind) for i in confirm.verdict.open_items] == [("C-I6a", "confirm")]
    feedback = grade(ctl, confirm, Answer("unresolved")).feedback
    assert "gfr (estimated) = " in feedback and "gfr = " not in feedback
    assert "Estimated: gfr (glomerular filtration rate) " in feedback


@pytest.mark.parametrize(("name", "seed"), [("blina-dli", 1), ("ctl019-rr-ball", 7)])
def test_a_seeded_quiz_never_shows_an_estimate_as_a_plain_value(name: str, seed: int) -> None:
    """Whatever the case and the answer, a value that was estimated is marked and has its
    Estimated line."""
    shipped = load(SHIPPED / f"{name}.yaml")
    readers = {d: shipped.criteria_reading.get(d, []) for d in shipped.derived}
    seen = 0
    for case in generate_cases(shipped, 40, seed):
        estimated = context(shipped, case.answers, case.verdict.screened_on).estimated
        for derived in estimated:
            for cid in readers[derived] or [None]:
                answer = Answer("eligible" if case.expected != "eligible" else "unresolved", cid)
                feedback = grade(shipped, case, answer).feedback
                assert f"{derived} = " not in feedback
                if f"{derived} (estimated) = " in feedback:
                    seen += 1
                    assert f"Estimated: {derived} (" in feedback
    assert seen
