"""Build and run the bot: the Application (handlers only, no Updater), the intake, and
long polling or a webhook.

python-telegram-bot's Updater confirms updates before they are handled; here our own
poller (``polling.py``) or webhook (``webhook.py``) hands raw updates to the
:class:`~.intake.Intake`, which stores them before they are confirmed and then runs the
Application's handlers on them, one chat at a time.

Start-up checks: the dialog files (a broken file is logged and the good ones load; with
none valid the start ends, whatever the database) and meanwhile, on a thread, the database
(SQLite: ``PRAGMA quick_check``; PostgreSQL: it answers and has the tables); then the token
and URL with a ``getMe`` (401: token rejected, 404: URL wrong, exit 2 without retrying; no
answer: a few retries, then exit 2). A second ``run`` on the SQLite file is refused before
the getMe, an instance of another bot on the database after it (``storage/running.py``,
exit 2); a database another bot used before is taken over. No output ever holds the
token: logs go through a redacting formatter, and errors name the setting, not the URL with
the token in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import secrets
import signal
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlparse

from telegram.constants import WebhookLimit
from telegram.error import TelegramError
from telegram.ext import Application
from telegram.request import BaseRequest

from ...dburl import hidden as without_password
from ...errors import ScreenBotError
from ...protocol.catalog import Catalog
from ...redact import RedactingFormatter, redact
from ...service import ScreeningService
from ...settings import Settings
from ...storage import Store, inbox, open_checked, running
from ...training.scores import ScoreBook
from . import https, webhook
from .bot import ScreeningBot
from .botapi import ApiError, RawBotApi, Unreachable
from .gate import StrangerGate
from .https import BOT_POOL, POLLING_POOL, KnownAnswers, https_request
from .intake import Intake
from .polling import ALLOWED_UPDATES, Poller, rejected
from .records import RecordHandlers
from .retry import RetryingRateLimiter
from .training import TrainingHandlers
from .turn import App

logger = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
START_ATTEMPTS = 3  # getMe tries at start-up, 1 s then 2 s apart
SECRET_MIN = int(WebhookLimit.MIN_SECRET_TOKEN_LENGTH)
SECRET_MAX = int(WebhookLimit.MAX_SECRET_TOKEN_LENGTH)
SECRET_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{SECRET_MIN},{SECRET_MAX}}}")
DRAIN_SECONDS = 10  # on shutdown, how long handlers in progress may take to finish


def configure_logging(hidden: list[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(LOG_FORMAT, hidden))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # httpx logs every request URL, and a Bot API URL contains the token; transitions logs
    # every state change of every screening (the verdict state among them).
    for name in ("httpx", "httpcore", "transitions", "tornado.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It logs an answer it cannot read whole (a cut-short sendMessage answer holds the text
    # sent), then raises, and the caller says what failed.
    logging.getLogger("telegram.request").setLevel(logging.CRITICAL)


def build_application(
    settings: Settings,
    catalog: Catalog,
    db: Store,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> tuple[App, ScreeningBot]:
    """The Application with every handler set, on one screening service and database.

    Without ``request``, every HTTPS client (the Application's two and the refusals') is
    made here, on the process's one TLS context (``https.py``).
    """
    if settings.telegram_bot_token is None:
        raise ScreenBotError("TELEGRAM_BOT_TOKEN is not set")
    service = ScreeningService(
        catalog,
        db,
        channel="telegram",
        outbox=True,
        zone=settings.time_zone,
        lifetime=settings.session_lifetime,
    )
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .rate_limiter(RetryingRateLimiter())
        .updater(None)  # our poller or webhook feeds the Application (intake.py)
    )
    builder = builder.request(request or https_request(BOT_POOL))
    builder = builder.get_updates_request(get_updates_request or https_request(POLLING_POOL))
    application = builder.build()
    refusals = RawBotApi(application.bot.base_url, request or https_request(2), settings.secrets())
    screening_bot = ScreeningBot(settings, service, StrangerGate(refusals))
    # Button handlers match their own callback-data pattern, so the order is free; only
    # the unknown-command fallback must come after every command.
    screening_bot.add_handlers(application)
    TrainingHandlers(lambda: service.catalog, ScoreBook(db)).add_handlers(application)
    RecordHandlers(db, service).add_handlers(application)
    screening_bot.add_fallback(application)
    return application, screening_bot


def report_catalog(catalog: Catalog) -> None:
    """Log the protocols served, and each broken file with its first problem."""
    log = logging.getLogger(__name__)
    log.info("%d protocol(s): %s", len(catalog.protocols), ", ".join(catalog.protocols))
    for file, problem in catalog.broken().items():  # listed, never silently dropped
        log.warning("dialog file %s is broken: %s", file, problem.brief())
    for directory in catalog.missing():
        log.warning("dialogs directory %s: %s", directory.file, directory.brief())
    for problem in catalog.conflicts:
        log.warning("'all' is not offered: %s", problem)


def run(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    listen: str = "127.0.0.1",
    port: int = 8443,
    database: Future[Store] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. Polling unless ``webhook_url`` is given. ``database``: the
    store already being opened (``storage.open_checked`` on a thread), else it is opened here."""
    secret = webhook_secret(settings) if webhook_url else None
    hidden = settings.secrets() + ([secret] if secret else [])  # a made-up secret too
    configure_logging(hidden)
    try:
        asyncio.run(_serve(settings, webhook_url, secret, hidden, listen, port, database))
    except ScreenBotError as err:
        raise ScreenBotError(redact(err.message, hidden), err.exit_code) from None


