"""Rate limiting plus retries, so a 429, a 5xx or a timeout from the Bot API loses nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

logger = logging.getLogger(__name__)


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
