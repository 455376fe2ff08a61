"""From raw Bot API updates to handled ones: parse, keep strangers out, store, then handle.

Used by the poller and by the webhook alike. Each update is parsed on its own: a
malformed one is skipped (logged by its id only) and still confirmed, so it can neither
stop nor spin the poller. Updates from strangers go to the :class:`~.gate.StrangerGate`
and are never stored. The rest are written to the inbox (:mod:`screen_bot.storage.inbox`)
in one transaction, and only then does the caller confirm them to the Bot API; each is
then handled in its chat's order and marked done in the transaction of the change it
caused. When the inbox cannot be written (a full disk), the updates are handled at once
instead, before they are confirmed, so the user still hears that nothing was saved.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from telegram import Update

from ...errors import StorageFailed
from ...storage import Database, inbox
from ...storage.inbox import Received
from ...storage.outbox import Undelivered
from .bot import ScreeningBot
from .gate import plain_stranger, refusal
from .ordering import ChatQueues, Work
from .turn import App

logger = logging.getLogger(__name__)
MAX_UPDATE_ID = 2**53  # update ids are 32-bit today; anything past this is not one
PRUNE_EVERY = 3600.0  # seconds between forgetting handled updates older than two days


def update_id_of(item: object) -> int | None:
    uid = item.get("update_id") if isinstance(item, dict) else None
    if isinstance(uid, int) and not isinstance(uid, bool) and 0 <= uid < MAX_UPDATE_ID:
        return uid
    return None


class Intake:
    def __init__(self, application: App, screening_bot: ScreeningBot, db: Database) -> None:
        self.application, self.screening_bot, self.db = application, screening_bot, db
        self.queues = ChatQueues()
        self._unfinished: set[int] = set()  # handled, but the inbox could not be told
        self._pruned = time.monotonic()
        screening_bot.received = self.queues.received

    async def accept(self, raw: Sequence[Any]) -> int | None:
        """Take a batch of raw updates; return the offset that confirms them (or None)."""
        ids: list[int] = []
        keep: list[tuple[Received, Update]] = []
        allowed, gate = self.screening_bot.settings.allowed_users, self.screening_bot.gate
        for item in raw:
            uid = update_id_of(item)
            if uid is None:
                logger.warning("an update without a valid update_id was skipped")
                continue
            ids.append(uid)
            plain = plain_stranger(item, allowed)
            if plain is not None:
                gate.refuse(plain)
                continue
            try:
                update = Update.de_json(item, self.application.bot)
            except Exception as err:  # noqa: BLE001 - any shape a crafted update takes
                logger.warning("update %d skipped: malformed (%s)", uid, type(err).__name__)
                continue
            why = refusal(update, allowed)
            if why is not None:
                gate.refuse(why)
                continue
            assert update.effective_chat is not None
            keep.append((Received(uid, update.effective_chat.id, json.dumps(item)), update))
        if keep:
            await self._store_and_submit(keep)
        return max(ids) + 1 if ids else None

    async def _store_and_submit(self, keep: list[tuple[Received, Update]]) -> None:
        try:
            with self.db.transaction() as tx:
                fresh = {r.update_id for r in inbox.receive(tx, [r for r, _ in keep])}
                if time.monotonic() - self._pruned > PRUNE_EVERY:
                    inbox.prune(tx)
                    self._pruned = time.monotonic()
        except StorageFailed as err:
            logger.error("updates handled without the inbox: %s", err)
            await asyncio.gather(*(self._submit(u, stored=False) for _, u in keep))
            return
        for received, update in keep:
            if received.update_id in fresh:
                self._submit(update)

    def recover(self) -> int:
        """Queue what a crash left: updates stored but not handled, verdicts not sent."""
        left = inbox.pending(self.db.read())
        for row in left:
            try:
                update = Update.de_json(json.loads(row.body), self.application.bot)
            except Exception as err:  # noqa: BLE001 - stored by an older version, or damaged
                logger.warning(
                    "update %d skipped: malformed (%s)", row.update_id, type(err).__name__
                )
                self._finish(row.update_id)
                continue
            self._submit(update)
        for verdict in self.screening_bot.service.undelivered():
            self.queues.submit(verdict.owner, self._delivery(verdict))
        if left:
            logger.info("%d update(s) left by the last run are handled now", len(left))
        return len(left)

    def _delivery(self, verdict: Undelivered) -> Work:
        async def deliver() -> None:
            bot = self.application.bot
            await self.screening_bot.deliver(verdict.owner, verdict.id, verdict.text, bot)

        return deliver

    def _submit(self, update: Update, stored: bool = True) -> asyncio.Future[None]:
        assert update.effective_chat is not None
        return self.queues.submit(
            update.effective_chat.id, lambda: self._handle(update, stored), update.update_id
        )

    async def _handle(self, update: Update, stored: bool) -> None:
        self._retry_unfinished()
        if not stored:
            await self.application.process_update(update)
            return
        with inbox.handling(update.update_id):
            await self.application.process_update(update)
        self._finish(update.update_id)

    def _finish(self, update_id: int) -> None:
        try:
            with self.db.transaction() as tx:
                inbox.finish(tx, update_id)
        except StorageFailed as err:
            logger.error("update %d: could not be marked handled: %s", update_id, err)
            self._unfinished.add(update_id)

    def _retry_unfinished(self) -> None:
        """Mark updates handled while the database could not be written, once it can."""
        if not self._unfinished:
            return
        try:
            with self.db.transaction() as tx:
                for update_id in self._unfinished:
                    inbox.finish(tx, update_id)
        except StorageFailed:
            return
        self._unfinished.clear()
