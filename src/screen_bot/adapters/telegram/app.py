"""Build and run the python-telegram-bot Application (polling or webhook)."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlparse

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest

from ...protocol.catalog import Catalog, ProtocolNotFound
from ...screening_log import ScreeningLog
from ...settings import Settings
from ...store import Store
from ...training.scores import ScoreBook
from .bot import ScreeningBot
from .records import RecordHandlers
from .retry import RetryingRateLimiter
from .training import TrainingHandlers

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def configure_logging() -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    # httpx logs every request URL, and a Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def build_application(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    *,
    screening_log: ScreeningLog | None = None,
    score_book: ScoreBook | None = None,
    on_verdict: Any = None,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> tuple[Application, ScreeningBot]:
    """The Application with every handler; the log and score book add their commands."""
    assert settings.telegram_bot_token is not None
    if on_verdict is None and screening_log is not None:
        on_verdict = screening_log.append
    screening_bot = ScreeningBot(settings, catalog, store, on_verdict)
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .rate_limiter(RetryingRateLimiter())
        .concurrent_updates(True)
        .post_init(screening_bot.post_init)
        .post_shutdown(screening_bot.post_shutdown)
    )
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    application = builder.build()
    # Added first: their button handlers match their own data before the screening's.
    if score_book is not None:
        TrainingHandlers(catalog, score_book).add_handlers(application)
    if screening_log is not None:
        RecordHandlers(screening_log, store).add_handlers(application)
    screening_bot.add_handlers(application)
    return application, screening_bot


def run(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "127.0.0.1",
    port: int = 8443,
) -> None:
    """Run until SIGINT/SIGTERM. Polling unless ``webhook_url`` is given."""
    configure_logging()
    catalog = Catalog(settings.dialogs_dir)
    if not catalog.protocols:
        raise ProtocolNotFound(f"no valid dialog file in {catalog.directory}")
    store = Store(settings.database)
    screening_log = ScreeningLog(settings.database)
    application, _ = build_application(
        settings,
        catalog,
        store,
        screening_log=screening_log,
        score_book=ScoreBook(settings.database),
    )
    logging.getLogger(__name__).info(
        "screen-bot starting (%s), %d protocol(s), %d authorised user(s)",
        "webhook" if webhook_url else "polling",
        len(catalog.protocols),
        len(settings.allowed_users),
    )
    if webhook_url:
        secret = (
            settings.webhook_secret.get_secret_value()
            if settings.webhook_secret
            else secrets.token_urlsafe(32)
        )
        application.run_webhook(
            listen=listen,
            port=port,
            url_path=urlparse(webhook_url).path.lstrip("/"),
            webhook_url=webhook_url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
        )
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES, bootstrap_retries=5)
    store.close()
    screening_log.close()