def webhook_secret(settings: Settings) -> str:
    """SCREEN_BOT_WEBHOOK_SECRET, or one made up for this process when it is unset."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return secrets.token_urlsafe(32)


async def _serve(
    settings: Settings,
    webhook_url: str | None,
    secret: str | None,
    hidden: list[str],
    listen: str,
    port: int,
    database: Future[Store] | None = None,
) -> None:
    # While the dialog files are checked (Python, on this thread), the CA store loads and the
    # database opens on threads (started by cli/serve.py already, before the bot's imports):
    # both wait on C code or the disk (creating the database flushes it several times), not
    # on the GIL. A broken dialog set is still reported first, as when they ran one after
    # the other.
    https.preload()
    opening = (
        asyncio.wrap_future(database)
        if database is not None
        else asyncio.get_running_loop().run_in_executor(
            None, open_checked, settings.database, settings.database_url_text
        )
    )
    try:
        catalog = Catalog(settings.dialogs_dirs, cache=settings.checked_dialogs)
        if not catalog.protocols:
            catalog.get()  # raises ProtocolNotFound, naming the problems found
    except BaseException:
        with contextlib.suppress(Exception):
            (await opening).close()
        raise
    report_catalog(catalog)
    with await opening as db, running.sole_run(db):  # a second `run` on the file: exit 2
        # getMe, the webhook calls and our poller's getUpdates. The Application never polls
        # (no Updater), so this is also its getUpdates client rather than one more unused
        # one; the Application closes it at shutdown, after the poller has stopped.
        polling_request = https_request(2)
        application, screening_bot = build_application(
            settings, catalog, db, get_updates_request=polling_request
        )
        api = RawBotApi(application.bot.base_url, polling_request, hidden)
        me = await check_token(api, settings.telegram_api_base_url)
        running.claim(db, me["id"])  # before anything of the store is read or sent
        if isinstance(application.bot.request, KnownAnswers):  # initialize's getMe: no 2nd call
            application.bot.request.known("getMe", with_username(me))
        intake = Intake(application, screening_bot, db)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        server, polling, sweeping = None, None, None
        try:
            try:
                await application.initialize()
            except Exception as err:  # noqa: BLE001 - its text may hold the token
                raise ScreenBotError(
                    f"the Bot API failed at start-up ({type(err).__name__})"
                ) from None
            with db.transaction() as tx:
                inbox.prune(tx)
            # The start's expiry pass first: what the last run left that is past its lifetime
            # (a verdict not sent, an update stored, a question to send again) goes, unsent.
            await screening_bot.post_init(application)
            if not webhook_url:
                intake.caught_up.clear()  # until the first poll: see intake.py
            intake.recover()  # first in each chat's queue, before anything new arrives
            if webhook_url:
                assert secret is not None
                if not SECRET_TOKEN.fullmatch(secret):  # the Bot API would refuse it
                    raise ScreenBotError(
                        f"SCREEN_BOT_WEBHOOK_SECRET must be {SECRET_MIN}-{SECRET_MAX} characters "
                        "of A-Z, a-z, 0-9, _ and - (the Bot API's rule for the webhook's secret "
                        "token); "
                        "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                    )
                if db.shared and settings.webhook_secret is None:
                    logger.warning(
                        "the webhook secret is made up for this process only: give every "
                        "instance behind the URL the same SCREEN_BOT_WEBHOOK_SECRET"
                    )
                try:
                    server = webhook.serve(intake, secret, urlparse(webhook_url).path, listen, port)
                except OSError as err:
                    raise ScreenBotError(
                        f"cannot listen on {listen}:{port} ({err.strerror or err})"
                    ) from None
                await set_webhook(api, webhook_url, secret)
            else:
                await delete_webhook(api)
            logger.info(
                "screen-bot starting (%s), %d protocol(s), %d authorised user(s)",
                "webhook" if webhook_url else "polling",
                len(catalog.protocols),
                len(settings.allowed_users),
            )
            await application.start()
            started()
            polling = asyncio.create_task(Poller(api, intake).run()) if not webhook_url else None
            sweeping = asyncio.create_task(intake.watch())
            await _until(stop, polling)
        finally:
            if sweeping is not None:
                sweeping.cancel()
            if polling is not None:
                polling.cancel()
                with contextlib.suppress(asyncio.CancelledError, ScreenBotError):
                    await polling
            if server is not None:
                server.stop()
            if not await intake.queues.join(DRAIN_SECONDS):
                logger.warning(
                    "stopping with replies in progress: at restart, updates with nothing saved"
                    " are handled again, and questions and verdicts not sent are sent"
                )
            await screening_bot.post_shutdown(application)
            if application.running:
                await application.stop()
            with contextlib.suppress(TelegramError):
                await application.shutdown()
            await screening_bot.gate.idle()
            await api.shutdown()
            await screening_bot.gate.api.shutdown()


def started() -> None:
    """Start-up is over: what it made lives as long as the process, so no later collection
    walks it (``gc.freeze``; the few hundred unreachable objects among it stay); the
    collector, off since ``cli.serve.serve``, is on again."""
    gc.freeze()
    gc.enable()


async def _until(stop: asyncio.Event, polling: asyncio.Task[None] | None) -> None:
    """Wait for SIGINT/SIGTERM, or for the poller to end (it raises why)."""
    stopped = asyncio.create_task(stop.wait())
    waiting = {stopped} if polling is None else {stopped, polling}
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if polling is not None and polling in done:
        polling.result()


async def check_token(api: RawBotApi, base_url: str) -> dict[str, Any]:
    """getMe: a rejected token or a wrong URL ends the start at once; silence, after retries.
    Returns the bot's user, as the Bot API gave it."""
    delay, reason = 1.0, ""
    for attempt in range(START_ATTEMPTS):
        try:
            me = await api.call("getMe", timeout=10)
        except ApiError as err:
            fatal = rejected(err.code, "at start-up")
            if fatal is not None:
                raise fatal from None
            reason = f"{err.code} {err.description}"
        except Unreachable as err:
            reason = str(err)
        else:
            if isinstance(me, dict) and isinstance(me.get("id"), int):
                return me
            raise ScreenBotError(
                f"{without_password(base_url)} answered getMe without a bot: "
                "is TELEGRAM_API_BASE_URL a Bot API server?"
            )
        if attempt + 1 < START_ATTEMPTS:
            logger.warning("the Bot API did not answer (%s); retrying in %.0f s", reason, delay)
            await asyncio.sleep(delay)
            delay *= 2
    raise ScreenBotError(
        f"the Bot API at {without_password(base_url)} did not answer ({reason}); check the "
        "network and TELEGRAM_API_BASE_URL"
    )


