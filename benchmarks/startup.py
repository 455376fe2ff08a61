"""5. Start-up: ``screen-bot --help``, and process start to the bot's first getUpdates poll.

Baselines: ``python -c pass``, ``python -c "import telegram"`` and the ``--help`` of a minimal
two-command Typer app; for the first poll also the bare echo bot. Each figure is the median
of its rounds, rounds interleaved.

The bot keeps the dialog files it has checked (``SCREEN_BOT_CACHE_DIR``, here one directory
in the work folder): the first poll is timed with it filled by an earlier start (every start
of a bot whose files did not change), and again with it emptied before each round (the
first start after a dialog file changed or screen-bot was upgraded).

screen_bot is byte-compiled first, as installing its wheel does: from an editable install
under PYTHONDONTWRITEBYTECODE=1 (as here) every start would compile its ~80 modules from
source again, while the libraries it is compared with (python-telegram-bot, Typer) start
from the bytecode pip wrote when it installed them.
"""

from __future__ import annotations

import compileall
import shutil
import statistics
from pathlib import Path
from typing import Any

from .common import PYTHON, SCREEN_BOT, Figure, run_child
from .e2e import Fake, echo_bot, screening_bot

MINIMAL_TYPER_APP = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str) -> None:
    print(name)
@app.command()
def bye() -> None:
    pass
app()
"""


def compile_package() -> bool:
    """Write screen_bot's bytecode next to its sources (``__pycache__``, as pip would)."""
    import screen_bot

    return bool(compileall.compile_dir(Path(screen_bot.__file__).parent, quiet=1))


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    rounds, poll_rounds = (2, 1) if quick else (7, 7)
    compiled = compile_package()
    log = work / "stderr.log"
    commands = {
        "help": [SCREEN_BOT, "--help"],
        "pass": [PYTHON, "-c", "pass"],
        "telegram": [PYTHON, "-c", "import telegram"],
        "typer": [PYTHON, "-c", MINIMAL_TYPER_APP, "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "bot", "cold", "echo"]}
    for _ in range(rounds):
        for name, argv in commands.items():
            times[name].append(run_child(argv, log)[0])
    cache = work / "cache"
    with Fake() as fake:
        _first_poll(screening_bot(fake, work / "filling", [1]), cache)  # fills the cache
        for i in range(poll_rounds):
            times["bot"].append(_first_poll(screening_bot(fake, work / f"bot-{i}", [1]), cache))
            shutil.rmtree(cache)
            times["cold"].append(_first_poll(screening_bot(fake, work / f"cold-{i}", [1]), cache))
            times["echo"].append(_first_poll(echo_bot(fake, work / f"echo-{i}", [1]), cache))
    ms = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    figures = [
        Figure(
            "startup.help_ms",
            "start-up: screen-bot --help",
            ms["help"],
            "ms",
            "python -c pass",
            ms["pass"],
        ),
        Figure(
            "startup.help_vs_telegram_ms",
            "start-up: screen-bot --help",
            ms["help"],
            "ms",
            "python -c 'import telegram'",
            ms["telegram"],
        ),
        Figure(
            "startup.help_vs_typer_ms",
            "start-up: screen-bot --help",
            ms["help"],
            "ms",
            "minimal two-command Typer app --help",
            ms["typer"],
            "ratio <= 1.3",
        ),
        Figure(
            "startup.first_poll_ms",
            "start-up: screen-bot run to first poll",
            ms["bot"],
            "ms",
            "python -c 'import telegram'",
            ms["telegram"],
        ),
        Figure(
            "startup.first_poll_vs_echo_ms",
            "start-up: screen-bot run to first poll",
            ms["bot"],
            "ms",
            "PTB echo bot to first poll",
            ms["echo"],
            "ratio <= 1.3",
        ),
        Figure(
            "startup.first_poll_cold_ms",
            "start-up: screen-bot run to first poll, dialog files not kept yet",
            ms["cold"],
            "ms",
            "PTB echo bot to first poll",
            ms["echo"],
        ),
    ]
    details = {"rounds": rounds, "poll_rounds": poll_rounds, "compiled": compiled}
    return figures, {**details, "seconds": times}


def _first_poll(bot: Any, cache: Path) -> float:
    """Seconds from the process's start to its first poll, with ``cache`` as its cache."""
    bot.env["SCREEN_BOT_CACHE_DIR"] = str(cache)
    try:
        seconds: float = bot.start()
        return seconds
    finally:
        bot.stop()
