"""Yes/no words and choices as people type them, read alike by the dialog, `check` and both
batch engines (CSV cells are typed answers).

Issue 13 asks for the words people type and to "keep the refusals that protect
correctness"; the README says `check` reads values "exactly as the dialog types them".
Base answer set A of ctl019 is eligible.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cli_runner import invoke
from conftest import SHIPPED
from screen_bot.answers import AnswerError, parse_text
from screen_bot.protocol.loader import load as load_protocol
from screen_bot.quick_check import judge, read
from test_ctl019_boundaries import PROTOCOL
from test_multi_select_no_choice import _csv, _row, _screen

ON = date(2026, 1, 15)


@pytest.fixture(autouse=True)
def shipped_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))


def refusal(variable: str, text: str) -> str:
    with pytest.raises(AnswerError) as info:
        parse_text(PROTOCOL.questions[variable], text, ON)
    return str(info.value)


# -- "ok" is no yes: at the bedside "hiv ok" means normal, i.e. no ------------------------------


@pytest.mark.parametrize("variable", ["hiv_infection", "burkitt", "pregnant_or_lactating"])
@pytest.mark.parametrize("text", ["ok", "OK", "Ok."])
def test_ok_is_refused_with_the_yes_no_message(variable: str, text: str) -> None:
    assert refusal(variable, text) == refusal(variable, "maybe")


def test_check_hiv_ok_is_listed_not_read_as_an_exclusion() -> None:
    reading = read(PROTOCOL, "hiv_infection ok, burkitt ok", ON)
    assert "hiv_infection" not in reading.values and "burkitt" not in reading.values
    assert [u.part for u in reading.unread] == ["hiv_infection ok", "burkitt ok"]
    (judged,) = judge(PROTOCOL, reading, ON)
    assert judged.verdict.verdict != "not_eligible"


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_csv_ok_is_a_bad_value_on_both_engines(tmp_path: Path, engine: str) -> None:
    def screened(hiv: str) -> tuple[int, list[str], str]:
        return _screen(_csv(tmp_path, _row(hiv_infection=hiv, prior_therapies="none")), engine)

    code, verdicts, errors = screened("ok")
    assert (code, verdicts) == (2, []), errors
    assert "hiv_infection" in errors and "Please answer yes / no" in errors
    assert screened("no") == (0, ["eligible"], "")


# -- a beginning that also begins a later word of another choice names no one choice -----------

PRIOR = PROTOCOL.questions["prior_therapies"]
CD19 = "other_cd19_antibody, cd19_car_t, other_cd19_therapy"  # in the question's order


@pytest.mark.parametrize("multiple", [True, False])
@pytest.mark.parametrize("typed", ["cd19", "CD19", "c", "cd"])
def test_a_beginning_of_a_later_word_too_is_refused_with_the_candidates(
    multiple: bool, typed: str
) -> None:
    question = PRIOR.model_copy(update={"multiple": multiple})
    with pytest.raises(AnswerError) as info:
        parse_text(question, typed, ON)
    assert str(info.value) == f"'{typed}' could be {CD19}: please type more of it."


def test_a_refused_beginning_in_a_multi_select_refuses_the_answer() -> None:
    with pytest.raises(AnswerError, match=f"'cd19' could be {CD19}"):
        parse_text(PRIOR, "blina, cd19", ON)


@pytest.mark.parametrize(
    ("variable", "typed", "expected"),
    [
        ("prior_therapies", "blina", ("blinatumomab",)),
        ("prior_therapies", "gene, cd19_car", ("gene_therapy", "cd19_car_t")),
        ("prior_therapies", "other_cd19_a", ("other_cd19_antibody",)),
        ("prior_malignancy", "c", "cis_skin_cervix"),  # "cervix" is its own later word
        ("sex", "f", "female"),
        ("sex", "m", "male"),
    ],
)
def test_a_beginning_of_one_choice_only_is_still_that_choice(
    variable: str, typed: str, expected: object
) -> None:
    assert parse_text(PROTOCOL.questions[variable], typed, ON) == expected


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_csv_cd19_is_a_bad_value_on_both_engines(tmp_path: Path, engine: str) -> None:
    code, verdicts, errors = _screen(_csv(tmp_path, _row(prior_therapies="cd19")), engine)
    assert (code, verdicts) == (2, []), errors
    assert f"'cd19' could be {CD19}" in errors
    prefixes = _screen(_csv(tmp_path, _row(prior_therapies="blina, cd19_car")), engine)
    assert prefixes[:2] == (0, ["not_eligible"]), prefixes


# -- check reads a multi-select's text as the dialog does --------------------------------------


@pytest.mark.parametrize(
    "typed", ["gene_therapy, blina", "blina; Gene", "blinatumomab, g", "gene_therapy, blinatumomab"]
)
def test_check_reads_a_multi_select_as_the_dialog_reads_it(typed: str) -> None:
    reading = read(PROTOCOL, f"prior_therapies {typed}", ON)
    assert reading.values["prior_therapies"] == parse_text(PRIOR, typed, ON), reading.unread
    assert reading.unread == []
    (judged,) = judge(PROTOCOL, reading, ON)
    assert "C-E5b" in {r.criterion for r in judged.verdict.reasons}


@pytest.mark.parametrize(
    "typed",
    [
        "none, blina",
        "gene_therapy, blinatumomb",
        "gene_therapy, blinx",
        "blina, cd19",
        "blina, gene therapy",
        "blina, car t",
    ],
)
def test_check_refuses_a_multi_select_the_dialog_refuses_with_its_message(typed: str) -> None:
    reading = read(PROTOCOL, f"prior_therapies {typed}, age 19", ON)
    assert "prior_therapies" not in reading.values and reading.values["age"] == 19
    (unread,) = reading.unread
    with pytest.raises(AnswerError) as info:
        parse_text(PRIOR, typed, ON)
    assert unread.why == f"prior_therapies: {str(info.value).rstrip('.')}"


# The reviewer's cases (audit12 F2): a part after a multi-select that is neither its choice
# nor a misspelling of one is read alone, with its own reason, and the choices stay used.
@pytest.mark.parametrize(
    ("typed", "stray"),
    [("blinatumomab", s) for s in ["lvf 55", "hiv no", "?", "2", "none", "lansky"]]
    + [("blinatumomab", s) for s in ["3 months ago", "Aug 14, 2025", "R-0423", "ecog 1"]]
    + [("blina", "none"), ("b", "?"), ("gene_therapy, blina", "lvf")]
    + [("blina", "bili"), ("blina", "19")],  # a name, a number: close to a choice (cd19)
)
def test_a_part_that_is_no_choice_is_read_alone_and_keeps_the_choices(
    typed: str, stray: str
) -> None:
    reading = read(PROTOCOL, f"prior_therapies {typed}, {stray}, age 40", ON)
    assert reading.values["prior_therapies"] == parse_text(PRIOR, typed, ON), reading.unread
    assert reading.values["age"] == 40
    assert reading.unread == read(PROTOCOL, stray, ON).unread, reading.unread
    assert [u.part for u in reading.unread] == [stray]


def test_a_typo_after_a_multi_select_keeps_its_hint_in_screen_bot_check() -> None:
    done = invoke("check", "-p", "ctl019-rr-ball", "prior_therapies blinatumomab, lvf 55, ecog 1")
    assert "Read: prior_therapies blinatumomab" in done.stdout, done.stdout
    assert "'lvf 55' — did you mean lvef?" in done.stdout and "'ecog 1' — not a" in done.stdout


def test_a_multi_select_ends_at_the_next_name_or_choice_word() -> None:
    text = "prior_therapies blina, gene\nsex: m, Male, age 19, ref R-0423, cns_status cns1"
    reading = read(PROTOCOL, text, ON)
    assert reading.values["prior_therapies"] == ("gene_therapy", "blinatumomab")
    assert reading.values["age"] == 19 and reading.values["cns_status"] == "CNS1"
    assert reading.referral == "R-0423"
    assert [u.why for u in reading.unread] == ["sex was given twice; used once"]


def test_screen_bot_check_names_the_anti_cd19_exclusion_of_a_typed_beginning() -> None:
    done = invoke("check", "-p", "ctl019-rr-ball", "prior_therapies gene_therapy, blina")
    assert "Read: prior_therapies gene_therapy, blinatumomab" in done.stdout, done.stdout
    assert "C-E5b" in done.stdout and "Not used" not in done.stdout


def test_a_long_part_is_not_tried_as_a_name_run_by_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-select's text may now take many parts: the names tried for a part are the
    runs of its first words up to a name's 60 characters, not every run of its words."""
    from screen_bot import quick_check

    tried: list[str] = []

    def name_key(name: str) -> str:
        tried.append(name)
        return original(name)

    original = quick_check.name_key
    monkeypatch.setattr(quick_check, "name_key", name_key)
    reading = read(PROTOCOL, "prior_therapies " + "blina " * 2000, ON)
    assert "prior_therapies" not in reading.values
    assert max(map(len, tried)) <= 60 and len(tried) < 200, len(tried)


