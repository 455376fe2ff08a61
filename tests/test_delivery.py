"""An answer is applied only to a question delivered before it arrived; verdicts are kept
until they were sent (the service's part of surviving ``kill -9``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import DIALOG
from screen_bot.protocol import load
from screen_bot.protocol.catalog import Catalog
from screen_bot.results import STALE, Asked, Early, Finished, Refused, Result
from screen_bot.service import ScreeningService
from screen_bot.storage import Database, Store, outbox, sessions
from stores import StoreUnderTest

OWNER = 7
CONFIRMATIONS = load(DIALOG).checklists["b_all_cd19_positive"].items  # the step after age


@pytest.fixture
def db(store: StoreUnderTest) -> Iterator[Store]:
    """The service on each store: the SQLite file, a PostgreSQL database."""
    with store.open() as opened:
        yield opened


@pytest.fixture
def service(db: Database, catalog: Catalog) -> Iterator[ScreeningService]:
    yield ScreeningService(catalog, db, channel="telegram", outbox=True)


def asked(results: list[Result]) -> Asked:
    (question,) = [r for r in results if isinstance(r, Asked)]
    return question


def deliver(service: ScreeningService, question: Asked, message_id: int, after: int) -> None:
    service.shown(OWNER, question.session_id, message_id, question.step, after)


def age_answered(service: ScreeningService) -> Asked:
    """Start, show the first question, answer 42: the second question, not delivered yet."""
    first = asked(service.start(OWNER))
    deliver(service, first, message_id=2, after=1)
    return asked(service.answer(OWNER, "42", arrived=3))


def answers(db: Database) -> dict:
    session = sessions.active(db.read(), OWNER)
    assert session is not None
    return session.values()


def test_an_answer_to_a_question_never_delivered_changes_nothing(
    service: ScreeningService, db: Database
) -> None:
    first = asked(service.start(OWNER, referral="R-1"))
    deliver(service, first, message_id=2, after=1)
    second = asked(service.answer(OWNER, "42", arrived=3))  # saved; its sending "crashes"
    results = service.answer(OWNER, "yes", arrived=4)  # a retype, meant for the age
    assert results[0] == Early(reshown=True)
    assert asked(results).question.variable == second.question.variable == "b_all_cd19_positive"
    assert answers(db) == {"age": 42}
    deliver(service, asked(results), message_id=6, after=5)
    moved = asked(service.answer(OWNER, "yes", arrived=7))  # every confirmation holds
    assert moved.question.variable == "transplant_date"
    assert answers(db) == {"age": 42, **dict.fromkeys(CONFIRMATIONS, True)}


def test_input_that_arrived_before_the_question_was_shown_is_not_taken_for_it(
    service: ScreeningService, db: Database
) -> None:
    second = age_answered(service)
    deliver(service, second, message_id=6, after=5)  # 4 and 5 had arrived meanwhile
    assert service.answer(OWNER, "42", arrived=4) == [Early(reshown=False)]
    assert service.skip(OWNER, arrived=5) == [Early(reshown=False)]
    assert service.back(OWNER, arrived=5) == [Early(reshown=False)]
    assert answers(db) == {"age": 42}
    assert asked(service.skip(OWNER, arrived=8)).question.variable == "transplant_date"


def test_input_sent_a_second_before_the_question_was_is_not_taken_for_it(
    service: ScreeningService, db: Database
) -> None:
    # Typed while the bot was down, it reaches the bot after the restart showed the next
    # question: by update id it came later, by its date it was sent before that question.
    second = age_answered(service)
    service.shown(OWNER, second.session_id, 6, second.step, after=5, at=1_000)
    assert service.answer(OWNER, "yes", arrived=7, sent_at=999) == [Early(reshown=False)]
    assert service.skip(OWNER, arrived=8, sent_at=999) == [Early(reshown=False)]
    assert answers(db) == {"age": 42}
    # the same second cannot tell: by update id it came after the question was sent
    moved = asked(service.answer(OWNER, "yes", arrived=9, sent_at=1_000))
    assert moved.question.variable == "transplant_date"


def test_input_dated_a_day_before_its_question_is_taken_by_update_id_alone(
    service: ScreeningService, db: Database
) -> None:
    # A Bot API that dates input 0 (or a clock a day off): refusing would refuse everything.
    second = age_answered(service)
    service.shown(OWNER, second.session_id, 6, second.step, after=5, at=1_764_000_000)
    assert asked(service.answer(OWNER, "yes", arrived=7, sent_at=0)).step > second.step


def test_input_sent_days_after_its_question_is_taken_whatever_its_update_id(
    service: ScreeningService, db: Database
) -> None:
    # Bot API: after a week without updates, update ids start anew, maybe lower. A
    # screening kept longer (SCREEN_BOT_SESSION_TTL_HOURS over 168) must still take answers.
    second = age_answered(service)
    week = 7 * 86_400
    service.shown(OWNER, second.session_id, 6, second.step, after=700_001, at=1_764_000_000)
    assert service.answer(OWNER, "yes", arrived=1_000, sent_at=1_764_000_100) == [
        Early(reshown=False)  # minutes later: a lower id is input that came first
    ]
    moved = asked(service.answer(OWNER, "yes", arrived=1_001, sent_at=1_764_000_000 + week))
    assert moved.question.variable == "transplant_date"


def test_a_stale_button_shows_the_current_question_when_it_was_never_delivered(
    service: ScreeningService, db: Database
) -> None:
    second = age_answered(service)
    deliver(service, second, message_id=4, after=3)
    asked(service.press(OWNER, second.session_id, second.step, "a", 4))  # not delivered
    results = service.press(OWNER, second.session_id, second.step, "a", 4)  # pressed again
    assert results[0] == Refused(STALE)
    assert asked(results).question.variable == "transplant_date"
    assert answers(db) == {"age": 42, **dict.fromkeys(CONFIRMATIONS, True)}


def test_without_an_arrival_id_input_is_taken_as_before(service: ScreeningService) -> None:
    asked(service.start(OWNER))
    assert asked(service.answer(OWNER, "42")).question.variable == "b_all_cd19_positive"


def test_a_verdict_waits_in_the_outbox_until_delivered(
    service: ScreeningService, db: Database
) -> None:
    first = asked(service.start(OWNER, referral="R-9"))
    deliver(service, first, message_id=2, after=1)
    (finished,) = [r for r in service.answer(OWNER, "70", arrived=3) if isinstance(r, Finished)]
    assert finished.delivery is not None
    (waiting,) = service.undelivered()
    assert (waiting.owner, waiting.text) == (OWNER, finished.text)
    service.delivered(finished.delivery)
    assert service.undelivered() == [] and outbox.undelivered(db.read()) == []


def test_a_front_end_without_an_outbox_keeps_nothing(db: Database, catalog: Catalog) -> None:
    service = ScreeningService(catalog, db, channel="cli")
    asked(service.start(OWNER))
    (finished,) = [r for r in service.answer(OWNER, "70") if isinstance(r, Finished)]
    assert finished.delivery is None and service.undelivered() == []
