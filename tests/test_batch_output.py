"""The batch's output is written as bytes where that gives what writing text would."""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import signal
import subprocess
import sys
from bisect import bisect_right
from collections.abc import Sequence
from contextlib import suppress
from datetime import date
from itertools import accumulate
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_runner import SCREEN_BOT, invoke
from conftest import SHIPPED
from patients import ELIGIBLE_JSON
from screen_bot.batch_screen import screen_file
from screen_bot.cli.output import OutputCut, rows_writer
from screen_bot.heap import keep_freed_memory
from screen_bot.protocol import load
from screen_bot.storage import ledger
from screen_bot.storage.db import Tx

DISK_FULL = "the disk holding standard output is full (free some space)"
ROWS = '{"row":1,"label":"LVEF ≥ 50 %","formula":"(140 − age) × weight kg"}\n{"row":2}\n'


def _written(text: str, encoding: str, through_writer: bool, to: Path | None) -> bytes:
    """What writing ``text`` (two rows) gives, after a line written as text, in memory or
    to the file ``to`` (through its file descriptor)."""
    memory = io.BytesIO()
    out = io.TextIOWrapper(
        memory if to is None else to.open("wb"), encoding=encoding
    )  # newlines as sys.stdout's: os.linesep
    out.write("a line written as text first é\n")  # held in the wrapper until flushed
    if through_writer:
        data = text.encode()
        first_row = data.index(b"\n") + 1
        rows_writer(out)(data, lambda: [first_row, len(data)])
    else:
        out.write(text)
    out.flush()
    written = memory.getvalue() if to is None else to.read_bytes()
    out.close()
    return written


@pytest.mark.parametrize("to_file", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "latin-1", "utf-16"])
def test_the_bytes_written_are_those_writing_the_text_would_write(
    tmp_path: Path, encoding: str, to_file: bool
) -> None:
    text = (
        ROWS if "16" in encoding or "8" in encoding else ROWS.translate(str.maketrans("≥−×", ">-x"))
    )
    to = [tmp_path / "by-writer", tmp_path / "as-text"] if to_file else [None, None]
    assert _written(text, encoding, True, to[0]) == _written(text, encoding, False, to[1])


@pytest.mark.parametrize("to_file", [False, True])
def test_text_written_before_stays_before(tmp_path: Path, to_file: bool) -> None:
    assert (
        _written(ROWS, "utf-8", True, tmp_path / "out" if to_file else None)
        == "a line written as text first é\n".encode() + ROWS.encode()
    )


def test_keeping_freed_memory_is_set_where_malloc_is_glibcs() -> None:
    try:
        glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except ValueError:
        glibc = False
    assert keep_freed_memory() is glibc


def test_a_run_collects_with_the_collector_on_and_leaves_it_as_it_was() -> None:
    """``cli/entry.py`` starts ``screen`` with the collector off: a run turns it on (a row's
    cycles are still collected) and leaves it as its caller had it."""
    row = json.dumps({**ELIGIBLE_JSON, "screened_on": "2026-01-15"}).encode()
    protocol = load(SHIPPED / "blina-dli.yaml")
    seen = []
    was_on = gc.isenabled()
    try:
        for on_before in (False, True):
            (gc.enable if on_before else gc.disable)()
            rows = io.BytesIO(row)
            for _ in screen_file(rows, protocol, "jsonl", "json", False, 1, date(2026, 1, 15)):
                seen.append(gc.isenabled())
            assert gc.isenabled() is on_before and gc.get_freeze_count() == 0
    finally:
        (gc.enable if was_on else gc.disable)()
    assert seen == [True, True]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_screen_from_the_console_script_ends_with_start_ups_objects_frozen(
    tmp_path: Path, engine: str
) -> None:
    """Through ``cli/entry.py``: start-up without the collector, the run with it (either
    engine), and what is left at the end frozen out of the collection the interpreter makes
    as it exits; the output is a run's all the same."""
    rows = _eligible_rows(tmp_path / "rows.jsonl", 3)
    code = (
        "import atexit, gc, sys\n"
        "import screen_bot.batch_screen as batch_screen, screen_bot.cli.options as options\n"
        "import screen_bot.adapters.duckdb_batch as duckdb_batch\n"
        "real_catalog = options.catalog\n"
        "def catalog():  # the Python engine's start-up ends with it (called twice)\n"
        "    if sys.argv[-1] == 'python' and options.catalog is catalog:\n"
        "        print('start-up:', gc.isenabled(), file=sys.stderr)\n"
        "        options.catalog = real_catalog\n"
        "    return real_catalog()\n"
        "def probed(real):\n"
        "    def run(*args):\n"
        "        print('run:', gc.isenabled(), file=sys.stderr)\n"
        "        yield from real(*args)\n"
        "    return run\n"
        "options.catalog = catalog\n"
        "batch_screen._screen_file = probed(batch_screen._screen_file)\n"
        "duckdb_batch.screen_file = probed(duckdb_batch.screen_file)\n"
        "atexit.register(lambda: print('frozen:', gc.get_freeze_count() > 0, file=sys.stderr))\n"
        "from screen_bot.cli.entry import main\n"
        "sys.argv = ['screen-bot', *sys.argv[1:]]\n"
        "main()\n"
    )
    args = ["screen", str(rows), "--protocol", "blina-dli", "--format", "json", "--engine", engine]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    start_up = ["start-up: False"] if engine == "python" else []
    assert done.stderr.splitlines() == [*start_up, "run: True", "frozen: True"]
    assert done.stdout == invoke(*args).stdout


