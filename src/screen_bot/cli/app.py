"""The one entry point, ``screen-bot``: the Typer app (errors become output in ``outcome.py``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer
from typer.main import get_command

from . import bot, dialogs, log, options, population, screening, training
from .outcome import exit_code

if TYPE_CHECKING:
    from pathlib import Path

app = typer.Typer(
    rich_markup_mode=None,  # plain help: no "<bool>" after flags, and no rich import
    help="Pre-screen patients against clinical-trial protocols: in the terminal, in batch, "
    "or as a Telegram bot. A pre-screen is not an eligibility decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for group in (screening, dialogs, log, training, bot, population):
    group.register(app)


@app.command()
def where() -> None:
    """Print where screen-bot keeps its data (SCREEN_BOT_DATA_DIR overrides), its dialogs and
    its cache."""
    settings = options.settings()
    a_file = settings.data_dir.exists() and not settings.data_dir.is_dir()
    typer.echo(f"data directory:    {settings.data_dir}{' (a file, not a directory)' * a_file}")
    if settings.database_url_text:
        from ..dburl import hidden

        typer.echo(f"database:          {hidden(settings.database_url_text)} (PostgreSQL)")
    else:
        missing = "" if settings.database.exists() else " (not created yet)"
        if a_file:
            missing = " (cannot be created: the data directory is a file; set SCREEN_BOT_DATA_DIR)"
        typer.echo(f"database:          {settings.database}{missing}")
        # The default of versions before 2026-11-25 14:00 (the working directory's ./data):
        # a site upgraded without moving it would start a second, empty database unawares.
        from pathlib import Path

        earlier = Path("data", settings.database.name)
        if earlier.is_file() and earlier.resolve() != settings.database.resolve():
            typer.echo(
                f"earlier database:  {earlier.absolute()} (./data, the default before "
                "2026-11-25: move it to the data directory above, or set "
                "SCREEN_BOT_DATA_DIR=data)"
            )
    for directory in settings.dialogs_dirs:  # one a line: a path may hold any character
        missing = (
            ""
            if directory.is_dir()
            else " (not a directory)"
            if directory.exists()
            else " (does not exist)"
        )
        typer.echo(f"dialogs directory: {directory}{missing}")
    typer.echo(f"cache directory:   {settings.cache_dir} ({_what_is_kept(settings.cache_dir)})")
    typer.echo(f"time zone:         {settings.time_zone.key} (the day a chat or check is dated)")


def _what_is_kept(cache_dir: Path) -> str:
    from ..protocol.cache import holds_dialog_files

    if holds_dialog_files(cache_dir):
        return (
            "it holds YAML files, so nothing is kept there: dialog files are checked at every start"
        )
    if not cache_dir.exists():
        return "not created yet: dialog files already checked are kept there"
    if not cache_dir.is_dir():
        return "a file, not a directory: nothing is kept there"
    return "dialog files already checked"


@app.command()
def migrate() -> None:
    """Create the database's tables, or bring them to this screen-bot's versions, and print
    each table group's version (every command does this when it opens the database; run it
    with the owner's SCREEN_BOT_DATABASE_URL when the bot's own role may not create tables).
    The screening log's guards (triggers) that were dropped or disabled are put back; a
    role that may not do that gets exit 2 saying so.
    """
    from ..errors import ScreenBotError, StorageFailed
    from ..storage import ledger
    from ..storage.db import versions

    with options.database() as db:
        typer.echo(f"database: {db.where}")
        for name, version in sorted(versions(db.read()).items()):
            changed = " (applied now)" if name in db.applied else ""
            typer.echo(f"  {name}: version {version}{changed}")
        if not ledger.guards_not_in_force(db.read()):
            return
        try:
            with db.transaction() as tx:
                restored = ledger.restore_guards(tx)
        except StorageFailed as err:
            cause = str(err.__cause__ or err).strip().splitlines()[0]
            raise ScreenBotError(
                "the screening log's guards (triggers) are missing or disabled, and they "
                f"cannot be put back here ({cause}): run 'screen-bot migrate' as the tables' "
                "owner"
            ) from None
        typer.echo(f"  screening_log: guards put back ({', '.join(restored)})")


def run(argv: Sequence[str]) -> int:
    """Run one command line; return its exit code. Every error ends here, as one line."""
    command = get_command(app)
    # standalone: Typer prints usage errors and turns typer.Exit into SystemExit
    return exit_code(
        lambda: command.main(args=list(argv), prog_name="screen-bot", standalone_mode=True),
        _echo,
    )


def _echo(text: str) -> None:
    typer.echo(text, err=True)


def main() -> None:
    """Console entry point: errors a user can act on, never a traceback."""
    sys.exit(run(sys.argv[1:]))
