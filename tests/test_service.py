"""The screening service on its own: results as data, saved before they are returned."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import screen_bot.service as service_module
import screen_bot.session as session_module
from conftest import DIALOG, SHIPPED
from patients import ELIGIBLE
from screen_bot.protocol.catalog import Catalog
from screen_bot.results import (
    GONE,
    NO_SCREENING,
    PAUSED,
    PROTOCOL_BROKEN,
    PROTOCOL_CHANGED,
    PROTOCOL_MISSING,
    REFERRAL_TAKEN,
    STALE,
    Asked,
    Cancelled,
    Checked,
    Finished,
    Invalid,
    Problem,
    Refused,
    Result,
    Resumed,
    Retired,
    Started,
    Unusual,
)
from screen_bot.service import DEFAULT_LIFETIME, ScreeningService
from screen_bot.settings import Settings
from screen_bot.storage import Database, Store, ledger, sessions
from steps import step_line
from stores import StoreUnderTest

OWNER = 5


@pytest.fixture
def db(store: StoreUnderTest) -> Iterator[Store]:
    """The service on each store: the SQLite file, a PostgreSQL database."""
    with store.open() as opened:
        yield opened


@pytest.fixture
def service(db: Database, catalog: Catalog) -> Iterator[ScreeningService]:
    yield ScreeningService(catalog, db, channel="cli")


def only(results: list[Result], kind: type) -> list:
    return [r for r in results if isinstance(r, kind)]


def test_start_asks_the_first_question_and_saves_it(
    service: ScreeningService, db: Database
) -> None:
    results = service.start(OWNER, referral="R-1")
    (started,) = only(results, Started)
    (asked,) = only(results, Asked)
    assert (started.label, started.paused) == ("R-1", None)
    assert asked.question.variable == "age" and asked.progress[0] == 1
    assert [o.kind for o in asked.options] == ["unknown", "back"]
    saved = sessions.active(db.read(), OWNER)
    assert saved is not None and saved.id == asked.session_id and saved.step == asked.step


def test_refusals_change_nothing(service: ScreeningService, db: Database) -> None:
    assert service.answer(OWNER, "42") == [Refused(NO_SCREENING)]
    assert only(service.start(OWNER, referral="John Smith"), Problem)
    assert only(service.start(OWNER, protocol_id="nope"), Problem)
    assert sessions.count(db.read()) == 0
    first = only(service.start(OWNER, referral="R-1"), Asked)[0]
    assert service.start(OWNER, referral="R-1") == [Refused(REFERRAL_TAKEN, "R-1")]
    second = service.start(OWNER, referral="R-2")
    assert only(second, Started)[0].paused == "R-1"
    assert service.press(OWNER, first.session_id, first.step, "u") == [Refused(PAUSED)]
    current = only(second, Asked)[0]
    assert service.press(OWNER, current.session_id, current.step + 1, "u") == [Refused(STALE)]
    assert sessions.active(db.read(), OWNER).answers == {}


def test_a_button_of_another_chats_screening_finds_nothing(
    service: ScreeningService, db: Database
) -> None:
    """Button data carrying another owner's session id (forged, or a copied message) is a
    screening this chat does not have: gone, not merely paused, and the other is untouched."""
    theirs = only(service.start(OWNER, referral="R-1"), Asked)[0]
    other = OWNER + 1
    for before in (None, only(service.start(other, referral="R-2"), Asked)[0]):
        assert service.press(other, theirs.session_id, theirs.step, "u") == [Refused(GONE)], before
    kept = sessions.active(db.read(), OWNER)
    assert kept is not None and kept.id == theirs.session_id
    assert (kept.step, kept.answers) == (theirs.step, {})


def test_input_addressed_to_a_question_goes_to_its_screening_or_changes_nothing(
    service: ScreeningService, db: Database
) -> None:
    """A terminal dialog addresses each input to the question it showed (``to``): it goes to
    that screening, active or not, and once that screening has moved past the step shown,
    or is gone, no call changes anything. (Audit 17, findings 4 and 5: every terminal
    dialog is one owner, and input went to whichever screening was active: another dialog's,
    on PostgreSQL any desk's.)"""
    mine = only(service.start(OWNER, referral="R-A1"), Asked)[0]
    theirs = only(service.start(OWNER, referral="R-B1"), Asked)[0]  # now the active one
    moved = only(service.answer(OWNER, "42", to=mine), Asked)[0]
    assert (moved.session_id, moved.question.variable) == (mine.session_id, "b_all_cd19_positive")
    assert sessions.get(db.read(), OWNER, theirs.session_id).answers == {}

    def kept() -> list[tuple[Any, ...]]:
        return [tuple(r) for r in db.read().all("SELECT * FROM open_sessions ORDER BY referral")]

    before = kept()
    calls = {
        "answer": lambda: service.answer(OWNER, "30", to=mine),
        "skip": lambda: service.skip(OWNER, to=mine),
        "back": lambda: service.back(OWNER, to=mine),
        "restart": lambda: service.restart(OWNER, to=mine),
        "status": lambda: service.status(OWNER, to=mine),
        "cancel": lambda: service.cancel(OWNER, to=mine),
    }
    for name, call in calls.items():  # the step ``mine`` showed was answered
        assert call() == [Refused(STALE)], name
        assert kept() == before, name
    assert only(service.answer(OWNER, "35", to=theirs), Asked)[0].session_id == theirs.session_id
    assert sessions.get(db.read(), OWNER, mine.session_id).values() == {"age": 42}
    assert sessions.get(db.read(), OWNER, theirs.session_id).values() == {"age": 35}
    service.cancel(OWNER, "R-A1")
    before = kept()
    for name, call in calls.items():
        assert call() == [Refused(GONE)], name
        assert kept() == before, name


def test_a_bad_answer_asks_again_and_a_good_one_moves_on(
    service: ScreeningService, db: Database
) -> None:
    service.start(OWNER)
    service.shown(OWNER, sessions.active(db.read(), OWNER).id, 41)
    results = service.answer(OWNER, "forty")
    assert [type(r) for r in results] == [Retired, Invalid, Asked]
    assert only(results, Asked)[0].question.variable == "age"
    moved = service.answer(OWNER, "42")
    (retired,) = only(moved, Retired)
    assert (retired.message_id, retired.how, retired.value) == (41, "answered", 42)
    assert only(moved, Asked)[0].question.variable == "b_all_cd19_positive"


def test_finishing_logs_once_and_closes_the_screening(
    service: ScreeningService, db: Database
) -> None:
    service.start(OWNER, referral="R-9")
    (finished,) = only(service.answer(OWNER, "70"), Finished)
    assert finished.verdict.verdict == "not_eligible" and finished.log_numbers == (1,)
    assert "NOT ELIGIBLE" in finished.text
    (record,) = ledger.records(db.read())
    assert (record.channel, record.coordinator, record.referral) == ("cli", "cli", "R-9")
    assert sessions.count(db.read()) == 0


def test_a_screening_under_a_changed_dialog_file_is_removed(
    service: ScreeningService, db: Database
) -> None:
    service.start(OWNER)
    with db.transaction() as tx:
        session = sessions.active(tx, OWNER)
        session.protocol_sha256 = "0" * 64
        sessions.save(tx, OWNER, session, lifetime=DEFAULT_LIFETIME)
    assert service.answer(OWNER, "42") == [Refused(PROTOCOL_CHANGED, session.id)]
    assert sessions.count(db.read()) == 0


def test_a_screening_whose_file_broke_is_kept_until_the_file_is_fixed(
    db: Database, tmp_path: Path
) -> None:
    """A file broken mid-edit is not a changed protocol: the screening was removed, and
    the file restored as it was found nothing to resume."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    file, good = dialogs / "blina-dli.yaml", DIALOG.read_text(encoding="utf-8")
    file.write_text(good, encoding="utf-8")

    def serving() -> ScreeningService:  # the dialogs as a new process loads them
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    serving().start(OWNER, referral="R-1")
    serving().start(OWNER, referral="R-2")  # R-1 paused
    file.write_text(good.replace("14 <= age <= 65", "14 <= agee <= 65"), encoding="utf-8")
    (refused,) = serving().resume(OWNER, "R-1")
    assert (refused.reason, refused.detail) == (PROTOCOL_BROKEN, "R-1")
    assert refused.why.startswith(f"{file} is broken: line 319: 'agee' is neither a question")
    assert sessions.active(db.read(), OWNER).referral == "R-2"  # left as it was
    (refused,) = serving().answer(OWNER, "42")  # the active one: kept, paused
    assert (refused.reason, refused.detail) == (PROTOCOL_BROKEN, "R-2")
    assert sessions.active(db.read(), OWNER) is None and sessions.count(db.read()) == 2
    file.write_text(good, encoding="utf-8")  # fixed: the protocol is the one it began under
    assert only(serving().resume(OWNER, "R-1"), Resumed) == [Resumed("R-1")]
    assert only(serving().answer(OWNER, "42"), Asked)[0].question.variable != "age"
    file.write_text(good.replace("14 <= age <= 65", "14 <= age <= 75"), encoding="utf-8")
    assert serving().resume(OWNER, "R-2") == [Refused(PROTOCOL_CHANGED, "R-2")]  # a real change
    assert [o.referral for o in sessions.list_open(db.read(), OWNER)] == ["R-1"]
    old = good.replace("14 <= age <= 65", "14 <= agee <= 65")  # a broken copy, same id
    (dialogs / "blina-dli-old.yaml").write_text(old, encoding="utf-8")
    assert serving().resume(OWNER, "R-1") == [Refused(PROTOCOL_CHANGED, "R-1")]  # its file is valid


def test_a_screening_whose_file_is_missing_for_a_while_is_kept_until_it_is_back(
    db: Database, tmp_path: Path
) -> None:
    """An editor that saves by renaming the file away and writing a new one (vim), or a file
    moved out and back: an answer in that gap removed the screening and every answer, so
    the file back byte for byte found nothing to resume. It is kept, paused, as for a
    broken file, and goes on once the file is back unchanged; back changed, it ends."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    file, away = dialogs / "blina-dli.yaml", tmp_path / "blina-dli.yaml~"
    good = DIALOG.read_text(encoding="utf-8")
    file.write_text(good, encoding="utf-8")

    def serving() -> ScreeningService:  # the dialogs as a new process loads them
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    serving().start(OWNER, referral="R-1")
    asked = only(serving().answer(OWNER, "42"), Asked)[0]
    file.rename(away)
    missing = Refused(PROTOCOL_MISSING, "R-1", why="blina-dli")
    assert serving().answer(OWNER, "yes") == [missing]
    assert sessions.active(db.read(), OWNER) is None and sessions.count(db.read()) == 1
    assert serving().resume(OWNER, "R-1") == [missing]
    away.rename(file)  # back, the same bytes
    assert only(serving().resume(OWNER, "R-1"), Resumed) == [Resumed("R-1")]
    kept = sessions.active(db.read(), OWNER)
    assert kept.step == asked.step and kept.values() == {"age": 42}

    file.rename(away)
    assert serving().status(OWNER) == [missing]
    file.write_text(good.replace("14 <= age <= 65", "14 <= age <= 75"), encoding="utf-8")
    assert serving().resume(OWNER, "R-1") == [Refused(PROTOCOL_CHANGED, "R-1")]  # back, other rules
    assert sessions.count(db.read()) == 0


def test_an_all_screening_is_kept_while_a_file_it_began_with_is_missing(
    db: Database, tmp_path: Path
) -> None:
    """The set of every protocol loses a member while its file is away: not a changed set
    (the screening would end), a missing file (kept, paused). The set it began with back, it
    goes on; a file added meanwhile is a changed set, and it ends."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    for name in ("blina-dli.yaml", "ctl019-rr-ball.yaml"):
        (dialogs / name).write_bytes((SHIPPED / name).read_bytes())
    ctl, away = dialogs / "ctl019-rr-ball.yaml", tmp_path / "ctl019-rr-ball.yaml.bak"

    def serving() -> ScreeningService:
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    assert only(serving().start(OWNER, protocol_id="all", referral="R-7"), Asked)
    serving().answer(OWNER, "40")
    ctl.rename(away)
    missing = Refused(PROTOCOL_MISSING, "R-7", why="ctl019-rr-ball")
    assert serving().answer(OWNER, "yes") == [missing]
    assert serving().resume(OWNER, "R-7") == [missing]
    away.rename(ctl)
    assert only(serving().resume(OWNER, "R-7"), Resumed) == [Resumed("R-7")]
    assert sessions.active(db.read(), OWNER).values() == {"age": 40}

    ctl.rename(away)
    assert serving().answer(OWNER, "yes") == [missing]
    away.rename(ctl)  # back, and a new protocol beside it
    blina = DIALOG.read_text(encoding="utf-8")
    renamed = blina.replace("id: blina-dli", "id: blina-dli-2", 1)
    assert renamed != blina
    (dialogs / "blina-dli-2.yaml").write_text(renamed, encoding="utf-8")
    assert serving().resume(OWNER, "R-7") == [Refused(PROTOCOL_CHANGED, "R-7")]  # another set now
    assert sessions.count(db.read()) == 0


def all_site(tmp_path: Path, ctl_version: str = "0.2") -> Path:
    """A dialogs folder with blina-dli and ctl019-rr-ball, ctl019 at ``ctl_version``."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_bytes((SHIPPED / "blina-dli.yaml").read_bytes())
    ctl = (SHIPPED / "ctl019-rr-ball.yaml").read_text(encoding="utf-8")
    versioned = ctl.replace('version: "0.2"', f'version: "{ctl_version}"', 1)
    assert f'version: "{ctl_version}"' in versioned
    (dialogs / "ctl019-rr-ball.yaml").write_text(versioned, encoding="utf-8")
    return dialogs


def test_an_all_screening_ends_when_a_file_changes_though_a_version_holds_a_plus(
    db: Database, tmp_path: Path
) -> None:
    """The protocols an ``all`` screening began with were read back by splitting the set's
    version text on " + ": a version "0.2 + amendment 1" named a protocol 'amendment', in
    no file, so a real change to the file paused the screening for good ("no dialog file
    holds amendment now") instead of ending it. They are kept as ids, stored with it."""
    dialogs = all_site(tmp_path, "0.2 + amendment 1")

    def serving() -> ScreeningService:
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    assert only(serving().start(OWNER, protocol_id="all", referral="R-7"), Asked)
    serving().answer(OWNER, "40")
    with (dialogs / "ctl019-rr-ball.yaml").open("a", encoding="utf-8") as ctl:
        ctl.write("\n# reviewed\n")  # a real change to the file
    assert serving().answer(OWNER, "yes") == [Refused(PROTOCOL_CHANGED, "R-7")]
    assert sessions.count(db.read()) == 0


def test_an_all_screening_stored_without_its_members_ends_when_the_set_changes(
    db: Database, tmp_path: Path
) -> None:
    """A screening stored by a version that kept no member ids still loads, and a changed
    set ends it, a member gone too (as then): which protocols it began with is not known."""
    dialogs = all_site(tmp_path)
    ctl = dialogs / "ctl019-rr-ball.yaml"

    def serving() -> ScreeningService:
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    assert only(serving().start(OWNER, protocol_id="all", referral="R-7"), Asked)
    serving().answer(OWNER, "40")
    kept = sessions.active(db.read(), OWNER).protocol_members
    assert kept == ["blina-dli", "ctl019-rr-ball"]  # stored and read back
    with db.transaction() as tx:
        (body,) = tx.one("SELECT body FROM open_sessions WHERE owner = ?", (OWNER,))
        older = json.loads(body)
        del older["protocol_members"]
        tx.execute("UPDATE open_sessions SET body = ? WHERE owner = ?", (json.dumps(older), OWNER))
    assert sessions.active(db.read(), OWNER).protocol_members is None
    ctl.rename(tmp_path / "ctl019-rr-ball.yaml.bak")
    assert serving().answer(OWNER, "yes") == [Refused(PROTOCOL_CHANGED, "R-7")]
    assert sessions.count(db.read()) == 0


def test_a_paused_screening_says_why_to_answers_status_and_buttons(
    db: Database, tmp_path: Path
) -> None:
    """Once a broken (or missing) file paused the screening, every later answer and /status
    said "No screening is open", and a button "paused; /resume it first": a coordinator who
    missed the first notice was told there was no screening, when it was kept."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    file, good = dialogs / "blina-dli.yaml", DIALOG.read_text(encoding="utf-8")
    file.write_text(good, encoding="utf-8")

    def serving() -> ScreeningService:
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    asked = only(serving().start(OWNER, referral="R-1"), Asked)[0]
    file.write_text(good.replace("14 <= age <= 65", "14 <= agee <= 65"), encoding="utf-8")
    (first,) = serving().answer(OWNER, "42")
    assert (first.reason, first.detail) == (PROTOCOL_BROKEN, "R-1") and first.why
    assert serving().answer(OWNER, "42") == [first]
    assert serving().status(OWNER) == [first]
    assert serving().press(OWNER, asked.session_id, asked.step, "u") == [first]
    file.unlink()
    missing = [Refused(PROTOCOL_MISSING, "R-1", why="blina-dli")]
    assert serving().answer(OWNER, "42") == missing
    assert serving().press(OWNER, asked.session_id, asked.step, "u") == missing
    file.write_text(good, encoding="utf-8")  # back: /resume it, as the notice said
    assert serving().answer(OWNER, "42") == [Refused(NO_SCREENING)]
    assert serving().press(OWNER, asked.session_id, asked.step, "u") == [Refused(PAUSED)]
    assert sessions.get(db.read(), OWNER, asked.session_id).answers == {}


def test_with_none_active_only_the_screening_used_last_is_said_to_be_held_by_its_file(
    db: Database, tmp_path: Path
) -> None:
    """With no active screening, every text and /status named the newest open screening
    whose file was missing or broken, looking past more recent ones (a screening the user
    had left long before), and a bare /cancel answered with that notice as if refusing to
    cancel it. Only the screening used last is named, and a bare /cancel says none is open."""
    dialogs = all_site(tmp_path)
    blina = dialogs / "blina-dli.yaml"

    def serving() -> ScreeningService:
        return ScreeningService(Catalog(dialogs), db, channel="cli")

    serving().start(OWNER, protocol_id="blina-dli", referral="R-1")
    serving().answer(OWNER, "40")
    serving().start(OWNER, protocol_id="ctl019-rr-ball", referral="R-2")  # R-1 paused
    serving().start(OWNER, protocol_id="ctl019-rr-ball", referral="R-3")  # R-2 paused
    blina.rename(tmp_path / "blina-dli.yaml.bak")
    assert only(serving().cancel(OWNER), Cancelled) == [Cancelled("R-3")]
    none = [Refused(NO_SCREENING)]
    assert serving().answer(OWNER, "hello") == none  # R-2, used after R-1, is fine
    assert serving().status(OWNER) == none
    assert serving().cancel(OWNER) == none
    assert only(serving().cancel(OWNER, "R-2"), Cancelled) == [Cancelled("R-2")]
    missing = [Refused(PROTOCOL_MISSING, "R-1", why="blina-dli")]
    assert serving().answer(OWNER, "hello") == missing  # R-1 is the one used last now
    assert serving().status(OWNER) == missing
    assert serving().cancel(OWNER) == none  # a bare /cancel cancels none, refuses none
    assert [o.referral for o in sessions.list_open(db.read(), OWNER)] == ["R-1"]


def answer_until(service: ScreeningService, db: Database, variable: str, answers: dict) -> None:
    """Answer from ``answers`` (typed forms) until ``variable`` is the current question."""
    for _ in range(60):
        session = sessions.active(db.read(), OWNER)
        if session.state == variable:
            return
        service.answer(OWNER, answers[session.state])
    raise AssertionError(f"{variable} never asked")


TYPED = {
    "age": "40",
    "b_all_cd19_positive": "yes",
    "ph_negative": "yes",
    "high_risk_features": "yes",
    "transplant_date": "4 months ago",
    "active_infection_or_bleeding": "no",
    "lvef_percent": "62",
}


def test_an_unusual_value_waits_for_a_confirmation(service: ScreeningService, db: Database) -> None:
    """Dictionary 1.1 plausibility: LVEF below 15 is valid but asked to be confirmed."""
    service.start(OWNER)
    answer_until(service, db, "lvef_percent", TYPED)
    results = service.answer(OWNER, "12")
    assert [type(r) for r in results][-2:] == [Unusual, Asked]
    (asked,) = only(results, Asked)
    assert asked.question.variable == "lvef_percent"  # asked again, nothing recorded
    assert asked.options[0].kind == "confirm" and asked.options[0].choice == "12"
    assert "lvef_percent" not in sessions.active(db.read(), OWNER).answers
    # a corrected value replaces it; the same unusual value typed again confirms it
    assert only(service.answer(OWNER, "13"), Unusual)
    moved = service.answer(OWNER, "13")
    assert not only(moved, Unusual) and only(moved, Finished)  # 13 % fails E3a: it ends
    (record,) = ledger.records(db.read())
    assert record.answers["lvef_percent"] == 13


def test_the_confirm_button_records_the_waiting_value(
    service: ScreeningService, db: Database
) -> None:
    service.start(OWNER)
    answer_until(service, db, "lvef_percent", TYPED)
    (asked,) = only(service.answer(OWNER, "12"), Asked)
    stale = asked.step - 1
    assert service.press(OWNER, asked.session_id, stale, "k") == [Refused(STALE)]
    results = service.press(OWNER, asked.session_id, asked.step, "k")
    assert not only(results, Unusual)
    # 12 % fails E3a (LVEF < 60): the screening ends, logged once with the confirmed value
    (finished,) = only(results, Finished)
    assert {r.criterion for r in finished.verdict.reasons} == {"I8e", "E3a"}
    (record,) = ledger.records(db.read())
    assert record.answers["lvef_percent"] == 12


def test_a_code_equal_to_an_open_screenings_id_is_taken(service: ScreeningService) -> None:
    """/list and /resume name a screening without a referral by its id: a code equal to it
    would give two screenings one label, and /cancel that label could drop the other one."""
    (first,) = only(service.start(OWNER), Asked)
    assert only(service.start(OWNER, referral=first.session_id), Refused) == [
        Refused(REFERRAL_TAKEN, first.session_id)
    ]
    assert [o.session_id for o in sessions.list_open(service.db.read(), OWNER)] == [
        first.session_id
    ]


def test_a_new_screening_never_takes_the_id_of_an_open_one(
    service: ScreeningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are 8 random hex digits, so one may come again: a new screening saved under an
    open one's id replaced it (INSERT … ON CONFLICT DO UPDATE), and R-1 was gone without a
    word while the reply said it was paused. The id is drawn again instead."""
    (older,) = only(service.start(OWNER, referral="R-1"), Asked)
    service.answer(OWNER, "40")
    real = session_module.secrets.token_hex
    drawn = iter([older.session_id])  # the taken id first, then random ones
    monkeypatch.setattr(
        "screen_bot.session.secrets.token_hex", lambda n: next(drawn, None) or real(n)
    )
    results = service.start(OWNER)  # no referral: its label is its id
    (newer,) = only(results, Asked)
    assert newer.session_id != older.session_id
    assert only(results, Started)[0].label == newer.session_id
    assert only(results, Started)[0].paused == "R-1"
    left = sessions.list_open(service.db.read(), OWNER)
    assert {(o.session_id, o.referral) for o in left} == {
        (older.session_id, "R-1"),
        (newer.session_id, None),
    }
    resumed = service.resume(OWNER, "R-1")
    assert only(resumed, Resumed) == [Resumed("R-1")]
    (asked,) = only(resumed, Asked)
    assert asked.session_id == older.session_id and asked.question.variable != "age"


def test_cancel_by_id_drops_that_screening_though_another_has_it_as_its_code(
    service: ScreeningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A referral equal to another screening's id (made before codes were checked against
    ids): the terminal's quit cancels its own screening by id, never the other one."""
    (other,) = only(service.start(OWNER, referral="1a2b3c4d"), Asked)
    monkeypatch.setattr("screen_bot.session.secrets.token_hex", lambda _: "1a2b3c4d")
    (mine,) = only(service.start(OWNER), Asked)
    assert mine.session_id == "1a2b3c4d"
    service.resume(OWNER, other.session_id)  # the other one is the last used now
    service.cancel(OWNER, "1a2b3c4d")  # by id: mine
    left = sessions.list_open(service.db.read(), OWNER)
    assert [(o.session_id, o.referral) for o in left] == [(other.session_id, "1a2b3c4d")]


# -- the site's day (SCREEN_BOT_TIMEZONE) ---------------------------------------------------

SYDNEY_MORNING = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 09:30 on the 27th in Sydney
LA_EVENING = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 19:00 on the 26th in Los Angeles
# (SCREEN_BOT_TIMEZONE, the clock, the screening date); None: the setting left unset
SITE_DAYS = [
    pytest.param("Australia/Sydney", SYDNEY_MORNING, date(2026, 11, 27), id="sydney"),
    pytest.param(None, SYDNEY_MORNING, date(2026, 11, 26), id="default"),
    pytest.param("America/Los_Angeles", LA_EVENING, date(2026, 11, 26), id="los-angeles"),
    pytest.param(None, LA_EVENING, date(2026, 11, 27), id="default-later"),
]


def clock_at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    for module in (service_module, session_module):
        monkeypatch.setattr(module, "utc_now", lambda: moment)


def site_service(db: Store, catalog: Catalog, zone: str | None) -> ScreeningService:
    """The service as a command makes it from its settings (SCREEN_BOT_TIMEZONE ``zone``)."""
    settings = Settings(_env_file=None, **({"SCREEN_BOT_TIMEZONE": zone} if zone else {}))
    return ScreeningService(catalog, db, channel="cli", zone=settings.time_zone)


@pytest.mark.parametrize(("zone", "now", "day"), SITE_DAYS)
def test_a_screening_is_dated_by_the_sites_day_and_yesterday_counts_from_it(
    db: Store,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    zone: str | None,
    now: datetime,
    day: date,
) -> None:
    """A site in Sydney screening at 09:30 got the UTC day, yesterday's: "yesterday" was
    the day before that, and the log filed it as the date screened."""
    clock_at(monkeypatch, now)
    service = site_service(db, catalog, zone)
    service.start(OWNER, referral="R-TZ1")
    assert sessions.active(db.read(), OWNER).screened_on == day
    clock_at(monkeypatch, now + timedelta(days=1))  # answered the next day: its date is kept
    answer_until(service, db, "transplant_date", TYPED)
    (finished,) = only(service.answer(OWNER, "yesterday"), Finished)  # I4a: too recent
    (record,) = ledger.records(db.read())
    assert record.answers["transplant_date"] == (day - timedelta(days=1)).isoformat()
    assert record.screened_on == finished.verdict.screened_on == day


def typed(value: Any) -> str:
    """An answer as a coordinator types it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.isoformat() if isinstance(value, date) else str(value)


def screen_to_verdict(service: ScreeningService, db: Store, answers: Mapping[str, Any]) -> Finished:
    engine = service.catalog.engine("blina-dli")
    for _ in range(60):
        session = sessions.active(db.read(), OWNER)
        finished = only(service.answer(OWNER, step_line(engine, session, answers, typed)), Finished)
        if finished:
            return finished[0]
    raise AssertionError("the screening never ended")


TOO_PRECISE = {  # each the other side of a limit or threshold once rounded to a double
    "lvef_percent": "49.999999999999999",  # 50: I8e's LVEF ≥ 50 was met
    "age": "13.9999999999999999",  # 14: I1's age ≥ 14 was met
    "ecog": "2.9999999999999999",  # 3: taken as a whole number
    "serum_creatinine_mg_dl": "0.0499999999999999999",  # 0.05: its minimum
}


def test_a_number_with_more_digits_than_a_double_holds_is_asked_again(
    service: ScreeningService, db: Database
) -> None:
    engine = service.catalog.engine("blina-dli")
    answers = ELIGIBLE | {"crcl_ml_min": "?"}  # serum creatinine is asked for an estimate
    service.start(OWNER)
    refused = []
    for _ in range(60):
        session = sessions.active(db.read(), OWNER)
        if session.state in TOO_PRECISE and session.state not in refused:
            text = TOO_PRECISE[session.state]
            results = service.answer(OWNER, text)
            (invalid,) = only(results, Invalid)
            assert invalid.message.startswith(f"Too many digits in {text}: please type 15 ")
            assert only(results, Asked)[0].question.variable == session.state
            assert session.state not in sessions.active(db.read(), OWNER).answers
            refused.append(session.state)
            continue
        if only(service.answer(OWNER, step_line(engine, session, answers, typed)), Finished):
            break
    else:
        raise AssertionError("the screening never ended")
    assert sorted(refused) == sorted(TOO_PRECISE)


# I4a, >= 2 months post-transplant (D >= transplant_date + 2 months), on its first day:
# 2026-09-27 + 2 months = 2026-11-27, met on the 27th and not on the 26th
EDGE_OF_I4A = date(2026, 9, 27)
EDGE_VERDICTS = [
    pytest.param("Australia/Sydney", SYDNEY_MORNING, "eligible", id="sydney"),
    pytest.param(None, SYDNEY_MORNING, "not_eligible", id="default"),
    pytest.param("America/Los_Angeles", LA_EVENING, "not_eligible", id="los-angeles"),
    pytest.param(None, LA_EVENING, "eligible", id="default-later"),
]


@pytest.mark.parametrize(("zone", "now", "verdict"), EDGE_VERDICTS)
def test_a_window_edge_is_decided_on_the_sites_day(
    db: Store,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    zone: str | None,
    now: datetime,
    verdict: str,
) -> None:
    """Dictionary I4a on the site's day: a patient transplanted on 2026-09-27 screened at
    09:30 in Sydney on 2026-11-27 is eligible (the UTC day failed I4a, waiting a day)."""
    clock_at(monkeypatch, now)
    service = site_service(db, catalog, zone)
    patient = {**ELIGIBLE, "transplant_date": EDGE_OF_I4A}
    service.start(OWNER, referral="R-EDGE1")
    finished = screen_to_verdict(service, db, patient)
    assert finished.verdict.verdict == verdict
    engine = service.catalog.engine("blina-dli")
    failed = {r.criterion for r in finished.verdict.reasons}
    assert failed == (set() if verdict == "eligible" else {"I4a"})
    (checked,) = service.check(OWNER, ", ".join(f"{v} {typed(x)}" for v, x in patient.items()))
    assert isinstance(checked, Checked) and checked.decided
    assert [j.verdict.verdict for j in checked.judged] == [verdict]
    # what the dialog asks up to the transplant date: decided (the bot offers to log it)
    # only where I4a fails that day, as the screening continued from it would end there
    confirmations = engine.protocol.checklists["b_all_cd19_positive"].items
    given = {v: patient[v] for v in ["age", *confirmations, "transplant_date"]}
    (upto,) = service.check(OWNER, ", ".join(f"{v} {typed(x)}" for v, x in given.items()))
    assert isinstance(upto, Checked) and upto.decided == (verdict == "not_eligible")


@pytest.mark.parametrize(
    ("unusual", "expected"),
    [
        ({"ast_x_uln": "2100/40"}, {"ast_x_uln": 52.5}),  # value/ULN (fails its criterion: ends)
        (
            {"weight_kg": "25", "serum_creatinine_mg_dl": "1000 µmol/L"},
            {"weight_kg": 25.0, "serum_creatinine_mg_dl": 1000 / 88.4},  # a unit converted
        ),
    ],
)
def test_the_confirm_button_records_exactly_the_value_that_waited(
    service: ScreeningService, db: Database, unusual: dict[str, str], expected: dict[str, Any]
) -> None:
    """Confirming stores the waiting value as it waited (a ratio, a unit converted), after
    the session went through the database in between (audit23 DUP2)."""
    answers = {**ELIGIBLE, "crcl_ml_min": None}  # Cockcroft-Gault's questions asked
    engine = service.catalog.engine("blina-dli")
    service.start(OWNER)
    waited: dict[str, Any] = {}
    for _ in range(60):
        session = sessions.active(db.read(), OWNER)
        if session is None:
            break
        if session.state in unusual and session.state not in waited:
            (asked,) = only(service.answer(OWNER, unusual[session.state]), Asked)
            pending = sessions.active(db.read(), OWNER).pending
            waited[pending.variable] = pending.value
            service.press(OWNER, asked.session_id, asked.step, "k")
        else:
            service.answer(OWNER, step_line(engine, session, answers, lambda v: typed(v or "?")))
    assert waited == pytest.approx(expected)
    (record,) = ledger.records(db.read())
    stored = {v: record.answers[v] for v in waited}
    assert stored == waited and {v: type(x) for v, x in stored.items()} == {
        v: type(x) for v, x in waited.items()
    }


def test_a_value_waiting_for_its_confirmation_is_warned_of_again_on_resume_and_status(
    service: ScreeningService, db: Database
) -> None:
    """Typed again, the waiting value is confirmed: after a /resume (a terminal dialog
    killed at the warning, then `chat --resume`) or a /status, the warning comes again."""
    service.start(OWNER, referral="R-12")
    answer_until(service, db, "lvef_percent", TYPED)
    assert only(service.answer(OWNER, "12"), Unusual)
    for results in (service.resume(OWNER, "R-12"), service.status(OWNER)):
        assert [type(r) for r in results][-2:] == [Unusual, Asked]
        (warned,) = only(results, Unusual)
        assert "12" in warned.message
    assert "lvef_percent" not in sessions.active(db.read(), OWNER).answers
