"""``screen-bot run``: the Telegram bot (python-telegram-bot is imported only here)."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ScreenBotError
from . import options

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage import Store


def run(
    webhook: Annotated[
        str | None,
        typer.Option(
            help="Public HTTPS URL for webhook mode (default: long polling). "
            "Telegram must send SCREEN_BOT_WEBHOOK_SECRET (random if unset)."
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="Webhook mode: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webhook mode: port to listen on.")] = 8443,
) -> None:
    """Run the Telegram bot. Needs TELEGRAM_BOT_TOKEN (environment or .env).

    Exits 2 with one line when the Bot API rejects the token (401) or the URL (404), at
    start-up or while running, when it cannot be reached at start-up, or when the
    database is damaged: run it under a supervisor that restarts it. SIGINT or SIGTERM
    stop it after the updates in progress (the rest are handled at the next start).
    """
    # Start-up makes some 140,000 objects that live as long as the process (modules, dialogs,
    # the Application); the cyclic collector would walk them again and again while they are
    # made, about a tenth of the time to the first poll. It is off until the bot is started;
    # then they are frozen out of later collections and it is on again (app.started).
    gc.disable()
    # The CA bundle loads on a thread meanwhile (https.py): it is needed before the first
    # request, and the imports and checks of the bot take the main thread until then.
    from ..adapters.telegram import https

    https.preload()
    try:
        _run(webhook, listen, port)
    finally:
        gc.enable()


def _run(webhook: str | None, listen: str, port: int) -> None:
    settings = options.settings()
    problem = settings.token_problem()
    if problem:
        raise ScreenBotError(problem)
    if not settings.allowed_users:
        typer.echo(
            "warning: SCREEN_BOT_ALLOWED_USERS is empty, so the bot refuses everyone", err=True
        )
    # The database opens on a thread meanwhile too (created the first time: several flushes
    # to the disk); a problem with it is reported once the dialog files are checked.
    opening = ThreadPoolExecutor(1, thread_name_prefix="database")
    database = opening.submit(_open_database, settings)
    opening.shutdown(wait=False)
    from ..adapters.telegram.app import run as run_bot

    run_bot(settings, webhook_url=webhook, listen=listen, port=port, database=database)


def _open_database(settings: Settings) -> Store:
    from ..storage import open_checked

    return open_checked(settings.database, settings.database_url_text)


def register(app: typer.Typer) -> None:
    app.command()(run)
