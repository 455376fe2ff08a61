"""What every command group shares: the --protocol option, settings, catalog, database."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ScreenBotError

if TYPE_CHECKING:  # imported where used: `screen-bot --help` loads no pydantic
    from ..protocol.catalog import Catalog
    from ..settings import Settings
    from ..storage import Database

ProtocolOption = Annotated[
    str | None,
    typer.Option("--protocol", "-p", help="Protocol id (may be left out when there is only one)."),
]


def settings() -> Settings:
    """The settings from the environment and .env; a bad value is an error, not a traceback."""
    from pydantic import ValidationError

    from ..settings import Settings

    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_url=False)
        )
        raise ScreenBotError(f"settings: {problems}") from None


def catalog() -> Catalog:
    """The protocols of the configured dialogs directory (loaded again when a file changed)."""
    directory = settings().dialogs_dir
    files = sorted(directory.glob("*.y*ml")) if directory.is_dir() else []
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _catalog(directory, stamp)


@functools.lru_cache(maxsize=4)
def _catalog(directory: Path, stamp: tuple[tuple[str, int, int], ...]) -> Catalog:
    # One command per process in use; the cache matters where several run in one process.
    from ..protocol.catalog import Catalog

    return Catalog(directory)


def database(*, existing: bool = False) -> Database:
    """The configured database; with ``existing``, refuse (exit 2) when there is none yet."""
    from ..storage import Database

    path = settings().database
    return Database.existing(path) if existing else Database(path)
