"""The baseline of the end-to-end benchmark: a bare python-telegram-bot echo bot.

Built like ``screen-bot run`` builds its Application (same base URLs, AIORateLimiter,
concurrent updates, long polling, same logging), it replies to every text with the same
text: one sendMessage per message. With BENCH_NO_LIMIT=1 the limiter's rates are zero.
"""

import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    await context.bot.send_message(update.effective_chat.id, update.effective_message.text)


def main(
    reply: Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]] = echo,
) -> None:
    """Poll until stopped, answering every text with ``reply`` (the echo)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    unlimited = os.environ.get("BENCH_NO_LIMIT") == "1"
    limiter = (
        AIORateLimiter(overall_max_rate=0, group_max_rate=0) if unlimited else AIORateLimiter()
    )
    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .base_file_url(os.environ["TELEGRAM_API_FILE_URL"])
        .rate_limiter(limiter)
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, reply))
    application.run_polling(allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])


if __name__ == "__main__":
    main()
