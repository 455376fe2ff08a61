"""The ``screen-bot`` console script: what must happen before the first library is imported.

Kept to the standard library (``gc``, ``os``, ``sys``) so that it runs first:

- ``screen-bot run`` starts with the cyclic garbage collector off from its first import.
  Typer, pydantic, python-telegram-bot and our own modules make most of the ~140,000
  objects start-up leaves behind, all long-lived, and every collection walks them again
  (~30 ms of CPU before the first poll). ``cli/serve.py`` keeps it off until the bot is
  started and then freezes them out of later collections (``adapters/telegram/app.py``),
  or turns it on again when the start fails. Every other command runs as before.
- A bare ``screen-bot run`` (no option: how a service runs the bot) starts the bot without
  building the command line (``cli/serve.py``); with any option, ``--help`` included, Typer
  reads them as before. So does a shell-completion request (``_SCREEN_BOT_COMPLETE``).
- Pydantic plugins are not loaded (``PYDANTIC_DISABLE_PLUGINS``; an explicit value in the
  environment, even empty, is kept). A plugin installed in the same environment, e.g. an
  observability one, would be handed every value validated: patients' answers among them.
  screen-bot uses none, and finding them scans every installed package's metadata.
"""

from __future__ import annotations

import gc
import os
import sys

PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
COMPLETION = "_SCREEN_BOT_COMPLETE"  # Typer's shell completion asks through it


def main() -> None:
    """Console entry point (see ``cli.app.main``)."""
    os.environ.setdefault(PLUGINS, "__all__")
    if sys.argv[1:2] == ["run"]:
        gc.disable()
        if sys.argv[2:] == [] and COMPLETION not in os.environ:
            from .serve import main as serve

            serve()  # exits
    from .app import main as command_line

    command_line()
