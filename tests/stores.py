"""The two stores the bot runs on, for tests: the SQLite file, and a PostgreSQL database.

A test that takes the ``store`` fixture (conftest.py) runs once on each. PostgreSQL comes
from one throwaway cluster per test worker (``postgres_server.py``); each test gets a new
database in it, so tests never see each other's rows. Where the server binaries cannot be
had, the PostgreSQL runs are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screen_bot.storage import Store, open_store

_numbers = itertools.count(1)


def cluster_url(dsn: str) -> str:
    """``host=… port=… user=… dbname=…`` (postgres_server's form) as a postgresql:// URL."""
    fields = dict(part.split("=", 1) for part in dsn.split())
    return f"postgresql://{fields['user']}@{fields['host']}:{fields['port']}/{fields['dbname']}"


def new_database(server: str) -> str:
    """Create an empty database on the cluster at ``server`` (a URL); return its URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


@dataclass(frozen=True)
class StoreUnderTest:
    """Where a bot process under test keeps its data, and how the test reads it."""

    kind: str  # "sqlite" or "postgres"
    data_dir: Path
    url: str | None = None

    def env(self) -> dict[str, str]:
        """What a bot process needs in its environment to use this store."""
        return {"SCREEN_BOT_DATABASE_URL": self.url} if self.url else {}

    def open(self) -> Store:
        return open_store(self.data_dir / "screen-bot.sqlite3", self.url)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query (``?`` placeholders) on the store; its rows as tuples."""
        with self.open() as db:
            return [tuple(row) for row in db.read().all(sql, params)]

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])
