"""Options and helpers shared by every command module."""

from __future__ import annotations

from typing import Annotated

import typer

from .protocol.catalog import Catalog
from .settings import Settings

ProtocolOption = Annotated[
    str | None,
    typer.Option("--protocol", "-p", help="Protocol id (may be left out when there is only one)."),
]


def catalog() -> Catalog:
    """The protocols of the configured dialogs directory."""
    return Catalog(Settings().dialogs_dir)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
