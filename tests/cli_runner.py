"""Run ``screen-bot`` in this process (Typer's runner) or, for smoke tests, as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from screen_bot.cli.app import run

SCREEN_BOT = Path(sys.executable).parent / "screen-bot"


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, stdin: str | None = None) -> Ran:
    """The command line in-process, as ``main()`` runs it: same error mapping, same exit codes."""
    with CliRunner().isolation(input=stdin) as (out, err, _):
        code = run(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        ran = Ran(code, out.getvalue().decode(), err.getvalue().decode())
    assert "unexpected error" not in ran.stderr, ran.stderr
    return ran


def process(
    *args: str,
    stdin: str | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    **env: str,
) -> Ran:
    """The installed ``screen-bot`` as a real process (the test's environment, plus ``env``;
    ``preexec_fn`` runs in the child before it starts)."""
    done = subprocess.run(
        [str(SCREEN_BOT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
        preexec_fn=preexec_fn,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)
