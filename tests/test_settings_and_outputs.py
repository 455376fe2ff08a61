"""Settings a user gets wrong, and output paths a user mistypes: one line, exit 2, no secret."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from cli_runner import Ran, invoke
from screen_bot.cli.outcome import write_trace
from screen_bot.errors import BadReferral
from screen_bot.referrals import check_referral
from screen_bot.settings import Settings

TOKEN = "123456789:AAHxyzSECRETsecretSECRETsecret12345"


def one_line_error(ran: Ran) -> str:
    assert ran.returncode == 2, ran
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def test_a_token_pasted_as_a_user_id_is_not_shown(isolated: Path) -> None:
    Path(".env").write_text(f"SCREEN_BOT_ALLOWED_USERS=111,{TOKEN}\n")
    line = one_line_error(invoke("where"))
    assert TOKEN.partition(":")[2] not in line and "entry 2 of 2 is not" in line


@pytest.mark.parametrize(
    "content",
    ["# réglages\nSCREEN_BOT_SESSION_TTL_HOURS=72\n".encode("latin-1"),
     "SCREEN_BOT_SESSION_TTL_HOURS=72\n".encode("utf-16")],
    ids=["latin-1", "utf-16"],
)  # fmt: skip
def test_a_dotenv_that_is_not_utf8_is_named(isolated: Path, content: bytes) -> None:
    Path(".env").write_bytes(content)
    assert "settings: .env is not UTF-8 text" in one_line_error(invoke("where"))


@pytest.mark.parametrize("hours", ["inf", "1e9", "8761"])
def test_a_session_lifetime_over_a_year_is_refused(isolated: Path, hours: str) -> None:
    # (inf and 1e9 overflowed the expiry's date arithmetic at the bot's start)
    os.environ["SCREEN_BOT_SESSION_TTL_HOURS"] = hours
    try:
        assert "SCREEN_BOT_SESSION_TTL_HOURS" in one_line_error(invoke("where"))
    finally:
        del os.environ["SCREEN_BOT_SESSION_TTL_HOURS"]


def test_a_token_with_a_final_newline_is_not_a_token() -> None:
    assert Settings(TELEGRAM_BOT_TOKEN=TOKEN).token_problem() is None
    assert Settings(TELEGRAM_BOT_TOKEN=TOKEN + "\n").token_problem() is not None


def test_a_referral_with_a_final_newline_is_refused(isolated: Path) -> None:
    with pytest.raises(BadReferral):
        check_referral("R-1\n")
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1\n", "age": 40}) + "\n")
    ran = invoke("screen", str(rows), "-p", "blina-dli", "--format", "json", "--log")
    assert ran.returncode == 2 and ran.stdout == "" and "referral" in ran.stderr
    ran = invoke("chat", "-p", "blina-dli", "--referral", "R-1\n", stdin="40\n")
    assert ran.returncode == 2


@pytest.mark.parametrize(
    "args",
    [
        ("log", "export", "-o", "missing/x.csv"),
        ("log", "export", "-o", "."),
        ("log", "stats", "--chart", "missing/x.png"),
        ("graph", "-p", "blina-dli", "-o", "missing/x.md"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_named(
    isolated: Path, args: tuple[str, ...]
) -> None:
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    line = one_line_error(invoke(*args))
    assert line.startswith(f"error: cannot write {args[-1]}: ")


def test_an_export_to_a_pipe_writes_into_it_and_leaves_it_a_pipe(isolated: Path) -> None:
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    pipe = Path("pipe")
    os.mkfifo(pipe)
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_bytes()), daemon=True)
    reader.start()
    ran = invoke("log", "export", "-o", str(pipe))
    reader.join(timeout=30)
    assert ran.returncode == 0, ran
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # not replaced by a file (was: FILE.part renamed)
    assert read and b"R-1" in read[0]


def test_the_stats_chart_is_owner_only_like_the_export(isolated: Path) -> None:
    """The chart counts screen failures by criterion (one patient's, when few were
    screened): written 0600 as the export is, an existing looser file tightened."""
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    Path("old.png").write_bytes(b"")
    Path("old.png").chmod(0o644)
    umask = os.umask(0o022)
    try:
        for chart in ("new.png", "old.png"):
            assert invoke("log", "stats", "--chart", chart).returncode == 0
            assert stat.S_IMODE(Path(chart).stat().st_mode) == 0o600, chart
            assert Path(chart).read_bytes().startswith(b"\x89PNG")
        assert invoke("log", "export", "-o", "export.csv").returncode == 0
        assert stat.S_IMODE(Path("export.csv").stat().st_mode) == 0o600
    finally:
        os.umask(umask)
    assert not list(Path().glob("*.part"))


def test_each_unexpected_error_keeps_its_own_trace(isolated: Path) -> None:
    first, second = write_trace(ValueError("first")), write_trace(KeyError("second"))
    assert isinstance(first, Path) and isinstance(second, Path) and first != second
    assert "first" in first.read_text() and "second" in second.read_text()
    assert oct(first.stat().st_mode & 0o777) == "0o600"


def test_an_empty_api_url_is_telegrams() -> None:
    # (passed empty by an env or compose file: every command refused it)
    settings = Settings(TELEGRAM_API_BASE_URL="", TELEGRAM_API_FILE_URL=" ")
    assert settings.telegram_api_base_url == "https://api.telegram.org/bot"
    assert settings.telegram_api_file_url == "https://api.telegram.org/file/bot"
