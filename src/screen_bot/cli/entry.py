"""The ``screen-bot`` console script: what must happen before the first library is imported.

Kept to the standard library (``gc``, ``io``, ``os``, ``sys``) so that it runs first:

- ``screen-bot run`` starts with the cyclic garbage collector off from its first import.
  Typer, pydantic, python-telegram-bot and our own modules make most of the ~140,000
  objects start-up leaves behind, all long-lived, and every collection walks them again
  (~30 ms of CPU before the first poll). ``cli/serve.py`` keeps it off until the bot is
  started and then freezes them out of later collections (``adapters/telegram/app.py``),
  or turns it on again when the start fails. Every other command runs as before.
- ``screen-bot screen`` (a batch run) also starts with the collector off; the run turns it
  on once start-up's objects are frozen out of its collections (``batch_screen.screen_file``),
  and they stay frozen when the command ends: the collection the interpreter makes as it
  exits would walk every one of them once more (~20 ms of a batch run's fixed cost, with
  start-up, that two processes cannot share: ``--jobs``). What is left at the end is freed
  as it always is.
- A bare ``screen-bot run`` (no option: how a service runs the bot) starts the bot without
  building the command line (``cli/serve.py``); with any option, ``--help`` included, Typer
  reads them as before. So does a shell-completion request (``_SCREEN_BOT_COMPLETE``).
- Pydantic plugins are not loaded (``PYDANTIC_DISABLE_PLUGINS``; an explicit value in the
  environment, even empty, is kept). A plugin installed in the same environment, e.g. an
  observability one, would be handed every value validated: patients' answers among them.
  screen-bot uses none, and finding them scans every installed package's metadata.
- Standard output and error never fail to encode: on a stream that is not UTF-8 a
  character it has not is written as its escape (every command, the bot's logs included).
"""

from __future__ import annotations

import gc
import io
import os
import sys

PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
COMPLETION = "_SCREEN_BOT_COMPLETE"  # Typer's shell completion asks through it


def main() -> None:
    """Console entry point (see ``cli.app.main``)."""
    os.environ.setdefault(PLUGINS, "__all__")
    for stream in (sys.stdout, sys.stderr):
        # A terminal or file that is not UTF-8 (a Latin-1 locale, cp1252) gets what it cannot
        # show as \u2611, not a crash halfway through a screening ('?' means "not known").
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    if sys.argv[1:2] == ["run"]:
        gc.disable()
        if sys.argv[2:] == [] and COMPLETION not in os.environ:
            from .serve import main as serve

            serve()  # exits
    from .app import main as command_line

    if sys.argv[1:2] == ["screen"]:
        gc.disable()
        try:
            command_line()
        finally:
            gc.freeze()
        return
    command_line()
