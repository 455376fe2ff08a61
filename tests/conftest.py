"""Shared fixtures: an isolated environment for every test, the protocol, answers, the CLI."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from cli_runner import Ran, invoke
from fakebot import FakeBotApi
from patients import ELIGIBLE
from postgres_server import Unavailable, postgres_cluster
from screen_bot.engine import Engine
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.catalog import Catalog
from screen_bot.storage import Database
from stores import StoreUnderTest, cluster_url, new_database

# Tests assert behaviour, never wall-clock time: no per-example deadline (a busy CI machine
# would otherwise fail a property that holds).
settings.register_profile("screen-bot", deadline=None)
settings.load_profile("screen-bot")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "dialogs"  # the repository's protocols: any number of them
DIALOG = SHIPPED / "blina-dli.yaml"
# the protocols' own texts and data dictionary: the project's folder beside the clone, not
# part of the repository (README, Two commands)
SHARED_PROTOCOL = REPO.parent / "shared" / "protocol"


def shared_protocol_text(name: str) -> str:
    """A file of ../shared/protocol; without it the test is skipped saying what it needs."""
    path = SHARED_PROTOCOL / name
    if not path.is_file():
        pytest.skip(
            f"{path} is absent: the tests of the dialog files against the protocol's own text "
            "and data dictionary (every criterion's source verbatim; the variables, types, "
            "ranges and rules) need the project's shared/protocol folder beside this clone, "
            "as ../shared/protocol (it is not in the repository)"
        )
    return path.read_text(encoding="utf-8")


def _one_protocol_directory() -> Path:
    """A dialogs directory holding a copy of blina-dli only (removed at exit).

    Most tests screen "the one protocol" without naming it; they run against this
    directory, so adding protocol files to dialogs/ changes none of them. The tests of
    several protocols side by side make their own directories.
    """
    directory = Path(tempfile.mkdtemp(prefix="screen-bot-dialogs-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    shutil.copy2(DIALOG, directory / DIALOG.name)
    return directory


DIALOGS = _one_protocol_directory()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every process it starts) gets its own data directory and working
    directory, its own cache directory, the repository's dialogs and no bot token: nothing
    is ever written to the user's real data or cache directory, and no .env of a developer
    is read."""
    data = tmp_path / "data"
    for name in [n for n in os.environ if n.startswith(("SCREEN_BOT_", "TELEGRAM_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(data))
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(DIALOGS))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    monkeypatch.chdir(tmp_path)
    return data


@pytest.fixture
def data_dir(isolated: Path) -> Path:
    return isolated


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    with Database(data_dir / "screen-bot.sqlite3") as opened:
        yield opened


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    """The blina-dli protocol, loaded once for the whole run."""
    return load(DIALOG)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The repository's dialogs, loaded once (read-only; engines are shared anyway)."""
    return Catalog(DIALOGS)


@pytest.fixture(scope="session")
def engine(protocol: Protocol) -> Engine:
    return Engine(protocol)


@pytest.fixture
def eligible() -> dict[str, Any]:
    """Every variable answered for a woman eligible on every rule (a fresh copy)."""
    return dict(ELIGIBLE)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL cluster per test worker: the URL of its ``postgres``
    database (skipped, with the reason, where the server cannot be started)."""
    try:
        with postgres_cluster() as dsn:
            yield cluster_url(dsn)
    except Unavailable as err:
        pytest.skip(str(err))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """A bot process's store (its data directory: ``tmp_path``), once the SQLite file and
    once a new PostgreSQL database."""
    if request.param == "sqlite":
        return StoreUnderTest("sqlite", tmp_path)
    url = new_database(request.getfixturevalue("postgres_server"))
    return StoreUnderTest("postgres", tmp_path, url)


@pytest.fixture
def postgres_store(postgres_server: str, tmp_path: Path) -> StoreUnderTest:
    """A new PostgreSQL database (for what only PostgreSQL does: several processes)."""
    return StoreUnderTest("postgres", tmp_path, new_database(postgres_server))


@pytest.fixture
def fake() -> Iterator[FakeBotApi]:
    """The fake Bot API (``tests/fakebot``), served on loopback for the test."""
    with FakeBotApi() as api:
        yield api


@pytest.fixture
async def harness(tmp_path: Path, catalog: Catalog) -> AsyncIterator[Any]:
    """The bot's Application on the offline Telegram harness (no HTTP at all)."""
    from test_telegram_transcript import Harness  # imports python-telegram-bot: only here

    h = Harness(tmp_path, catalog)
    await h.application.initialize()
    yield h
    await h.application.shutdown()
    h.db.close()


@pytest.fixture
def cli() -> Callable[..., Ran]:
    """``cli("log", "stats", stdin=...)``: the command line in-process (code, stdout, stderr)."""
    return invoke


# The longest tests (real processes, a benchmark smoke run) first: with several workers
# (scripts/test runs pytest -n 3) they then overlap the many short ones instead of
# starting last and making the run wait for them.
LONGEST_FIRST = (
    "test_benchmarks_smoke.py",
    "test_e2e_hardening.py",
    "test_kill9.py",
    "test_two_instances.py",
    "test_e2e_bot.py",
    "test_dialog_properties.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file is kept
