"""The bot against Bot API servers that answer as the documentation allows, not as Telegram
does: a getMe without ``username`` (optional in the User type)."""

from __future__ import annotations

from pathlib import Path

from bot_process import BotProcess, say
from fakebot import FakeBotApi
from screen_bot.adapters.telegram import messages as words

COORDINATOR = 111


# -- getMe without a username -----------------------------------------------------------------


def test_commands_work_when_getme_gives_no_username(tmp_path: Path) -> None:
    """With no username only the plain ``/command`` names the bot: ``/command@name`` is
    another bot's (in a private chat: an unknown command, answered with the help)."""
    with FakeBotApi(bot_username=None) as fake:
        bot = BotProcess(fake, tmp_path, str(COORDINATOR))
        bot.start()
        try:
            assert say(fake, COORDINATOR, "/screen@other_bot R-1")["text"] == words.HELP
            assert "Screening R-1 started" in say(fake, COORDINATOR, "/screen R-1")["text"]
        finally:
            bot.stop()
        assert "failed" not in bot.output(), bot.output()
