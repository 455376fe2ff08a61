"""The bot against Bot API servers that answer as the documentation allows, not as Telegram
does: a getMe without ``username`` (optional in the User type), a getUpdates that answers at
once whatever its ``timeout`` (short polling: a relay, an emulator), an error sent with HTTP
status 200 (the outcome is the body's ``ok``), a 429 whose ``retry_after`` is no sane
wait."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot_process import BotProcess, say
from fakebot import FakeBotApi
from fakebot.server import NOT_MODIFIED
from screen_bot.adapters.telegram import messages as words
from screen_bot.adapters.telegram import polling as polling_module
from screen_bot.adapters.telegram.botapi import ApiError, RawBotApi, Unreachable
from screen_bot.adapters.telegram.https import error_status, https_request
from screen_bot.adapters.telegram.polling import MAX_DELAY, MAX_RETRY_AFTER, Poller, retry_wait

COORDINATOR = 111


# -- getMe without a username -----------------------------------------------------------------


def test_commands_work_when_getme_gives_no_username(tmp_path: Path) -> None:
    """With no username only the plain ``/command`` names the bot: ``/command@name`` is
    another bot's (in a private chat: an unknown command, answered with the help)."""
    with FakeBotApi(bot_username=None) as fake:
        bot = BotProcess(fake, tmp_path, str(COORDINATOR))
        bot.start()
        try:
            assert say(fake, COORDINATOR, "/screen@other_bot R-1")["text"] == words.HELP
            assert "Screening R-1 started" in say(fake, COORDINATOR, "/screen R-1")["text"]
        finally:
            bot.stop()
        assert "failed" not in bot.output(), bot.output()


# -- getUpdates answering at once ---------------------------------------------------------------


class Batches:
    """An intake that keeps every batch and confirms it."""

    def __init__(self) -> None:
        self.caught_up = asyncio.Event()
        self.caught_up.set()
        self.batches: list[list[Any]] = []

    async def accept(self, batch: list[Any]) -> int | None:
        self.batches.append(batch)
        return max(u["update_id"] for u in batch) + 1 if batch else None


async def test_a_bot_api_that_answers_polls_at_once_is_polled_a_few_times_a_second(
    fake: FakeBotApi,
) -> None:
    fake.short_polling = True
    api = RawBotApi(f"{fake.base_url}{fake.token}", https_request(1))
    intake = Batches()
    polling = asyncio.create_task(Poller(api, intake).run())  # type: ignore[arg-type]
    try:
        await asyncio.sleep(1.0)
        polls = len(fake.calls("getUpdates"))
        assert 2 <= polls <= 15
        sent = time.monotonic()
        fake.send_text(COORDINATOR, "40")
        while not any(intake.batches):
            await asyncio.sleep(0.01)
        assert time.monotonic() - sent < 1.0  # an update is still picked up at once
    finally:
        polling.cancel()
        await api.shutdown()


async def test_an_empty_answer_to_a_long_poll_is_followed_by_the_next_poll_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polling_module, "SHORT_POLL_PAUSE", 30.0)  # were it taken: plain to see

    class LongPolls:
        asked: list[float] = []
        answered: list[float] = []

        async def call(self, method: str, params: dict, timeout: float = 0) -> list:
            self.asked.append(time.monotonic())
            await asyncio.sleep(params["timeout"])  # as Telegram: empty, at the timeout
            self.answered.append(time.monotonic())
            return []

    api = LongPolls()
    polling = asyncio.create_task(Poller(api, Batches(), timeout=1).run())  # type: ignore[arg-type]
    try:
        for _ in range(500):  # 5 s: two 1-second polls and the third asked
            if len(api.asked) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        polling.cancel()
    assert len(api.asked) >= 3
    gaps = [asked - answered for asked, answered in zip(api.asked[1:], api.answered, strict=False)]
    assert max(gaps) < 1


# -- getUpdates' retry_after ------------------------------------------------------------------


