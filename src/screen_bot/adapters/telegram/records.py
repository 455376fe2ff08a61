"""/log, /stats and /forget: the screening log and the user's own data, from the chat."""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from typing import TYPE_CHECKING

from telegram.error import TelegramError
from telegram.ext import CommandHandler, filters

from ...errors import StorageFailed
from ...service import ScreeningService
from ...storage import Store
from . import messages as say
from .turn import App, Turn, turn

if TYPE_CHECKING:
    from ...reports import Reports

logger = logging.getLogger(__name__)
RECENT = 10
# The /stats photo shows each protocol's most frequent failures, for so many protocols at
# most: at 10 and 8 it is at most 1350 x 6120 px, well inside what the Bot API takes
# (sendPhoto: width + height at most 10,000). More protocols get the counts alone.
PHOTO_FAILURES = 10
PHOTO_PROTOCOLS = 8


class RecordHandlers:
    def __init__(self, db: Store, service: ScreeningService) -> None:
        self.db, self.service = db, service

    @cached_property
    def reports(self) -> Reports:
        """The log's reports, imported at the first /log or /stats (not at start-up)."""
        from ...reports import Reports

        return Reports(self.db)

    def add_handlers(self, application: App) -> None:
        private = filters.ChatType.PRIVATE
        application.add_handler(CommandHandler("log", self.recent, filters=private))
        application.add_handler(CommandHandler("stats", self.stats, filters=private))
        application.add_handler(CommandHandler("forget", self.forget, filters=private))

    @turn
    async def recent(self, t: Turn) -> None:
        """/log: the coordinator's own latest screenings."""
        await t.say(say.recent(self.reports.recent(coordinator=str(t.user_id), limit=RECENT)))

    @turn
    async def stats(self, t: Turn) -> None:
        """/stats: counts and failures by criterion, as a chart and a table."""
        # Reading and parsing a year of log takes seconds: off the event loop, so that the
        # other chats are answered meanwhile.
        try:
            found = await asyncio.to_thread(self.reports.stats)
        except StorageFailed as err:  # a read: not the "NOT saved" every write failure gets
            logger.error("update %s: nothing read: %s", t.update.update_id, err)
            await t.say(say.LOG_NOT_READ)
            return
        message = t.update.effective_message
        if not found or message is None:
            await t.say(say.NO_STATS)
            return
        counts = say.stats_message(found)
        if len(found) > PHOTO_PROTOCOLS:
            await t.say(f"{counts}\n\n{say.stats_without_chart(len(found), PHOTO_PROTOCOLS)}")
            return
        from ...reports import chart_png

        picture = await asyncio.to_thread(chart_png, found, PHOTO_FAILURES)
        try:
            await message.reply_photo(picture, caption=say.stats_caption(found))
        except TelegramError as err:  # the chart only draws the counts: they go all the same
            logger.warning("the /stats chart was not sent: %s: %s", type(err).__name__, err)
            counts = f"{counts}\n\n{say.STATS_CHART_UNSENT}"
        await t.say(counts)

    @turn
    async def forget(self, t: Turn) -> None:
        """/forget: delete this user's unfinished screenings (finished ones stay in the log)."""
        (result,) = self.service.forget(t.chat_id)
        await t.say(say.forgotten(getattr(result, "count", 0)))
