"""A healthy database in a hostile place (read-only, a full disk, a directory in its way)
is named with the real cause and its fix, never called damaged; the commands that only
read still read a read-only one; a file that is not screen-bot's is refused, unchanged."""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cli_runner import Ran, invoke, process
from screen_bot.errors import DatabaseBroken
from screen_bot.storage import Database

DAMAGED_ADVICE = "restore the latest backup"
READING = (("log", "verify"), ("log", "export"), ("log", "stats"))


def screened(referral: str) -> None:
    done = invoke("chat", "--referral", referral, stdin="70\n")  # not eligible at 70: finished
    assert done.returncode == 0, done.stderr


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a directory) made read-only: ``chattr +i`` as root (root writes
    past the permissions), else the write permissions taken away."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root, and chattr +i is not supported here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_read_only_database_is_read_by_the_log_commands_and_named_by_the_others(
    data_dir: Path,
) -> None:
    screened("R-RO1")
    path = data_dir / "screen-bot.sqlite3"
    before = path.read_bytes()
    with read_only(path):
        for command in READING:
            done = invoke(*command)
            assert done.returncode == 0, (command, done.stderr)
        assert "intact: last record 1" in invoke("log", "verify").stdout
        assert "R-RO1" in invoke("log", "export").stdout
        done = invoke("chat", "--referral", "R-2", stdin="70\n")
        assert done.returncode == 2 and DAMAGED_ADVICE not in done.stderr, done.stderr
        assert done.stderr.startswith(f"error: the database {path} cannot be written: ")
        assert "writ" in done.stderr.split(": ")[-1]  # the fix: make it (or them) writable
    assert path.read_bytes() == before


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _bound_by_permissions() -> None:
    """In the child before exec: root without the capabilities by which it reads and writes
    past the permission bits (the bounding set; ``execve`` gives root no more)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def as_a_user(*args: str, stdin: str | None = None) -> Ran:
    """``screen-bot`` as a real process that the permission bits bind, as they bind a user
    who owns the data directory: as root, without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (not as another uid: a checkout or a Python under /root, mode 0700, is not theirs to run)."""
    if os.geteuid() != 0:
        return process(*args, stdin=stdin)
    try:
        return process(*args, stdin=stdin, preexec_fn=_bound_by_permissions)
    except subprocess.SubprocessError:  # raised in the child by _bound_by_permissions
        pytest.skip("root cannot drop CAP_DAC_OVERRIDE here (no CAP_SETPCAP in this container)")


def _refused_with_the_fix(path: Path, run: Callable[..., Ran]) -> None:
    for command in (*READING, ("chat",)):
        done = run(*command, stdin="70\n")
        assert done.returncode == 2, (command, done.stdout)
        assert DAMAGED_ADVICE not in done.stderr and str(path) in done.stderr
        assert "writable" in done.stderr, done.stderr
        if command in READING:  # they only read: a copy they can read is a fix
            assert "cannot be written" not in done.stderr, (command, done.stderr)
            assert "cannot be read where it is" in done.stderr, (command, done.stderr)
            assert "copy the file" in done.stderr, (command, done.stderr)


def test_a_database_in_a_read_only_directory_is_refused_with_the_fix(data_dir: Path) -> None:
    """SQLite must create the -shm beside a WAL database to read it; reading it as
    'immutable' instead could give a torn read if a writer elsewhere (a read-only mount of a
    directory a bot writes) changes it meanwhile. Without write permission on the directory
    SQLite says SQLITE_READONLY_DIRECTORY (audit 22: it was answered 'cannot be written …
    make the directory writable', not README's 'copy the file')."""
    screened("R-RO1")
    path = data_dir / "screen-bot.sqlite3"
    before = path.read_bytes()
    mode = data_dir.stat().st_mode
    data_dir.chmod(mode & ~0o222)
    try:
        _refused_with_the_fix(path, as_a_user)
    finally:
        data_dir.chmod(mode)
    assert path.read_bytes() == before


def test_a_database_in_an_immutable_directory_is_refused_with_the_fix(data_dir: Path) -> None:
    """``chattr +i``, which binds root too (SQLite: SQLITE_CANTOPEN)."""
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root (CAP_LINUX_IMMUTABLE)")
    screened("R-RO1")
    path = data_dir / "screen-bot.sqlite3"
    before = path.read_bytes()
    with read_only(data_dir):
        _refused_with_the_fix(path, invoke)
    assert path.read_bytes() == before


def test_the_log_reports_its_missing_head_from_a_read_only_file(data_dir: Path) -> None:
    screened("R-1")
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("DELETE FROM screening_log_head")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with read_only(path):
        done = invoke("log", "verify")
    assert done.returncode == 1 and "the log head is missing but 1 records remain" in done.stdout


@pytest.mark.parametrize("table", ["screening_log", "screening_log_head"])
def test_a_table_of_its_own_dropped_is_a_damaged_database(data_dir: Path, table: str) -> None:
    screened("R-1")
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {table}")
    db.close()
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"error: the database {path} is damaged (no such table")
        assert DAMAGED_ADVICE in done.stderr
    assert not list(data_dir.glob("error-*.txt"))


def test_a_directory_at_the_database_path_is_named_so(data_dir: Path) -> None:
    (data_dir / "screen-bot.sqlite3").mkdir(parents=True)
    for command in (("chat",), ("log", "verify")):
        done = invoke(*command, stdin="70\n")
        assert done.returncode == 2, done.stdout
        assert "is a directory" in done.stderr and DAMAGED_ADVICE not in done.stderr


def test_a_file_of_another_program_is_refused_and_left_unchanged(data_dir: Path) -> None:
    data_dir.mkdir()
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        other.execute("INSERT INTO notes (body) VALUES ('not screen-bot data')")
    other.close()
    path.chmod(0o644)
    before = path.read_bytes()
    for command in (*READING, ("chat",)):
        done = invoke(*command, stdin="70\n")
        assert done.returncode == 2, (command, done.stdout)
        assert done.stderr == (
            f"error: the file {path} is not a screen-bot database (it has tables notes, and no "
            "schema_version): left unchanged; point SCREEN_BOT_DATA_DIR at screen-bot's data "
            "directory\n"
        )
    assert path.read_bytes() == before and (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in data_dir.iterdir()) == ["screen-bot.sqlite3"]


def test_a_file_that_is_not_sqlite_is_refused_as_another_programs_file(
    data_dir: Path, tmp_path: Path
) -> None:
    """A wrong path (notes.csv) is not a damaged database: no advice to restore a backup
    or to move a salvaged database in its place, which would overwrite the user's file."""
    data_dir.mkdir()
    notes = tmp_path / "notes.csv"
    for path in (notes, data_dir / "screen-bot.sqlite3"):
        path.write_text("referral,age\nR-1,40\n" * 200)
        path.chmod(0o644)
    before = notes.read_bytes()
    quiz = ("quiz", "-p", "blina-dli", "--progress", "--database", str(notes))
    for command in (quiz, *READING, ("chat",)):
        path = notes if command is quiz else data_dir / "screen-bot.sqlite3"
        done = invoke(*command, stdin="70\n")
        assert done.returncode == 2, (command, done.stdout)
        assert done.stderr == (
            f"error: the file {path} is not a screen-bot database (not an SQLite file): left "
            "unchanged; check the path (SCREEN_BOT_DATA_DIR, --database)\n"
        )
        assert path.read_bytes() == before and (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in data_dir.iterdir()) == ["screen-bot.sqlite3"]
    assert sorted(p.name for p in tmp_path.glob("notes*")) == ["notes.csv"]


