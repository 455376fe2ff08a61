"""``screen --jobs N``: N processes screen, this one among them (it takes blocks whenever the
workers are all busy), and the output, the problems and the log are one process's, in row
order (issue #14); a worker that dies ends the run with an error, never a hang, and a run
killed (SIGKILL) takes its workers, and its hold on the database, with it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest

from cli_runner import invoke, process
from conftest import SHIPPED
from patients import ELIGIBLE_JSON
from screen_bot import batch_screen
from screen_bot.answers import today
from screen_bot.errors import BadInput
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.sets import ProtocolSet
from screen_bot.storage import Database, ledger, postgres
from stores import StoreUnderTest

BLINA = load(SHIPPED / "blina-dli.yaml")
BAD = 97  # every 97th row is bad


def _lines(count: int) -> list[str]:
    """Good rows of several verdicts, with bad rows and blank lines."""
    lines = []
    for i in range(count):
        row: dict[str, Any] = {**ELIGIBLE_JSON, "referral": f"R-{i}", "screened_on": "2026-01-15"}
        if i % 7 == 0:
            row["qtc_ms"] = 480
        if i % 11 == 0:
            row["lvef_percent"] = None
        lines.append(json.dumps(row))
        if i % BAD == 3:
            lines.append('{"age": "forty"}')  # a bad row
        if i % 131 == 5:
            lines.append("")  # a blank line: numbered, not screened
    return lines


_PARENT, _SCREEN_BLOCK = os.getpid(), batch_screen.screen_block
_HERE: list[int] = []  # the first row numbers of the blocks this process screened


def _counted(*args: Any) -> batch_screen.Chunk:
    if os.getpid() == _PARENT:  # a worker's list stays in the worker
        _HERE.append(args[2])
    return _SCREEN_BLOCK(*args)


def _run(
    source: Any, protocol: Protocol | ProtocolSet, jobs: int, output: str = "json"
) -> tuple[Any, ...]:
    chunks = list(batch_screen.screen_file(source, protocol, "jsonl", output, True, jobs, today()))
    logged = [(verdict, answers) for c in chunks for verdict, answers, _ in c.logged]
    return (
        b"".join(b"".join(c.output) for c in chunks),
        [p for c in chunks for p in c.problems],
        sum(c.bad_rows for c in chunks),
        logged,  # the screening ids are random
    )


@pytest.mark.parametrize("where", ["file", "memory"])
def test_this_process_and_the_workers_share_the_blocks_and_keep_the_order(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny blocks, so that this process takes some: row numbers, order, problems and log
    records are those of one process. From a file the workers read their blocks themselves
    (a block with a line over 1 MiB, which is not the file's bytes, is sent instead)."""
    protocol = BLINA
    lines = _lines(1500)
    lines.insert(700, '{"referral": "' + "x" * (1 << 20) + '"}')  # too long: a bad row
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "rows.jsonl"
    path.write_bytes(data)

    def source() -> Any:
        return path.open("rb") if where == "file" else io.BytesIO(data)

    with source() as raw:
        alone = _run(raw, protocol, 1)
    _HERE.clear()
    monkeypatch.setattr(batch_screen, "screen_block", _counted)
    monkeypatch.setattr(batch_screen, "BLOCK", 8192)
    monkeypatch.setattr(batch_screen, "LAST_BLOCK", 1024)
    with source() as raw:
        shared = _run(raw, protocol, 2)
    assert shared == alone
    assert alone[2] == len([i for i in range(1500) if i % BAD == 3]) + 1
    assert len(alone[3]) == 1500
    assert 0 < len(_HERE) < len(data) // 8192  # this process took some blocks, a worker others
    with source() as raw:  # three processes on two cores: still one process's output
        assert _run(raw, protocol, 3) == alone


def test_text_output_and_a_protocol_set_are_shared_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    protocols = ProtocolSet(tuple(load(path) for path in sorted(SHIPPED.glob("*.yaml"))))
    data = ("\n".join(_lines(300)) + "\n").encode()
    monkeypatch.setattr(batch_screen, "BLOCK", 4096)
    for output in ("json", "text"):
        alone = _run(io.BytesIO(data), protocols, 1, output)
        assert _run(io.BytesIO(data), protocols, 2, output) == alone


def test_jobs_log_the_records_one_process_logs(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(_lines(2500)) + "\n", encoding="utf-8")

    def logged(*jobs: str) -> list[tuple[Any, ...]]:
        done = invoke("screen", str(path), "--protocol", "blina-dli", "--log", *jobs)
        assert done.returncode == 2  # the bad rows
        with Database.existing(tmp_path / "data" / "screen-bot.sqlite3") as db:
            found = [
                (r.referral, r.verdict, r.answers, [x.criterion for x in r.reasons])
                for r in ledger.records(db.read())
            ]
        (tmp_path / "data" / "screen-bot.sqlite3").unlink()
        return found

    one = logged()
    assert len(one) == 2500 and one[0][0] == "R-0" and one[-1][0] == "R-2499"
    assert logged("--jobs", "2") == one