def _eligible_rows(path: Path, count: int) -> Path:
    """``count`` eligible rows as JSON Lines, referrals R-1 to R-``count``."""
    row = {**ELIGIBLE_JSON, "screened_on": "2026-01-15"}
    path.write_text(
        "".join(json.dumps({**row, "referral": f"R-{i}"}) + "\n" for i in range(1, count + 1))
    )
    return path


def _read_then_close(command: list[str]) -> tuple[bytes, str, int]:
    """Run ``command``, read its output until three lines came and close it, as `head -3`
    does: (every byte its writes put out, its standard error, its exit code). Before the
    pipe is closed the program is stopped and the pipe read empty: what a reader leaves
    unread is lost when it closes, and stopped the program writes nothing meanwhile, so what
    is read is exactly what its writes put out (``head`` would see less of it)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as screen:
        assert screen.stdout is not None and screen.stderr is not None
        fd, got = screen.stdout.fileno(), b""
        while got.count(b"\n") < 3:
            part = os.read(fd, 65536)
            assert part, screen.stderr.read().decode()
            got += part
        os.kill(screen.pid, signal.SIGSTOP)
        os.waitpid(screen.pid, os.WUNTRACED)  # (returns once it is stopped)
        os.set_blocking(fd, False)
        with suppress(BlockingIOError):
            while part := os.read(fd, 65536):
                got += part
        screen.stdout.close()
        os.kill(screen.pid, signal.SIGCONT)
        errors = screen.stderr.read().decode()
        return got, errors, screen.wait(timeout=120)


def _rows_whole(output: bytes) -> list[int]:
    """The numbers of the rows ``output`` (JSON Lines) holds whole; what follows the last
    whole one is the start of the next one, or nothing."""
    *whole, rest = output.split(b"\n")
    numbers = [json.loads(line)["row"] for line in whole]
    assert numbers == list(range(1, len(numbers) + 1))
    assert f'{{"row":{len(numbers) + 1},'.encode().startswith(rest[:8]), rest[:100]
    return numbers


def _stopped_saying(cause: str, last: int, log: bool) -> str:
    """The error line of a run whose output stopped after row ``last``."""
    done = f"rows up to {last} were written{' and logged' if log else ''}; " if last else ""
    unlogged = ", nothing from it on is logged" if log else ""
    return f"error: {cause}: {done}screening stopped at row {last + 1}{unlogged}"


def _assert_logged_exactly(errors: str, last: int, per_row: int = 1) -> None:
    """The run says it logged rows 1 to ``last`` (``per_row`` records each), and so it did."""
    assert errors.splitlines()[-2] == f"screening log: {last * per_row} records appended"
    logged = invoke("log", "export", "-f", "jsonl").stdout.splitlines()
    assert sorted(json.loads(r)["referral"] for r in logged) == sorted(
        f"R-{i}" for i in range(1, last + 1) for _ in range(per_row)
    )


@pytest.mark.parametrize(
    ("jobs", "protocol"), [("1", "blina-dli"), ("2", "blina-dli"), ("1", "all")]
)
def test_output_closed_early_logs_exactly_the_rows_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str, protocol: str
) -> None:
    """`screen --log | head`: the reader closes the pipe after a few lines. The run stops
    (exit 2), a row is logged if and only if all of its output went out, and the two lines
    on stderr say how many records the log got and the last row written: whether Python's
    standard output is buffered or not (PYTHONUNBUFFERED: a partial write there was taken
    for a whole one, and buffered a failed write left the rows it did write unlogged, the
    line naming row 1). No Python noise is printed at exit."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))  # `all`: two protocols
    rows = _eligible_rows(tmp_path / "rows.jsonl", 6000)
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", protocol, "-f", "json", "--log"]
    got, errors, code = _read_then_close([*command, "--jobs", jobs])
    last = len(_rows_whole(got))
    assert (code, errors.splitlines()[-1]) == (
        2,
        _stopped_saying("standard output was closed", last, log=True),
    ), errors
    assert 3 <= last < 6000
    _assert_logged_exactly(errors, last, per_row=2 if protocol == "all" else 1)


