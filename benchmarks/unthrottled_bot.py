"""``screen-bot run`` with its rate limiter's rates set to zero (retries kept).

Only for the end-to-end benchmark's second pair, beside the echo bot run with
BENCH_NO_LIMIT=1: it shows what the bot itself costs when the 30 calls/s limit does not.
"""

import sys

from screen_bot.adapters.telegram import app
from screen_bot.adapters.telegram.retry import RetryingRateLimiter
from screen_bot.cli.app import main


class Unthrottled(RetryingRateLimiter):
    def __init__(self) -> None:
        super().__init__(overall_max_rate=0, group_max_rate=0)


if __name__ == "__main__":
    app.RetryingRateLimiter = Unthrottled  # type: ignore[misc]
    sys.argv = ["screen-bot", "run"]
    main()
