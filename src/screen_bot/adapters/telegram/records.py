"""/log, /stats and /forget: the screening log and the user's own data, from the chat."""

from __future__ import annotations

import asyncio

from telegram.ext import CommandHandler, filters

from ...reports import Reports, chart_png
from ...service import ScreeningService
from . import messages as say
from .turn import App, Turn, turn

RECENT = 10


class RecordHandlers:
    def __init__(self, reports: Reports, service: ScreeningService) -> None:
        self.reports, self.service = reports, service

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
        found = self.reports.stats()
        message = t.update.effective_message
        if not found or message is None:
            await t.say(say.NO_STATS)
            return
        picture = await asyncio.to_thread(chart_png, found)
        await message.reply_photo(picture, caption=say.stats_caption(found))
        await t.say(say.stats_message(found))

    @turn
    async def forget(self, t: Turn) -> None:
        """/forget: delete this user's unfinished screenings (finished ones stay in the log)."""
        (result,) = self.service.forget(t.chat_id)
        await t.say(say.forgotten(getattr(result, "count", 0)))
