"""``screen-bot run``: the Telegram bot (python-telegram-bot is imported only in ``serve.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .serve import LISTEN, PORT, serve


def run(
    webhook: Annotated[
        str | None,
        typer.Option(
            help="Public HTTPS URL for webhook mode (default: long polling). "
            "Telegram must send SCREEN_BOT_WEBHOOK_SECRET (random if unset)."
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="Webhook mode: address to listen on.")] = LISTEN,
    port: Annotated[
        int, typer.Option(help="Webhook mode: port to listen on.", min=1, max=65535)
    ] = PORT,
) -> None:
    """Run the Telegram bot. Needs TELEGRAM_BOT_TOKEN (environment or .env).

    Exits 2 with one line when the Bot API rejects the token (401) or the URL (404), at
    start-up or while running, when it cannot be reached at start-up, or when the
    database is damaged: run it under a supervisor that restarts it. Also at start when
    another `run` uses the SQLite file, or an instance of another bot the PostgreSQL
    database. SIGINT or SIGTERM stop it after the updates in progress (the rest are
    handled at the next start).
    """
    serve(webhook, listen, port)


def register(app: typer.Typer) -> None:
    app.command()(run)
