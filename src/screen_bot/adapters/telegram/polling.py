"""Long polling with ``getUpdates``, confirming an update only once it is safe.

Telegram counts an update as confirmed when ``getUpdates`` is called with an offset above
its id. The offset moves only after the :class:`~.intake.Intake` has stored the batch
(or handled it), so a crash at any point leaves every update stored or still on
Telegram's side. The first call after a start carries no offset: Telegram then returns
the updates not confirmed yet, and the inbox skips those it already has.

A 401 (the token was revoked) or 404 (the URL is wrong) ends the bot with a clear error,
so a supervisor can restart it once fixed; anything else (a network error, a 5xx, a
409 conflict, a 429 with ``retry_after``) is retried with backoff, and said in the log.
A ``retry_after`` is waited out within the backoff's delay and ``MAX_RETRY_AFTER``
(:func:`retry_wait`): a relay's or emulator's negative one spun, a day-long one stopped
the bot for a day.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update

from ...errors import ScreenBotError
from .botapi import ApiError, RawBotApi, Unreachable
from .intake import Intake

logger = logging.getLogger(__name__)
# Not edits: an edit is never an answer, and Telegram also sends one when nothing the bot
# reads changed (a reaction, a live location), so saying "not taken" would be noise.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
POLL_TIMEOUT = 25  # seconds a getUpdates call may wait for updates
FIRST_DELAY, MAX_DELAY = 1.0, 30.0
# Telegram asks getUpdates to wait seconds; should it mean longer, another 429 comes after
# a minute and is waited out again, while a bot that stopped polling would look dead.
MAX_RETRY_AFTER = 60.0
# After an empty answer that came back before half the timeout asked (a relay or emulator
# that does not hold the request: short polling), the next poll waits this long: ten polls
# a second at most instead of hundreds (a core), and an update is still picked up within
# a tenth of a second, too little for a person to notice. An empty answer to a real long
# poll comes at the timeout: no pause.
SHORT_POLL_PAUSE = 0.1


def retry_wait(retry_after: float | None, delay: float) -> float:
    """Seconds to wait before polling again after a failure: the Bot API's ``retry_after``,
    but never under the backoff's ``delay`` nor over ``MAX_RETRY_AFTER``."""
    if retry_after is None or not retry_after > delay:  # (not > also catches NaN)
        return delay
    return min(retry_after, MAX_RETRY_AFTER)


def rejected(code: int, while_doing: str) -> ScreenBotError | None:
    """The error a 401 or 404 from the Bot API means, or None for any other code."""
    if code == 401:
        return ScreenBotError(
            f"the Bot API rejected the token (401) {while_doing}: it is wrong or was revoked; "
            "set TELEGRAM_BOT_TOKEN to the token @BotFather shows now"
        )
    if code == 404:
        return ScreenBotError(
            f"the API URL looks wrong (404) {while_doing}: check TELEGRAM_API_BASE_URL "
            "(for example https://api.telegram.org/bot; the token is added to it)"
        )
    return None


class Poller:
    def __init__(
        self,
        api: RawBotApi,
        intake: Intake,
        *,
        timeout: int = POLL_TIMEOUT,
        first_delay: float = FIRST_DELAY,
    ) -> None:
        self.api, self.intake, self.timeout = api, intake, timeout
        self.first_delay = first_delay
        self.offset: int | None = None

    async def run(self) -> None:
        """Poll until cancelled; raise ScreenBotError when the Bot API refuses the bot."""
        delay = self.first_delay
        loop = asyncio.get_running_loop()
        while True:
            # The first poll after a start does not wait: stored updates wait for it.
            timeout = self.timeout if self.intake.caught_up.is_set() else 0
            params = {
                "offset": self.offset,
                "timeout": timeout,
                "allowed_updates": ALLOWED_UPDATES,
            }
            asked = loop.time()
            try:
                batch = await self.api.call("getUpdates", params, timeout=timeout + 10)
            except ApiError as err:
                fatal = rejected(err.code, "while polling")
                if fatal is not None:
                    raise fatal from None
                wait = retry_wait(err.retry_after, delay)
                logger.warning(
                    "getUpdates failed (%d %s); retrying in %.0f s", err.code, err.description, wait
                )
            except Unreachable as err:
                wait = delay
                logger.warning("getUpdates failed (%s); retrying in %.0f s", err, wait)
            else:
                if not isinstance(batch, list):
                    wait = delay
                    logger.warning(
                        "getUpdates answered no list of updates; retrying in %.0f s", wait
                    )
                else:
                    offset = await self.intake.accept(batch)
                    self.intake.caught_up.set()
                    if offset is not None or not batch:
                        self.offset = offset if offset is not None else self.offset
                        delay = self.first_delay
                        if not batch and loop.time() - asked < timeout / 2:
                            await asyncio.sleep(SHORT_POLL_PAUSE)
                        continue
                    wait = delay  # only updates without an id: do not ask again at once
            self.intake.caught_up.set()  # a failed first poll: handle what is stored anyway
            await asyncio.sleep(wait)
            delay = min(delay * 2, MAX_DELAY)
