"""/log, /stats and /forget: the screening log and the user's own data, from the chat."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from ...screening_log import ScreeningLog, chart_png, stats_text
from ...store import Store

Context = ContextTypes.DEFAULT_TYPE
RECENT = 10


class RecordHandlers:
    def __init__(self, log: ScreeningLog, store: Store) -> None:
        self.log, self.store = log, store

    def add_handlers(self, application: Application) -> None:
        private = filters.ChatType.PRIVATE
        application.add_handler(CommandHandler("log", self.recent, filters=private))
        application.add_handler(CommandHandler("stats", self.stats, filters=private))
        application.add_handler(CommandHandler("forget", self.forget, filters=private))

    async def recent(self, update: Update, context: Context) -> None:
        """The coordinator's own latest screenings."""
        records = list(self.log.records(coordinator=str(update.effective_user.id), limit=RECENT))
        if not records:
            await update.effective_message.reply_text("You have no finished screenings yet.")
            return
        lines = [
            f"#{r.number} {r.at:%Y-%m-%d} {r.referral or '–'} {r.protocol.id} "
            f"{r.protocol.version}: {r.verdict}"
            + (f" ({', '.join(x.criterion for x in r.reasons)})" if r.reasons else "")
            for r in records
        ]
        await update.effective_message.reply_text(
            f"Your last {len(lines)} screenings:\n" + "\n".join(lines)
        )

    async def stats(self, update: Update, context: Context) -> None:
        """Screened, eligible, not eligible, unresolved, and failures by criterion, as a chart."""
        stats = self.log.stats()
        if not stats:
            await update.effective_message.reply_text("No screenings are logged yet.")
            return
        picture = await asyncio.to_thread(chart_png, stats)
        caption = "\n".join(stats_text(s).splitlines()[0] for s in stats)[:1024]
        await update.effective_message.reply_photo(picture, caption=caption)
        await update.effective_message.reply_text("\n\n".join(stats_text(s) for s in stats))

    async def forget(self, update: Update, context: Context) -> None:
        """Delete this user's unfinished screenings (finished ones belong to the site's log)."""
        removed = self.store.forget(update.effective_chat.id)
        await update.effective_message.reply_text(
            f"Deleted {removed} unfinished screening{'s' if removed != 1 else ''}. "
            "Finished screenings stay in the site's screening log."
        )