def with_username(me: dict[str, Any]) -> dict[str, Any]:
    """The bot's user with ``username`` a string: "" when getMe gave none (the Bot API's
    User has it as optional). python-telegram-bot's CommandHandler compares a command's
    ``@name`` with it as a string; with "", only the plain ``/command`` is ours."""
    username = me.get("username")
    return me if isinstance(username, str) else {**me, "username": ""}


async def set_webhook(api: RawBotApi, url: str, secret: str) -> None:
    params = {"url": url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES}
    try:
        await api.call("setWebhook", params, timeout=30)
    except ApiError as err:
        fatal = rejected(err.code, "setting the webhook")
        raise fatal or ScreenBotError(
            f"the Bot API refused the webhook ({err.code} {err.description}); check --webhook"
        ) from None
    except Unreachable as err:
        raise ScreenBotError(
            f"the webhook could not be set: the Bot API did not answer ({err})"
        ) from None


async def delete_webhook(api: RawBotApi) -> None:
    """Polling needs no webhook set (getUpdates answers 409 while one is)."""
    try:
        await api.call("deleteWebhook", timeout=30)
    except ApiError as err:
        fatal = rejected(err.code, "at start-up") if err.code == 401 else None
        if fatal is not None:
            raise fatal from None
        logger.warning("deleteWebhook failed (%d %s)", err.code, err.description)
    except Unreachable as err:
        logger.warning("deleteWebhook failed (%s)", err)
