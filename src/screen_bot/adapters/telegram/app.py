"""Build and run the python-telegram-bot Application (polling or webhook)."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlparse

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest

from ...errors import ScreenBotError
from ...protocol.catalog import Catalog
from ...reports import Reports
from ...service import ScreeningService
from ...settings import Settings
from ...storage import Database
from ...training.scores import ScoreBook
from .bot import ScreeningBot
from .ordering import PerChatOrder
from .records import RecordHandlers
from .retry import RetryingRateLimiter
from .training import TrainingHandlers
from .turn import App

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
    db: Database,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> tuple[App, ScreeningBot]:
    """The Application with every handler set, on one screening service and database."""
    if settings.telegram_bot_token is None:
        raise ScreenBotError("TELEGRAM_BOT_TOKEN is not set")
    service = ScreeningService(catalog, db, channel="telegram")
    screening_bot = ScreeningBot(settings, service)
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .rate_limiter(RetryingRateLimiter())
        .concurrent_updates(PerChatOrder())
        .post_init(screening_bot.post_init)
        .post_shutdown(screening_bot.post_shutdown)
    )
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    application = builder.build()
    # Button handlers match their own callback-data pattern, so the order is free; only
    # the unknown-command fallback must come after every command.
    screening_bot.add_handlers(application)
    TrainingHandlers(catalog, ScoreBook(db)).add_handlers(application)
    RecordHandlers(Reports(db), service).add_handlers(application)
    screening_bot.add_fallback(application)
    return application, screening_bot


def report_catalog(catalog: Catalog) -> None:
    """Log the protocols served, and each broken file with its first problem."""
    log = logging.getLogger(__name__)
    log.info("%d protocol(s): %s", len(catalog.protocols), ", ".join(catalog.protocols))
    for file, problem in catalog.broken().items():  # listed, never silently dropped
        log.warning("dialog file %s is broken: %s", file, problem.brief())
    for problem in catalog.conflicts:
        log.warning("'all' is not offered: %s", problem)


def run(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "127.0.0.1",
    port: int = 8443,
) -> None:
    """Run until SIGINT/SIGTERM. Polling unless ``webhook_url`` is given."""
    configure_logging()
    catalog = Catalog(settings.dialogs_dirs)
    if not catalog.protocols:
        catalog.get()  # raises ProtocolNotFound, naming the problems found
    report_catalog(catalog)
    with Database(settings.database) as db:
        application, _ = build_application(settings, catalog, db)
        logging.getLogger(__name__).info(
            "screen-bot starting (%s), %d authorised user(s)",
            "webhook" if webhook_url else "polling",
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
