"""The engine records an answer without pydantic's validation where validation would keep
every field as it is (engine.py ``_answer``) and sets the session's step and time at once
(``_assign``): both give exactly what the plain pydantic calls give (the model's fields,
its fields set, extra and private parts, equality and JSON), for any values, kept or not.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from screen_bot.engine import _answer, _assign
from screen_bot.session import Answer, Pending, Session


class Shade(enum.StrEnum):  # a str that is not exactly a str: validated, not kept
    RED = "red"


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=3)), None])
VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.lists(st.text(max_size=5), max_size=3)
    | st.just(Shade.RED)
    | st.just(True).map(lambda _: 3 > 2)  # bool made at run time
)
TIMES = st.builds(lambda at, zone: at.replace(tzinfo=zone), st.datetimes(), ZONES)


def parts(model: Any) -> tuple[Any, ...]:
    return (
        type(model),
        model.__dict__,
        [type(v) for v in model.__dict__.values()],
        model.model_fields_set,
        model.__pydantic_extra__,
        model.__pydantic_private__,
        model.model_dump_json(),
    )


@given(
    value=VALUES,
    at=TIMES,
    group=st.none() | st.text(max_size=8) | st.just(Shade.RED),
    filled=st.booleans(),
)
def test_an_answer_is_the_validated_one(value: Any, at: datetime, group: Any, filled: bool) -> None:
    fast = _answer(value, at, group, filled)
    validated = Answer(value=value, at=at, group=group, filled=filled)
    assert parts(fast) == parts(validated)
    assert fast == validated
    stored_again = Answer.model_validate_json  # as a session is read back
    assert stored_again(fast.model_dump_json()) == stored_again(validated.model_dump_json())


def test_what_is_kept_is_the_validated_value() -> None:
    at = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    for value in (True, 0, 1.5, "2026-01-01", None):
        assert parts(_answer(value, at, "history", True)) == parts(
            Answer(value=value, at=at, group="history", filled=True)
        )
    listed = ["alpha", "beta"]
    assert _answer(listed, at, None, False).value is not listed  # validated: a copy


def test_sessions_validate_no_assignment() -> None:
    # _assign writes as pydantic's setattr does only for a model that validates none
    assert not Session.model_config.get("validate_assignment")
    assert not Session.model_config.get("frozen")


@given(
    step=st.integers(0, 10_000),
    at=TIMES,
    state=st.sampled_from(["age", "eligible", "unresolved"]),
    pending=st.booleans(),
)
def test_assigning_at_once_is_setting_each(
    step: int, at: datetime, state: str, pending: bool
) -> None:
    def fresh() -> Session:
        session = Session(
            id="s1",
            protocol_id="p",
            protocol_version="1",
            protocol_sha256="0" * 64,
            state="age",
            screened_on=date(2026, 1, 15),
            created_at=datetime(2026, 1, 15, tzinfo=UTC),
            updated_at=datetime(2026, 1, 15, tzinfo=UTC),
        )
        if pending:
            session.pending = Pending(variable="age", value=120)
        return session

    fields = {"step": step, "updated_at": at, "state": state}
    fast, slow = fresh(), fresh()
    _assign(fast, fields)
    for name, value in fields.items():
        setattr(slow, name, value)
    assert parts(fast) == parts(slow)
    assert fast == slow
