"""The batch's output is written as bytes where that gives what writing text would."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from cli_runner import SCREEN_BOT, invoke
from conftest import SHIPPED
from patients import ELIGIBLE_JSON
from screen_bot.batch_screen import screen_file
from screen_bot.cli.screening import utf8_writer
from screen_bot.heap import keep_freed_memory
from screen_bot.protocol import load

ROWS = '{"row":1,"label":"LVEF ≥ 50 %","formula":"(140 − age) × weight kg"}\n{"row":2}\n'


def _written(text: str, encoding: str, through_writer: bool) -> bytes:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding)  # newlines as sys.stdout's: os.linesep
    out.write("a line written as text first é\n")  # held in the wrapper until flushed
    if through_writer:
        utf8_writer(out)(text.encode())
    else:
        out.write(text)
    out.flush()
    return raw.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "latin-1", "utf-16"])
def test_the_bytes_written_are_those_writing_the_text_would_write(encoding: str) -> None:
    text = (
        ROWS if "16" in encoding or "8" in encoding else ROWS.translate(str.maketrans("≥−×", ">-x"))
    )
    assert _written(text, encoding, True) == _written(text, encoding, False)


def test_text_written_before_stays_before() -> None:
    assert (
        _written(ROWS, "utf-8", True) == "a line written as text first é\n".encode() + ROWS.encode()
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


def _read_three_then_close(command: list[str]) -> tuple[list[bytes], str, int]:
    """Run ``command``, read three lines of its output and close it, as `head -3` does:
    (those lines, its standard error, its exit code)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as screen:
        assert screen.stdout is not None and screen.stderr is not None
        first = [screen.stdout.readline() for _ in range(3)]
        screen.stdout.close()
        errors = screen.stderr.read().decode()
        return first, errors, screen.wait(timeout=120)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_output_closed_early_stops_the_run_saying_what_was_logged(
    tmp_path: Path, jobs: str
) -> None:
    """`screen --log | head`: the reader closes the pipe after a few lines. The run stops
    (exit 2) and says how many records the log got and from which row on nothing is logged;
    the log holds exactly the rows before it, and no Python noise is printed at exit."""
    rows = _eligible_rows(tmp_path / "rows.jsonl", 6000)
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "-f", "json", "--log"]
    first, errors, code = _read_three_then_close([*command, "--jobs", jobs])
    assert [json.loads(line)["row"] for line in first] == [1, 2, 3]
    *_, logged_line, error = errors.splitlines()
    last = int(re.fullmatch(r"screening log: (\d+) records appended", logged_line)[1])  # type: ignore[index]
    assert (code, error) == (
        2,
        f"error: standard output was closed: rows up to {last} were written and logged; "
        f"screening stopped at row {last + 1}, nothing from it on is logged",
    )
    assert 0 < last < 6000
    logged = invoke("log", "export", "-f", "jsonl").stdout.splitlines()
    assert sorted(json.loads(r)["referral"] for r in logged) == sorted(
        f"R-{i}" for i in range(1, last + 1)
    )


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
    naming a row the reader got all of; the run used to end silently with exit 1."""
    rows = _eligible_rows(tmp_path / "rows.jsonl", 30000)
    command = [str(SCREEN_BOT), "screen", str(rows), "-p", "blina-dli", "-f", "json"]
    first, errors, code = _read_three_then_close([*command, "--engine", "duckdb"])
    assert [json.loads(line)["row"] for line in first] == [1, 2, 3]
    said = re.fullmatch(
        r"error: standard output was closed: (rows up to (\d+) were written; )?"
        r"screening stopped at row (\d+)\n",
        errors,
    )
    assert code == 2 and said, (code, errors)
    assert int(said[3]) == int(said[2] or 0) + 1 <= 30000


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
