"""The rate limiter retries transient Bot API failures and nothing else."""

from __future__ import annotations

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from screen_bot.adapters.telegram.retry import RetryingRateLimiter


def failing(*errors: Exception):
    calls: list[int] = []

    async def callback(*args, **kwargs):
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return {"ok": True}

    return callback, calls


async def run(limiter: RetryingRateLimiter, callback) -> object:
    await limiter.initialize()
    try:
        return await limiter.process_request(
            callback=callback,
            args=(),
            kwargs={},
            endpoint="sendMessage",
            data={"chat_id": 1},
            rate_limit_args=None,
        )
    finally:
        await limiter.shutdown()


@pytest.mark.parametrize("error", [TimedOut(), NetworkError("Bad Gateway (502)"), RetryAfter(0)])
async def test_transient_failure_is_retried(error: Exception) -> None:
    callback, calls = failing(error, error)
    assert await run(RetryingRateLimiter(first_delay=0.01), callback) == {"ok": True}
    assert len(calls) == 3


async def test_bad_request_is_final() -> None:
    callback, calls = failing(BadRequest("message is too long"))
    with pytest.raises(BadRequest):
        await run(RetryingRateLimiter(first_delay=0.01), callback)
    assert len(calls) == 1


async def test_gives_up_after_its_attempts() -> None:
    callback, calls = failing(*[TimedOut()] * 10)
    with pytest.raises(TimedOut):
        await run(RetryingRateLimiter(attempts=3, first_delay=0.01), callback)
    assert len(calls) == 3
