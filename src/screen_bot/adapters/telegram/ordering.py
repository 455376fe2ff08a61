"""One chat's work one after the other, in the order it came; different chats at once.

This is the bot's lock per chat within a process (the intake adds the store's lock per
chat, for processes sharing a PostgreSQL database). A handler calls the screening service
(which saves before it returns) and then sends its replies; running one chat's updates in
order keeps those replies in order and every handler free of a lock preamble. A chat holds a worker
only while it has work, and at most ``limit`` jobs run at the same time, so a chat with a
long queue never holds slots that other chats' jobs need.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)
Work = Callable[[], Awaitable[None]]


class ChatQueues:
    def __init__(self, limit: int = 64) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._queues: dict[int, deque[tuple[Work, asyncio.Future[None]]]] = {}
        self._newest: dict[int, int] = {}  # per busy chat: the newest update id submitted
        self._workers: set[asyncio.Task[None]] = set()

    def submit(
        self, chat_id: int, work: Work, update_id: int | None = None
    ) -> asyncio.Future[None]:
        """Queue ``work`` behind the chat's earlier work; the future is done when it ran."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if update_id is not None:
            self._newest[chat_id] = max(update_id, self._newest.get(chat_id, update_id))
        queue = self._queues.get(chat_id)
        if queue is not None:
            queue.append((work, done))
            return done
        self._queues[chat_id] = deque([(work, done)])
        worker = asyncio.create_task(self._drain(chat_id))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        return done

    def received(self, chat_id: int) -> int | None:
        """The newest update id submitted for a chat that has work (None when idle)."""
        return self._newest.get(chat_id)

    async def join(self, timeout: float) -> bool:
        """Wait until every queue is empty (at most ``timeout`` s); False if some were not."""
        try:
            await asyncio.wait_for(self._idle(), timeout)
        except TimeoutError:
            return False
        return True

    async def _idle(self) -> None:
        # Done workers are dropped here, not only by their done-callback: since Python 3.12
        # gather() of finished tasks returns without yielding, so the callback of a worker
        # that finished this iteration would never run and the loop would spin forever.
        while self._workers:
            workers = list(self._workers)
            await asyncio.gather(*workers, return_exceptions=True)
            self._workers.difference_update(workers)

    async def _drain(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                work, done = queue[0]
                try:
                    async with self._slots:
                        await work()
                except Exception as err:  # noqa: BLE001 - a job's own errors are its business
                    logger.error("work for a chat failed: %s", type(err).__name__)
                finally:
                    queue.popleft()
                    if not done.done():
                        done.set_result(None)
        finally:
            del self._queues[chat_id]
            self._newest.pop(chat_id, None)
