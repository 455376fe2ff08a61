"""What every command group shares: the --protocol option, settings, catalog, database."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # imported where used: `screen-bot --help` loads no pydantic
    from ..protocol.catalog import Catalog
    from ..protocol.sets import LeftOut
    from ..settings import Settings
    from ..storage import Store


def utf8_text(param: typer.CallbackParam, value: str | None) -> str | None:
    """An option's text that is looked up in the database must be UTF-8 (a mistyped byte
    reaches Python as a lone surrogate, which no database takes)."""
    if value is not None and not value.isascii():
        from ..errors import BadInput
        from ..words import quoted

        try:
            value.encode()
        except UnicodeEncodeError:
            raise BadInput(f"{param.opts[0]}: '{quoted(value)}' is not UTF-8 text") from None
    return value


ProtocolOption = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        "-p",
        help="Protocol id, or 'all' to screen against every protocol at once "
        "(left out: the only one, else you are asked).",
    ),
]
CheckProtocolOption = Annotated[  # check never asks: it checks every protocol
    str | None,
    typer.Option(
        "--protocol",
        "-p",
        help="Protocol id, or 'all' to check against every protocol at once (left out: "
        "every protocol, as with 'all').",
    ),
]
OneProtocolOption = Annotated[
    str | None,
    typer.Option(
        "--protocol", "-p", help="Protocol id (left out: the only one, else you are asked)."
    ),
]


def settings() -> Settings:
    """The settings from the environment and .env; a bad value is an error, not a traceback."""
    from ..settings import load

    return load()


def catalog() -> Catalog:
    """The protocols of the configured dialogs directories (loaded again when a file changed),
    the files already checked taken from the cache directory, as the bot takes them."""
    found = settings()
    directories = found.dialogs_dirs
    files = [f for d in directories if d.is_dir() for f in sorted(d.glob("*.y*ml"))]
    return _catalog(directories, tuple(map(_stamp, files)), found.checked_dialogs)


def _stamp(file: Path) -> tuple[str, int, int]:
    """What tells a changed file; a file that cannot be read (a dangling link) gets no
    stamp: the catalog lists it as broken, as ``validate`` does."""
    try:
        stat = file.stat()
    except OSError:
        return str(file), -1, -1
    return str(file), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4)
def _catalog(
    directories: tuple[Path, ...], stamp: tuple[tuple[str, int, int], ...], cache: Path
) -> Catalog:
    # One command per process in use; the cache matters where several run in one process.
    from ..protocol.catalog import Catalog

    return Catalog(directories, cache)


def choose(given: str | None, *, with_all: bool = True, ask: bool = True) -> str:
    """The protocol id to use (or ``all``): the one named, the only one, or the user's pick.

    With several protocols and none named, the choices are listed by number on stderr and
    one is read from standard input (unless ``ask`` is false, e.g. when the answers come on
    standard input); no choice (end of input) is an error naming the choices; 'quit' ends
    the command (exit 0), as it ends the dialog.
    """
    from ..protocol.catalog import ProtocolChoiceNeeded
    from ..words import QUIT_WORDS, quoted

    found = catalog()
    try:
        picked = found.resolve(given, with_all=with_all)
    except ProtocolChoiceNeeded as several:
        if not ask:
            raise
        choices = several.choices
        typer.echo("Several protocols are installed:", err=True)
        for number, choice in enumerate(choices, start=1):
            protocol = found.protocols.get(choice)
            what = (
                f"{protocol.version}: {protocol.title}"
                if protocol
                else "every protocol in one screening"
            )
            typer.echo(f"  {number}. {choice} ({what})", err=True)
        while True:
            typer.echo("Protocol (number or id): ", err=True, nl=False)
            line = sys.stdin.readline()
            if not line:
                typer.echo("", err=True)
                raise
            typed = line.strip()
            # (not isdigit(): '²' is a digit to it, and int() refuses it)
            if typed.isascii() and typed.isdecimal() and 1 <= int(typed) <= len(choices):
                picked = choices[int(typed) - 1]
                break
            if typed in choices:
                picked = typed
                break
            if typed.lower() in QUIT_WORDS:  # as the dialog that follows reads them
                typer.echo("Stopped; no protocol chosen.", err=True)
                raise typer.Exit(0) from None
            typer.echo(
                f"'{quoted(typed)}' is not one of them; type a number from the list.", err=True
            )
    for line in left_out(found, given, picked):
        typer.echo(f"warning: {line}", err=True)
    return picked


def left_out(found: Catalog, given: str | None, picked: str) -> list[str]:
    """The broken files a command leaves out, one line each, when it was to screen every
    protocol (``all``) or took the only valid one because none was named."""
    return found.left_out() if _every(found, given, picked) else []


def left_out_variables(found: Catalog, given: str | None, picked: str) -> LeftOut:
    """What a screening of every protocol (as :func:`left_out` tells one) knows of the
    broken files it leaves out; nothing for a screening of a protocol named."""
    from ..protocol.sets import LeftOut

    return found.left_out_variables() if _every(found, given, picked) else LeftOut()


def _every(found: Catalog, given: str | None, picked: str) -> bool:
    from ..protocol.sets import ALL

    return picked == ALL or (given is None and len(found.protocols) == 1)


def database(*, existing: bool = False) -> Store:
    """The configured database (SQLite file, or SCREEN_BOT_DATABASE_URL's PostgreSQL); with
    ``existing``, refuse (exit 2) when there is none yet."""
    from datetime import timedelta

    from .. import traces
    from ..errors import StorageFailed
    from ..storage import expiry, open_store

    configured = settings()
    store = open_store(configured.database, configured.database_url_text, existing=existing)
    # What the terminal left unfinished expires as the bot's does, not only while a bot runs
    # (a read-only file: the command may still read it).
    lifetime = timedelta(hours=configured.session_ttl_hours)
    traces.expire(configured.data_dir, lifetime)
    with contextlib.suppress(StorageFailed):
        expiry.expire(store, lifetime)
    return store