def test_a_file_with_a_table_of_the_same_name_is_not_called_damaged(data_dir: Path) -> None:
    data_dir.mkdir()
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE inbox (id INTEGER PRIMARY KEY, subject TEXT)")
    other.close()
    before = path.read_bytes()
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2 and "not a screen-bot database" in done.stderr, done.stderr
    assert path.read_bytes() == before
    done = invoke("chat", stdin="70\n")  # would make it one: fails on the clash, undamaged
    assert done.returncode == 2 and DAMAGED_ADVICE not in done.stderr, done.stderr
    assert str(path) in done.stderr and "no such column" in done.stderr


def test_the_reading_commands_migrate_a_log_from_before_schema_versions(data_dir: Path) -> None:
    """README, Migrations: whenever a command opens the database, the versions it lacks are
    applied; a file from before versions (2026-11-25) is screen-bot's log, not another
    program's file, for the log commands too."""
    logged = invoke(
        "screen", "-", "-p", "blina-dli", "--log", stdin='{"referral": "R-1", "age": 40}\n'
    )
    assert logged.returncode == 0, logged.stderr
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("DROP TABLE schema_version")  # as the releases before it
    old.close()
    for command in READING:
        done = (
            invoke(*command, "-o", str(data_dir / "out.csv"))
            if command[1] == "export"
            else invoke(*command)
        )
        assert done.returncode == 0 and "not a screen-bot database" not in done.stderr, (
            command,
            done.stderr,
        )
    assert invoke("log", "verify").stdout.startswith("intact: last record 1,")
    with sqlite3.connect(path) as migrated:
        assert migrated.execute("SELECT count(*) FROM schema_version").fetchone()[0] > 0
    migrated.close()