def test_output_closed_from_the_start_screens_nothing(tmp_path: Path) -> None:
    """`screen --log >&-` (a daemon without standard output: Python's sys.stdout is None):
    the one line the run closed early gives, exit 2; nothing screened, nothing logged."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({**ELIGIBLE_JSON, "referral": "R-1"}) + "\n")
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "--log"]
    ran = subprocess.run(
        command, preexec_fn=lambda: os.close(1), stderr=subprocess.PIPE, text=True, timeout=60
    )
    assert (ran.returncode, ran.stderr) == (
        2,
        "error: standard output was closed: screening stopped at row 1, "
        "nothing from it on is logged\n",
    )
    assert invoke("log", "export", "-f", "jsonl").stdout == ""


def test_output_closed_early_stops_the_duckdb_engine_as_the_python_one(tmp_path: Path) -> None:
    """`screen --engine duckdb | head -3`: exit 2 and the same error line (no --log there),
    naming exactly the last row whose output all went out; the run used to end silently
    with exit 1."""
    rows = _eligible_rows(tmp_path / "rows.jsonl", 30000)
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "-f", "json"]
    got, errors, code = _read_then_close([*command, "--engine", "duckdb"])
    last = len(_rows_whole(got))
    assert (code, errors) == (
        2,
        _stopped_saying("standard output was closed", last, log=False) + "\n",
    )
    assert 3 <= last < 30000


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_output_onto_a_full_disk_stops_the_run_in_one_line(tmp_path: Path, engine: str) -> None:
    """`screen --log > /dev/full` (every write: no space left): one line, exit 2, saying the
    disk is full and that nothing was written or logged; it was "unexpected error", exit 1."""
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full here (Linux has it)")
    rows = _eligible_rows(tmp_path / "rows.jsonl", 3)
    log = engine == "python"
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "--engine", engine]
    with full.open("wb") as output:
        ran = subprocess.run(
            [*command, *(["--log"] if log else [])],
            stdout=output,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    said = _stopped_saying(DISK_FULL, 0, log)
    assert (ran.returncode, ran.stderr.splitlines()[-1]) == (2, said), ran.stderr
    if log:
        _assert_logged_exactly(ran.stderr, 0)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_output_filling_the_disk_logs_exactly_the_rows_written(tmp_path: Path, jobs: str) -> None:
    """`screen --log > FILE` onto a filesystem that fills up part-way (root only: mount): the
    file ends with the rows written whole (then part of the next one), the log holds exactly
    those, and one line says so and that the disk is full, exit 2."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("mounting a small filesystem needs root")
    try:
        rows = _eligible_rows(tmp_path / "rows.jsonl", 6000)
        command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "-f", "json"]
        with (disk / "out.jsonl").open("wb") as output:
            ran = subprocess.run(
                [*command, "--log", "--jobs", jobs],
                stdout=output,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        last = len(_rows_whole((disk / "out.jsonl").read_bytes()))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    said = _stopped_saying(DISK_FULL, last, log=True)
    assert (ran.returncode, ran.stderr.splitlines()[-1]) == (2, said), ran.stderr
    assert 0 < last < 6000
    _assert_logged_exactly(ran.stderr, last)


@pytest.mark.parametrize(
    ("protocol", "rows", "saved", "stopped"),
    [("blina-dli", 6000, 2, True), ("all", 6000, 2, True), ("blina-dli", 1500, 1, False)],
)
def test_a_database_filling_up_part_way_names_the_last_row_written_and_logged(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
    rows: int,
    saved: int,
    stopped: bool,
) -> None:
    """`screen --log` whose database's disk fills up after ``saved`` of its transactions
    (of 1000 records): those stay saved, and the error line says so as a cut output's does,
    naming the last row written and logged, the rows written but not logged, and where
    screening stopped (not when the last transaction, at the end, was the one that failed).
    It said "nothing was saved" and named no row, the operator unable to tell where to
    start again."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))  # `all`: two protocols
    monkeypatch.setattr(ledger.LogWriter, "max_delay", 3600.0)  # transactions of 1000 only
    appended = ledger.append_entries
    transactions = 0

    def filling_up(tx: Tx, entries: Sequence[dict[str, Any]]) -> list[ledger.LogRecord]:
        nonlocal transactions
        transactions += 1
        if transactions > saved:  # the disk is full now
            tx.execute(f"PRAGMA max_page_count = {tx.one('PRAGMA page_count')[0]}")
        return appended(tx, entries)

    monkeypatch.setattr(ledger, "append_entries", filling_up)
    command = ["screen", str(_eligible_rows(tmp_path / "rows.jsonl", rows)), "-p", protocol]
    ran = invoke(*command, "-f", "json", "--log")
    per_row = 2 if protocol == "all" else 1
    logged_to, written_to = saved * 1000 // per_row, len(ran.stdout.splitlines())
    database = data_dir / "screen-bot.sqlite3"
    said = (
        f"error: the database {database} could not be written (database or disk is full): "
        f"free some space; rows up to {logged_to} were written and logged; rows "
        f"{logged_to + 1} to {written_to} were written but not logged"
    )
    if stopped:
        said += f"; screening stopped at row {written_to + 1}, nothing from it on is logged"
    assert (ran.returncode, ran.stderr.splitlines()[-1]) == (2, said), ran.stderr
    assert logged_to < written_to <= rows and (written_to < rows) == stopped
    _assert_logged_exactly(ran.stderr, logged_to, per_row)


@given(
    rows=st.lists(st.text("aé≥×\n", max_size=6).map(lambda t: t + "\n"), min_size=1, max_size=8),
    takes=st.lists(st.integers(1, 30), max_size=8),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)
def test_a_row_counts_as_written_once_all_of_its_bytes_went_out(
    rows: list[str], takes: list[int], encoding: str
) -> None:
    """Whatever part of a chunk each write takes (``takes``, then a closed pipe), the bytes
    that went out are the text's as ``out`` would encode it, up to where it stopped, and the
    rows counted as written are those all of whose bytes went out."""
    reference = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="backslashreplace")
    ends = []  # where each row's bytes end, as out would write them
    for row in rows:
        reference.write(row)
        reference.flush()
        ends.append(len(reference.buffer.getvalue()))  # type: ignore[attr-defined]
    expected = reference.buffer.getvalue()  # type: ignore[attr-defined]
    went_out: list[bytes] = []

    def write(fd: int, data: memoryview) -> int:
        if len(went_out) == len(takes):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        went_out.append(bytes(data[: takes[len(went_out)]]))
        return len(went_out[-1])

    data = "".join(rows).encode()
    row_ends = list(accumulate(len(row.encode()) for row in rows))
    with open(os.devnull, "w", encoding=encoding, errors="backslashreplace") as out:
        writer = rows_writer(out)
        with mock.patch("screen_bot.cli.output.os.write", write):
            try:
                writer(data, lambda: row_ends)
                whole = len(rows)
            except OutputCut as cut:
                whole = cut.whole
    sent = b"".join(went_out)
    assert sent == expected[: len(sent)]
    assert whole == bisect_right(ends, len(sent))  # (all of them once all went out)


# -- plausibility warnings (audit 22, finding 4) -----------------------------------------------

CREATININE_HINT = " — did you mean µmol/L? Add the unit, e.g. 106 µmol/L"
# an eligible row whose creatinine clearance is estimated (weight and serum creatinine read)
ESTIMATED = {**ELIGIBLE_JSON, "screened_on": "2026-01-15", "crcl_ml_min": None}


def _warnings(output: str) -> list[list[str]]:
    return [[w["message"] for w in json.loads(line)["warnings"]] for line in output.splitlines()]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_warning_shows_its_value_off_its_limit_on_either_engine(
    tmp_path: Path, engine: str
) -> None:
    # "lvef_percent": 14.999999 was warned "15 % is unusual for lvef_percent (below 15 %)";
    # a value :g showed off its limit is shown as it was
    rows = [
        {**ESTIMATED, "lvef_percent": 14.999999, "serum_creatinine_mg_dl": 10.0000001},
        {**ESTIMATED, "lvef_percent": 12, "serum_creatinine_mg_dl": 1000 / 88.4},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    args = ["screen", str(path), "--protocol", "blina-dli", "--format", "json"]
    result = invoke(*args, "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stdout) == [
        [
            "14.999999 % is unusual for lvef_percent (below 15 %)",
            "10.0000001 mg/dL is unusual for serum_creatinine_mg_dl (above 10 mg/dL)"
            + CREATININE_HINT,
        ],
        [
            "12 % is unusual for lvef_percent (below 15 %)",
            "11.3122 mg/dL is unusual for serum_creatinine_mg_dl (above 10 mg/dL)"
            + CREATININE_HINT,
        ],
    ]