def _rewritten_after_each_block(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block, once read here, is rewritten on disk (same length, another referral),
    as an in-place rewrite of the file while it is screened would be."""
    read_blocks, writer = batch_screen.jsonl_blocks, os.open(path, os.O_WRONLY)

    def rewriting(raw: Any, size: Any) -> Any:
        for block in read_blocks(raw, size):
            os.pwrite(writer, block.replace(b'"R-', b'"Q-'), raw.tell() - len(block))
            yield block

    monkeypatch.setattr(batch_screen, "jsonl_blocks", rewriting)


def test_a_worker_reading_bytes_other_than_those_counted_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker re-reads its block from the file (os.pread); a file rewritten in place
    meanwhile would give rows screened from bytes their row numbers were not counted from.
    The first block always goes to a worker."""
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(_lines(300)) + "\n", encoding="utf-8")
    monkeypatch.setattr(batch_screen, "BLOCK", 8192)
    _rewritten_after_each_block(path, monkeypatch)
    with path.open("rb") as raw, pytest.raises(BadInput, match="rows from 1 on"):
        _run(raw, BLINA, 2)


def test_a_file_changed_while_read_is_one_error_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(_lines(300)) + "\n", encoding="utf-8")
    monkeypatch.setattr(batch_screen, "BLOCK", 8192)
    _rewritten_after_each_block(path, monkeypatch)
    done = invoke("screen", str(path), "--protocol", "blina-dli", "--jobs", "2", "--log")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        "error: the file changed while it was read: rows from 1 on were not screened "
        "(screen a copy that nothing writes to)"
    )


CRASH = """
import os, sys
from screen_bot import batch_screen
from screen_bot.errors import BadInput
from screen_bot.cli.app import run

parent, screen_block = os.getpid(), batch_screen.screen_block

def crash(*args):
    if os.getpid() != parent:
        os._exit(3)  # a worker dies (as when the system kills it)
    return screen_block(*args)

batch_screen.screen_block = crash
batch_screen.BLOCK = 4096
sys.exit(run(sys.argv[1:]))
"""