def test_the_reading_commands_refuse_an_sqlite_file_without_tables(data_dir: Path) -> None:
    data_dir.mkdir()
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as other:
        other.execute("PRAGMA user_version = 7")  # a database of nothing yet, not 0 bytes
    other.close()
    before = path.read_bytes()
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2, (command, done.stdout)
        assert done.stderr == (
            f"error: the file {path} is not a screen-bot database (no schema_version and no "
            "screening log): left unchanged; point SCREEN_BOT_DATA_DIR at screen-bot's data "
            "directory\n"
        )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "tables",
    [
        "CREATE TABLE screening_log (id INTEGER PRIMARY KEY, note TEXT);"
        " CREATE TABLE screening_log_head (x TEXT); INSERT INTO screening_log (note) VALUES ('m')",
        "CREATE TABLE screening_log (a, b, c); CREATE TABLE screening_log_head (a)",
    ],
    ids=["other columns and a row", "columns unnamed"],
)
def test_the_reading_commands_leave_another_programs_log_tables_unchanged(
    data_dir: Path, tables: str
) -> None:
    """Tables of the log's names but not its columns are not screen-bot's log from before
    versions: refused, the file as it was (no tables added, no WAL, no chmod)."""
    data_dir.mkdir()
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as other:
        other.executescript(tables)
    other.close()
    path.chmod(0o644)
    before = path.read_bytes()
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "no schema_version and no screening log" in done.stderr, done.stderr
    assert path.read_bytes() == before
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_reading_commands_refuse_an_empty_file(data_dir: Path) -> None:
    data_dir.mkdir()
    path = data_dir / "screen-bot.sqlite3"
    path.write_bytes(b"")  # a copy or a restore that failed
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2 and "intact" not in done.stdout, done.stdout
        assert done.stderr.startswith(f"error: the database {path} is an empty file (0 bytes)")
    assert path.stat().st_size == 0


def test_the_commands_that_create_the_database_refuse_an_empty_file_too(
    data_dir: Path, tmp_path: Path
) -> None:
    """Made into a new database, a failed restore would start a new log on top of it."""
    data_dir.mkdir()
    path, notes = data_dir / "screen-bot.sqlite3", tmp_path / "notes.db"
    quiz = ("quiz", "-p", "blina-dli", "--progress", "--database", str(notes))
    screen = ("screen", "-", "-p", "blina-dli", "--log")
    for command in (("migrate",), screen, quiz, ("chat",), ("chat", "--referral", "R-1")):
        file = notes if command is quiz else path
        file.write_bytes(b"")
        file.chmod(0o644)
        done = invoke(*command, stdin='{"referral": "R-1", "age": 40}\n')
        assert done.returncode == 2, (command, done.stdout)
        assert done.stderr == (
            f"error: the database {file} is an empty file (0 bytes): nothing screen-bot logged "
            "is in it (a copy or a restore that failed?); left unchanged\n"
        ), command
        assert file.stat().st_size == 0 and (file.stat().st_mode & 0o777) == 0o644, command
        assert not Path(f"{file}-wal").exists() and not Path(f"{file}-shm").exists(), command
    env = {
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
    }
    done = process("run", **env)
    assert done.returncode == 2 and "is an empty file (0 bytes)" in done.stderr, done.stderr
    assert path.stat().st_size == 0 and (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in data_dir.iterdir()) == ["screen-bot.sqlite3"]


