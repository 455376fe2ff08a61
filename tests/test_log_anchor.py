"""``log verify`` against a head printed earlier (``--head HASH``), and the purge checkpoint.

A hash chain alone cannot see a log cut back to an earlier record with its head rolled
back, nor a whole log rewritten with fresh hashes: both are consistent. A head kept
elsewhere can. A purge is reported with its checkpoint, and one forged with plain SQL
(no purge date) is not taken for a purge.
"""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_runner import Ran
from screen_bot.storage.ledger import _SQLITE_GUARDS, COLUMNS, _hash

Cli = Callable[..., Ran]


@pytest.fixture
def logged(cli: Cli, data_dir: Path) -> Path:
    lines = "".join(f'{{"referral": "R-{i}", "age": {70 + i}}}\n' for i in range(3))
    assert cli("screen", "-", "--log", stdin=lines).returncode == 0
    return data_dir / "screen-bot.sqlite3"


def head_of(cli: Cli) -> str:
    done = cli("log", "verify")
    assert done.returncode == 0, done.stdout
    return done.stdout.split("hash ")[1].split()[0]


@contextmanager
def tamper(path: Path) -> Iterator[sqlite3.Connection]:
    """Plain SQL, with the guard triggers dropped, as anyone with the sqlite3 shell, and
    put back afterwards (verify reports a guard missing)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for guard in _SQLITE_GUARDS:
            db.execute(f"DROP TRIGGER {guard.name}")
        yield db
        for guard in _SQLITE_GUARDS:
            db.execute(guard.create)
    finally:
        db.close()


def test_a_log_cut_back_with_its_head_is_found_by_the_head_printed_before(
    cli: Cli, logged: Path
) -> None:
    head = head_of(cli)
    with tamper(logged) as db:
        (previous,) = db.execute("SELECT hash FROM screening_log WHERE number = 2").fetchone()
        db.execute("DELETE FROM screening_log WHERE number = 3")
        db.execute("UPDATE screening_log_head SET head_number = 2, head_hash = ?", (previous,))
    assert cli("log", "verify").returncode == 0  # consistent: the chain alone cannot tell
    done = cli("log", "verify", "--head", head)
    assert done.returncode == 1
    assert f"the head {head[:16]}… is not in the log" in done.stdout


def test_a_rewritten_log_is_found_by_the_head_printed_before(cli: Cli, logged: Path) -> None:
    head = head_of(cli)
    with tamper(logged) as db:
        db.execute("UPDATE screening_log SET verdict = 'eligible' WHERE number = 2")
        prev = db.execute("SELECT hash FROM screening_log WHERE number = 1").fetchone()[0]
        for number in (2, 3):  # recompute the chain from the changed record on
            stored = COLUMNS  # every hashed column, the later ones included
            row = db.execute(
                f"SELECT {', '.join(stored)} FROM screening_log WHERE number = ?", (number,)
            ).fetchone()
            digest = _hash(dict(zip(stored, row, strict=True)), prev)
            db.execute(
                "UPDATE screening_log SET prev_hash = ?, hash = ? WHERE number = ?",
                (prev, digest, number),
            )
            prev = digest
        db.execute("UPDATE screening_log_head SET head_hash = ?", (prev,))
    assert cli("log", "verify").returncode == 0
    assert cli("log", "verify", "--head", head).returncode == 1
    assert cli("log", "verify", "--head", head_of(cli)).returncode == 0


def test_a_purge_forged_with_plain_sql_is_not_taken_for_a_purge(cli: Cli, logged: Path) -> None:
    with tamper(logged) as db:
        (base,) = db.execute("SELECT hash FROM screening_log WHERE number = 2").fetchone()
        db.execute("UPDATE screening_log_head SET base_number = 2, base_hash = ?", (base,))
        db.execute("DELETE FROM screening_log WHERE number <= 2")
    done = cli("log", "verify")
    assert done.returncode == 1
    assert "the checkpoint (record 2) was not set by a purge" in done.stdout


def test_verify_reports_the_checkpoint_it_relied_on(cli: Cli, logged: Path) -> None:
    purged_head = head_of(cli)
    with sqlite3.connect(logged) as db:
        (first,) = db.execute("SELECT hash FROM screening_log WHERE number = 1").fetchone()
    assert cli("log", "purge", "--before", "2999-01-01", "--yes").returncode == 0
    done = cli("log", "verify")
    assert done.returncode == 0
    assert "checked from the purge checkpoint: record 3" in done.stdout
    assert "purged before 2999-01-01" in done.stdout
    assert cli("log", "verify", "--head", purged_head).returncode == 0  # the checkpoint itself
    done = cli("log", "verify", "--head", first)  # purged since: cannot be vouched for
    assert done.returncode == 1 and "checkpoint record 3" in done.stdout


def test_verify_before_any_purge_says_so_and_checks_a_good_head(cli: Cli, logged: Path) -> None:
    head = head_of(cli)
    done = cli("log", "verify", "--head", head.upper())
    assert done.returncode == 0
    assert "checked from the first record (nothing purged)" in done.stdout
    assert "is record 3: still in the log" in done.stdout
    done = cli("log", "verify", "--head", "abc")
    assert done.returncode == 2 and "64-character hash" in done.stderr


def test_an_export_file_is_readable_by_its_owner_only(
    cli: Cli, logged: Path, tmp_path: Path
) -> None:
    out = tmp_path / "log.csv"
    out.write_text("old")
    out.chmod(0o644)
    assert cli("log", "export", "-o", str(out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "R-2" in out.read_text(encoding="utf-8-sig")
