"""Rate limiting plus retries, so a 429, a 5xx or a timeout from the Bot API loses nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

logger = logging.getLogger(__name__)
# Where this task's calls note when each call that timed out began (see ``timeouts``).
_timed_out: ContextVar[list[float] | None] = ContextVar("timed_out", default=None)


@contextmanager
def timeouts() -> Iterator[list[float]]:
    """Within: the ``time.monotonic()`` at which each Bot API call of this task that
    timed out began. The Bot API may have done such a call (a message sent) all the same."""
    began: list[float] = []
    token = _timed_out.set(began)
    try:
        yield began
    finally:
        _timed_out.reset(token)


def _noting_timeouts(
    call: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def noted(*args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        try:
            return await call(*args, **kwargs)
        except TimedOut as err:
            noting = _timed_out.get()
            # Only a read timeout leaves the request with Telegram; one that timed out
            # connecting, or waiting for a connection, was never sent.
            if noting is not None and isinstance(err.__cause__, httpx.ReadTimeout):
                noting.append(began)
            raise

    return noted


class RetryingRateLimiter(AIORateLimiter):
    """:class:`AIORateLimiter` (which retries 429s) that also retries transient failures.

    ``BadRequest`` is a ``NetworkError`` in python-telegram-bot but is final, so it is
    not retried. A retried send after a timeout may arrive twice; that is preferred over
    an answer that never arrives. (A question's untracked copy keeps its buttons until one
    is pressed: the press is refused as already answered and the buttons are dropped.)
    """

    def __init__(self, attempts: int = 5, first_delay: float = 0.5, **kwargs: Any) -> None:
        super().__init__(max_retries=attempts, **kwargs)
        self.attempts = attempts
        self.first_delay = first_delay

    async def process_request(self, *args: Any, **kwargs: Any) -> Any:
        if "callback" in kwargs:  # the HTTP call itself: after the limiter's waits
            kwargs["callback"] = _noting_timeouts(kwargs["callback"])
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                return await super().process_request(*args, **kwargs)
            except BadRequest:
                raise
            except NetworkError as err:
                if attempt == self.attempts:
                    raise
                logger.warning(
                    "Bot API call %s failed (%s); retry %d in %.1f s",
                    kwargs.get("endpoint"),
                    type(err).__name__,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        raise AssertionError("unreachable")
