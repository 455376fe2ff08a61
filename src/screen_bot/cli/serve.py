"""``screen-bot run``'s work: the bot, from the settings to the end. Typer is not imported here.

``cli/bot.py``'s command calls :func:`serve` with its options. A bare ``screen-bot run`` (no
option, as a service runs it) comes here from the console script (``cli/entry.py``) without
the command line being built: Typer, its ~20 commands and their options cost ~25 ms of CPU
before the first poll, for nothing to read. :func:`main` ends it as Typer's standalone mode
and ``app.run`` end a command, with the same lines and exit codes.
"""

from __future__ import annotations

import errno
import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import ScreenBotError
from .outcome import exit_code

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage import Store

LISTEN, PORT = "127.0.0.1", 8443  # `run`'s defaults (webhook mode)


def main() -> None:
    """A bare ``screen-bot run``: exit as ``screen-bot run`` through Typer would."""
    sys.exit(exit_code(_as_typer_would, _echo))


def _as_typer_would() -> None:
    # What Typer's standalone main (typer.core._main) does with what escapes a command.
    try:
        serve()
    except EOFError:
        _echo("")
        _echo("Aborted!")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as err:
        if err.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        raise SystemExit(1) from None


def _echo(text: str) -> None:
    import typer  # only when there is something to say: an error

    typer.echo(text, err=True)


def serve(webhook: str | None = None, listen: str = LISTEN, port: int = PORT) -> None:
    """Run the bot until SIGINT or SIGTERM (see ``cli/bot.py``'s ``run`` for its errors)."""
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
        https.settle()  # an error before the first request: the load may still be going on


def _run(webhook: str | None, listen: str, port: int) -> None:
    from ..settings import load

    settings = load()
    problem = settings.token_problem()
    if problem:
        raise ScreenBotError(problem)
    if not settings.allowed_users:
        print(
            "warning: SCREEN_BOT_ALLOWED_USERS is empty, so the bot refuses everyone",
            file=sys.stderr,
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