def test_a_worker_that_dies_ends_the_run_with_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(_lines(400)) + "\n", encoding="utf-8")
    args = ["screen", str(path), "--protocol", "blina-dli", "--format", "json", "--jobs", "2"]
    done = subprocess.run(
        [sys.executable, "-c", CRASH, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "unexpected error: BrokenProcessPool" in done.stderr


class _TickingClock(datetime):
    """A clock a day later at each reading (from 2026-03-01 23:59:59 UTC): a run that read
    it per row would screen each row on another day."""

    readings = 0

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _TickingClock:
        cls.readings += 1
        start = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
        moment = start + timedelta(days=cls.readings - 1)
        return cls.fromtimestamp(moment.timestamp(), tz)


@pytest.mark.parametrize(
    ("suffix", "args"),
    [
        (".jsonl", ()),
        (".jsonl", ("--jobs", "2")),
        (".csv", ("--jobs", "2")),
        (".jsonl", ("--protocol", "all", "--jobs", "2")),
        (".csv", ("--engine", "duckdb")),  # a blank line: the Python engine reads the file
    ],
)
def test_a_run_screens_every_row_without_screened_on_on_one_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, args: tuple[str, ...]
) -> None:
    """The dictionary's screening date is "today, UTC": taken once per run, so a file
    screened across midnight is screened on one day in every process, as on DuckDB."""
    from screen_bot import answers

    monkeypatch.setattr(answers, "datetime", _TickingClock)
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))
    _TickingClock.readings = 0
    rows = [{"referral": f"R-{i}", "age": 40, "sex": "female"} for i in range(1, 61)]
    path = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        lines = [f"{r['referral']},{r['age']},{r['sex']}\n" for r in rows]
        path.write_text("referral,age,sex\n" + "".join(lines[:30]) + "\n" + "".join(lines[30:]))
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if "--protocol" not in args:
        args = ("--protocol", "blina-dli", *args)
    result = invoke("screen", str(path), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    days = [json.loads(line)["screened_on"] for line in result.stdout.splitlines()]
    assert len(days) == 60 and set(days) == {"2026-03-01"}


class _SydneyMorning(datetime):
    """A clock at 2026-11-26 22:30 UTC: 09:30 on the 27th in Sydney."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _SydneyMorning:
        return cls.fromtimestamp(datetime(2026, 11, 26, 22, 30, tzinfo=UTC).timestamp(), tz)


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_row_without_screened_on_keeps_the_utc_day_whatever_the_sites_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Database, engine: str
) -> None:
    """Dictionary: "batch: the optional screened_on column, else today, UTC";
    SCREEN_BOT_TIMEZONE dates dialog screenings only (and the SQL is the same with it)."""
    from screen_bot import answers

    sql = invoke("sql", "--protocol", "blina-dli").stdout
    monkeypatch.setattr(answers, "datetime", _SydneyMorning)
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", "Australia/Sydney")
    path = tmp_path / "rows.csv"
    path.write_text("referral,age,sex\nR-1,40,female\n")
    args = ("--log",) if engine == "python" else ("--engine", "duckdb")
    result = invoke("screen", str(path), "-p", "blina-dli", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["screened_on"] == "2026-11-26"
    if engine == "python":
        (record,) = ledger.records(db.read())
        assert record.screened_on == date(2026, 11, 26)
    assert invoke("sql", "--protocol", "blina-dli").stdout == sql


STUCK_IN_A_WRITE = """
import sys, time
from pathlib import Path
from screen_bot.cli.app import run
from screen_bot.storage import ledger, postgres

# Only the end of its connection ends its transaction (not the server's idle timeout).
postgres.IDLE_IN_TRANSACTION_MS = 0
append_entries = ledger.append_entries

def stuck(tx, entries):
    append_entries(tx, entries)
    Path(sys.argv[1]).touch()  # in its first transaction, the write lock held
    time.sleep(3600)

ledger.append_entries = stuck
sys.exit(run(sys.argv[2:]))
"""


ON_LINUX = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; prctl is Linux's")


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Not ended (an ended process not yet reaped by its new parent is a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _until(done: Callable[[], bool], seconds: float = 60) -> bool:
    """Poll ``done()`` until it is true, giving up after ``seconds`` (a bound on a hang,
    not on speed)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def _stuck_run(
    store: StoreUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[subprocess.Popen[bytes], list[int]]]:
    """A real ``screen --jobs 2 --log`` run stopped in its first write transaction, the
    write lock held, its worker started: the run and its workers' pids."""
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(store.data_dir))
    for name, value in store.env().items():
        monkeypatch.setenv(name, value)
    inputs = tmp_path / "input"
    inputs.mkdir()
    rows = inputs / "rows.jsonl"
    rows.write_text("".join(f'{{"referral": "J-{i}", "age": 5}}\n' for i in range(5000)))
    marker = inputs / "in-transaction"
    args = ["screen", "--log", "-f", "json", "--jobs", "2", "-p", "blina-dli", str(rows)]
    with (inputs / "out").open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-c", STUCK_IN_A_WRITE, str(marker), *args], stdout=out
        )
    workers: list[int] = []
    try:
        assert _until(lambda: marker.exists() or run.poll() is not None)
        assert run.poll() is None, "the run ended before its first write"
        workers = _children(run.pid)
        assert len(workers) == 1
        yield run, workers
    finally:
        run.kill()
        run.wait()
        for pid in workers:  # left running (without the fix)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _fds(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            found.append(os.readlink(fd))
    return found


@ON_LINUX
def test_a_worker_holds_nothing_of_the_store(
    store: StoreUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers are forked before the store is opened: none holds the database file, or
    a copy of the run's connection to the server (which would keep the run's session, and
    its write lock, open after the run is killed)."""
    data = str(store.data_dir / "screen-bot.sqlite3")  # and its -wal, -shm
    with _stuck_run(store, tmp_path, monkeypatch) as (run, workers):
        assert any(f.startswith(data) or f.startswith("socket:") for f in _fds(run.pid))
        for pid in workers:
            held = [f for f in _fds(pid) if f.startswith(data) or f.startswith("socket:")]
            assert held == []


@ON_LINUX
def test_a_killed_run_takes_its_workers_and_its_write_lock_with_it(
    store: StoreUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL (a supervisor, the OOM killer, ``timeout -s KILL``) of a run mid-write: the
    next write goes through, not kept waiting by the killed run's transaction (a worker's
    copy of its connection kept it open), and its workers end too (they would never notice:
    each holds both ends of the pool's pipes)."""
    one = str(tmp_path / "one.jsonl")
    Path(one).write_text('{"referral": "N-1", "age": 5}\n')
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_MS", 200)  # a try waits no longer if locked
    with _stuck_run(store, tmp_path, monkeypatch) as (run, workers):
        run.kill()
        run.wait()
        assert _until(lambda: invoke("screen", "--log", "-p", "blina-dli", one).returncode == 0)
        verified = process("log", "verify")
        assert verified.returncode == 0, verified.stderr
        assert _until(lambda: not any(_running(pid) for pid in workers))
    with store.open() as db:  # the killed run's transaction was never committed
        assert [r.referral for r in ledger.records(db.read())] == ["N-1"]