def test_a_first_start_that_fails_leaves_no_empty_file_behind(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new file is written under another name and linked into place once SQLite made
    it: a full disk (or a kill) while it is made leaves nothing, where an empty file at the
    database's path would be refused by every later command."""
    path = data_dir / "screen-bot.sqlite3"
    connect = sqlite3.connect

    def full(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(database, *args, **kwargs)
        if Path(database).name != path.name:  # the file being made
            connection.close()
            raise sqlite3.OperationalError("database or disk is full")
        return connection

    with monkeypatch.context() as patched:
        patched.setattr(sqlite3, "connect", full)
        with pytest.raises(DatabaseBroken, match="disk is full"):
            Database(path)
    assert list(data_dir.iterdir()) == []
    Database(path).close()  # the next start creates it
    assert path.stat().st_size > 0
    assert sorted(p.name for p in data_dir.iterdir()) == [path.name]


def test_a_newer_schema_is_refused_naming_the_file(data_dir: Path) -> None:
    assert invoke("migrate").returncode == 0
    path = data_dir / "screen-bot.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 9 WHERE name = 'open_sessions'")
    db.close()
    for command in (("log", "verify"), ("chat",)):
        done = invoke(*command, stdin="70\n")
        assert done.returncode == 2 and done.stderr.startswith(
            f"error: the database {path} has version 9 of the open_sessions tables, newer than "
            "this screen-bot knows"
        ), done.stderr


# -- a filesystem of our own (root only: mount) ----------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a small filesystem needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_read_only_filesystem_is_named_with_its_fix(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_disk / "data"
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(data))
    screened("R-ROFS1")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for command in READING:
        done = invoke(*command)
        assert done.returncode == 2 and "mounted read-only" in done.stderr, done.stderr
        assert "copy the file" in done.stderr and DAMAGED_ADVICE not in done.stderr
    done = invoke("chat", "--referral", "R-2", stdin="70\n")
    assert done.returncode == 2 and "mounted read-only" in done.stderr, done.stderr


def test_a_full_disk_is_named_not_called_damaged(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_disk / "data"
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(data))
    screened("R-FULL1")
    filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError):
        while True:
            os.write(filler, b"\0" * 4096)
    os.close(filler)
    done = invoke("chat", "--referral", "R-2", stdin="70\n")
    assert done.returncode == 2 and DAMAGED_ADVICE not in done.stderr, done.stderr
    assert "full" in done.stderr and "free some space" in done.stderr, done.stderr
    (small_disk / "filler").unlink()
    assert "R-FULL1" in invoke("log", "export").stdout


def test_the_write_ahead_files_a_read_only_read_left_are_made_writable_again(
    data_dir: Path,
) -> None:
    screened("R-1")
    path = data_dir / "screen-bot.sqlite3"
    path.chmod(0o400)  # read as the log commands read a read-only file
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    reader.execute("SELECT count(*) FROM screening_log").fetchone()
    reader.close()
    path.chmod(0o600)
    companions = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    # SQLite made them with the file's mode, and a read-only connection leaves them: for
    # anyone but root, every write would fail ("attempt to write a readonly database").
    assert all(c.exists() and not c.stat().st_mode & 0o200 for c in companions)
    with Database(path) as db:
        assert all(c.stat().st_mode & 0o777 == 0o600 for c in companions if c.exists())
        assert not db.read_only


def test_a_new_database_is_made_where_files_cannot_be_hard_linked(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT and some network shares refuse a hard link: the new file is moved into place."""

    def no_links(source: str, target: Path) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    Database(data_dir / "screen-bot.sqlite3").close()
    assert [p.name for p in data_dir.iterdir()] == ["screen-bot.sqlite3"]
    assert (data_dir / "screen-bot.sqlite3").stat().st_mode & 0o777 == 0o600