async def test_a_retry_after_that_is_no_sane_wait_neither_spins_nor_stops_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A negative ``retry_after`` was waited as no pause at all (hundreds of polls and
    warnings a second); one of a day stopped polling for a day."""
    told = [-1.0, -1.0, -1.0, 86400.0, math.nan, 0.0, 3.0]

    class TooManyRequests:
        async def call(self, method: str, params: dict, timeout: float = 0) -> list:
            if not told:
                raise asyncio.CancelledError
            raise ApiError(429, "Too Many Requests", told.pop(0))

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    clock = SimpleNamespace(sleep=sleep, get_running_loop=asyncio.get_running_loop)
    monkeypatch.setattr(polling_module, "asyncio", clock)
    with pytest.raises(asyncio.CancelledError):
        await Poller(TooManyRequests(), Batches()).run()  # type: ignore[arg-type]
    assert waits == [1.0, 2.0, 4.0, MAX_RETRY_AFTER, 16.0, 30.0, 30.0]  # backoff, at most 60 s


@given(
    retry_after=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    delay=st.floats(min_value=polling_module.FIRST_DELAY, max_value=MAX_DELAY),
)
def test_a_wait_after_a_failed_poll_is_within_the_backoff_and_a_minute(
    retry_after: float | None, delay: float
) -> None:
    wait = retry_wait(retry_after, delay)
    assert delay <= wait <= MAX_RETRY_AFTER
    if retry_after is not None and delay <= retry_after <= MAX_RETRY_AFTER:
        assert wait == retry_after  # a sane one is waited as asked


# -- an error with HTTP status 200 ---------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # retry_after
async def test_an_error_sent_with_status_200_is_the_telegram_error_of_its_code(
    fake: FakeBotApi,
) -> None:
    fake.add_chat(COORDINATOR)
    bot = Bot(fake.token, base_url=fake.base_url, request=https_request(1))
    async with bot:
        fake.fail_next("editMessageText", 400, f"Bad Request: {NOT_MODIFIED}", http_status=200)
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("x", chat_id=COORDINATOR, message_id=1)
        fake.fail_next("sendMessage", 403, "Forbidden: bot was blocked", http_status=200)
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(COORDINATOR, "x")
        fake.fail_next("sendMessage", 429, retry_after=3, http_status=200)
        with pytest.raises(RetryAfter):
            await bot.send_message(COORDINATOR, "x")
        assert (await bot.send_message(COORDINATOR, "sent")).text == "sent"


def test_a_not_modified_edit_sent_with_status_200_does_not_break_the_turn(tmp_path: Path) -> None:
    """The answered question's edit is cosmetic: its failure leaves the answer taken and the
    next question sent."""
    with FakeBotApi() as fake:
        bot = BotProcess(fake, tmp_path, str(COORDINATOR))
        bot.start()
        try:
            assert "[1/" in say(fake, COORDINATOR, "/screen R-1")["text"]
            fake.fail_next("editMessageText", 400, f"Bad Request: {NOT_MODIFIED}", http_status=200)
            assert "[2/" in say(fake, COORDINATOR, "40")["text"]
        finally:
            bot.stop()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"ok": false, "description": "Bad Request: no code"}', 400),
        (b' {"description": "Forbidden", "ok": false, "error_code": 403}', 403),
        (b'{"result": true, "ok": true}', 200),  # a success in another order
        (b"<html>Bad Gateway</html>", 200),  # python-telegram-bot says it is no answer
        (b"[" * 100_000, 200),  # nested past the parser's depth: the same, not a crash
    ],
)
def test_the_status_a_200_answer_means(body: bytes, status: int) -> None:
    assert error_status(body, 200) == status


async def test_a_getupdates_answer_nested_past_the_parsers_depth_is_no_answer() -> None:
    """Not a crash of the poller: it retries, as for any answer that is no Bot API JSON."""

    class Nested:
        async def do_request(self, *args: object, **kwargs: object) -> tuple[int, bytes]:
            return 200, b"[" * 100_000

    with pytest.raises(Unreachable, match="not a Bot API answer"):
        await RawBotApi("http://bot.invalid/bot1:x", Nested()).call("getUpdates")  # type: ignore[arg-type]
