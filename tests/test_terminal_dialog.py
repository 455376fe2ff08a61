"""The terminal dialog (`screen-bot chat`) when it is interrupted or its screening goes away."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

import pytest

from cli_runner import SCREEN_BOT, invoke
from conftest import DIALOGS
from screen_bot.adapters import terminal
from screen_bot.errors import ScreenBotError
from screen_bot.protocol.catalog import Catalog
from screen_bot.service import TERMINAL, ScreeningService
from screen_bot.storage import sessions
from screen_bot.storage.db import Database


def _until_prompts(process: subprocess.Popen[bytes], count: int, timeout: float = 30) -> bytes:
    """Standard output until the dialog has shown its '> ' prompt ``count`` times (input()
    flushes the prompt, so it is read while the dialog waits for the next line)."""
    assert process.stdout is not None
    seen, deadline = b"", time.monotonic() + timeout
    while seen.count(b"\n> ") < count:
        left = deadline - time.monotonic()
        assert left > 0, seen.decode(errors="replace")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, seen.decode(errors="replace")  # it ended before the prompt
            seen += chunk
    return seen


def test_ctrl_c_keeps_the_screening_for_resume_and_exits_130() -> None:
    # Ctrl-C is an interruption, not an answer: the answers typed stay, as a closed
    # terminal (SIGHUP) or SIGTERM leaves them, and the dialog says how to go on.
    process = subprocess.Popen(
        [str(SCREEN_BOT), "chat", "-p", "blina-dli", "--referral", "R-INT1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert process.stdin is not None
    process.stdin.write(b"35\n")
    process.stdin.flush()
    _until_prompts(process, 2)  # the age is answered: the next question waits
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out.decode() + err.decode()
    said = out.decode().strip().splitlines()[-1]
    assert said == (
        "Interrupted; the screening is kept: 'screen-bot chat --resume R-INT1' goes on with it."
    )
    assert b"not kept" not in out and b"Traceback" not in err
    resumed = invoke("chat", "--resume", "R-INT1", stdin="quit\n")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming R-INT1 at its current question." in resumed.stdout


def test_ctrl_c_in_the_dialog_cancels_nothing(db: Database) -> None:
    service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    typed = iter(["35"])
    said: list[str] = []

    def read(prompt: str) -> str:
        try:
            return next(typed)
        except StopIteration:
            raise KeyboardInterrupt from None

    with pytest.raises(KeyboardInterrupt):
        terminal.chat(service, "blina-dli", "R-K1", read=read, write=said.append)
    (kept,) = sessions.list_open(db.read(), TERMINAL)
    active = sessions.active(db.read(), TERMINAL)
    assert kept.referral == "R-K1" and active is not None and active.answers["age"].value == 35
    assert said[-1].startswith("Interrupted; the screening is kept")


def test_a_screening_that_expired_while_the_dialog_waited_is_said_to_have_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Any other command (here `migrate`) or the bot's pass deletes a screening left open
    # longer than SCREEN_BOT_SESSION_TTL_HOURS: the dialog says so, with no --resume that
    # cannot work, and records nothing.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "SCREEN_BOT_SESSION_TTL_HOURS": "0.0003"}
    process = subprocess.Popen(
        [str(SCREEN_BOT), "chat", "-p", "blina-dli", "--referral", "R-TTL1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(b"35\n")
    process.stdin.flush()
    _until_prompts(process, 2)
    time.sleep(0.0003 * 3600 + 0.5)  # longer than the lifetime
    monkeypatch.setenv("SCREEN_BOT_SESSION_TTL_HOURS", "0.0003")
    assert invoke("migrate").returncode == 0  # opening the database expires it
    out, err = process.communicate(b"0\n", timeout=30)
    assert process.returncode == 2, out.decode() + err.decode()
    assert err.decode().strip() == (
        "error: screening R-TTL1 expired: it was left open longer than "
        "SCREEN_BOT_SESSION_TTL_HOURS (0.0003 hours) and was removed; nothing was recorded"
    )
    assert "exported 0 screenings" in invoke("log", "export").stderr


def test_a_screening_ended_in_another_dialog_is_not_called_displaced(db: Database) -> None:
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    typed = iter(["40", "0"])

    def read(prompt: str) -> str:  # before the second answer, another dialog quits R-A1
        text = next(typed)
        if text == "0":
            second.resume(TERMINAL, "R-A1")
            second.cancel(TERMINAL)
        return text

    with pytest.raises(ScreenBotError) as stopped:
        terminal.chat(first, "blina-dli", "R-A1", read=read, write=lambda _: None)
    message = stopped.value.message
    assert message == (
        "screening R-A1 is no longer open (finished or quit in another terminal dialog?); "
        "nothing was recorded"
    )
    assert sessions.list_open(db.read(), TERMINAL) == []