def test_a_bare_beginning_of_a_multi_select_choice_says_where_to_write_it() -> None:
    (unread,) = read(PROTOCOL, "age 19, blina", ON).unread  # was "did you mean bili?"
    assert unread.why == "'blina' is a choice of prior_therapies: write it after the name " + (
        "(prior_therapies blina)"
    )


async def test_telegram_check_reads_a_multi_select_as_the_dialog_does(tmp_path: Path) -> None:
    from screen_bot.protocol.catalog import Catalog
    from test_telegram_transcript import Harness

    harness = Harness(tmp_path, Catalog(SHIPPED))
    await harness.application.initialize()
    chat = harness.chat()
    await chat.send("/check ctl019-rr-ball prior_therapies gene_therapy, blina")
    text = chat.last_text()
    assert "Read: prior_therapies gene_therapy, blinatumomab" in text and "C-E5b" in text
    await chat.send("/check ctl019-rr-ball prior_therapies none, blina")
    assert "prior_therapies: 'none' is not one of" in chat.last_text()
    assert "Nothing fails so far." in chat.last_text()
    await harness.application.shutdown()
    harness.db.close()


# -- "none of these" is typed like every other word: a final . or ! aside (audit23 DUP4) -------


@pytest.mark.parametrize("typed", ["none.", "None!", "nothing.", "None of these."])
def test_none_of_these_with_a_full_stop_is_none_of_them_as_no_and_unknown_are(typed: str) -> None:
    assert parse_text(PRIOR, typed, ON) == ()
    assert parse_text(PROTOCOL.questions["hiv_infection"], "no.", ON) is False
    assert parse_text(PRIOR, "unknown.", ON) is None


