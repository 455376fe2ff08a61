"""The one place errors become output and exit codes, for the Typer app (``app.py``) and for
a bare ``screen-bot run``, which starts the bot without building the command line
(``serve.py``). Typer is not imported here: ``echo`` writes the lines."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from .. import traces
from ..errors import ScreenBotError
from ..redact import redact


def exit_code(call: Callable[[], object], echo: Callable[[str], None]) -> int:
    """Run ``call``; return its exit code. Every error ends here, as one line."""
    try:
        call()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except ScreenBotError as err:
        from ..settings import secrets_to_hide

        echo(f"error: {redact(err.message, secrets_to_hide())}")  # a driver's message may quote one
        return err.exit_code
    except Exception as err:  # noqa: BLE001 - the one place an unexpected error is reported
        where = write_trace(err)
        echo(f"unexpected error: {type(err).__name__}; full trace in {where}")
        return 1
    return 0


def write_trace(err: Exception) -> Path | str:
    """The plain traceback, in an owner-only file of the data directory (removed after the
    sessions' lifetime: ``traces.expire``)."""
    from ..settings import load

    trace = "".join(traceback.format_exception(err))
    try:
        settings = load()
        trace = redact(trace, settings.secrets())  # a library's message may hold the token
        directory = settings.data_dir
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # as Database makes it
        handle, name = tempfile.mkstemp(prefix=traces.prefix(), suffix=traces.SUFFIX, dir=directory)
        with open(handle, "w", encoding="utf-8") as file:  # mkstemp: a new file, owner-only
            file.write(trace)
        return Path(name)
    except (OSError, ScreenBotError):
        return "(not written: the data directory cannot be written)"