def test_chat_takes_none_with_a_full_stop_for_a_multi_select() -> None:
    done = invoke("chat", "-p", "ctl019-rr-ball", stdin="\n1\nno\nno\nnone.\nquit\n")
    assert done.stdout.count("Ever received any of these?") == 1, done.stdout + done.stderr
    assert "is not one of" not in done.stdout


@pytest.mark.parametrize("typed", ["none.", "None!"])
def test_check_reads_none_with_a_full_stop_as_the_dialog_does(typed: str) -> None:
    reading = read(PROTOCOL, f"age 19, prior_therapies {typed}", ON)
    assert reading.values["prior_therapies"] == () and reading.unread == []


def test_check_reads_a_bare_choice_word_with_a_full_stop_as_the_dialog_does() -> None:
    reading = read(PROTOCOL, "age 19, male.", ON)
    assert reading.values["sex"] == parse_text(PROTOCOL.questions["sex"], "male.", ON) == "male"
    assert reading.unread == []


def test_a_choice_or_synonym_ending_with_a_full_stop_is_read_by_check_and_the_dialog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site's own file may have a choice "not stated." or a synonym "n.s.": the word typed
    and the choice are compared in the same typed form (review B2 of round 23)."""
    source = (SHIPPED / "blina-dli.yaml").read_text(encoding="utf-8")
    changed = source.replace(
        "    choices: [female, male]\n    synonyms: {woman: female, man: male}",
        '    choices: [female, male, "not stated."]\n'
        '    synonyms: {woman: female, man: male, "n.s.": "not stated."}',
    )
    assert changed != source
    (tmp_path / "blina-dli.yaml").write_text(changed, encoding="utf-8")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(tmp_path))
    for typed in ("not stated.", "n.s."):
        done = invoke("check", "-p", "blina-dli", f"age 40, {typed}")
        assert "not stated." in done.stdout and "not a question" not in done.stdout, done.stdout
    protocol = load_protocol(tmp_path / "blina-dli.yaml")
    assert parse_text(protocol.questions["sex"], "n.s.", ON) == "not stated."
