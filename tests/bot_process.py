"""Run the real ``screen-bot run`` process against a FakeBotApi, and play the coordinator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import DIALOGS
from fakebot import FakeBotApi
from screen_bot.protocol.catalog import Catalog
from steps import checklist_line
from stores import StoreUnderTest

SCREEN_BOT = Path(sys.executable).parent / "screen-bot"
PROTOCOL = Catalog(DIALOGS).get()
QUESTIONS = PROTOCOL.spec.questions


class BotProcess:
    def __init__(
        self,
        fake: FakeBotApi,
        data_dir: Path,
        allowed: str,
        *extra: str,
        store: StoreUnderTest | None = None,
        log_name: str = "bot.log",
    ) -> None:
        self.fake, self.data_dir, self.allowed, self.extra = fake, data_dir, allowed, extra
        self.log = data_dir / log_name
        self.process: subprocess.Popen[bytes] | None = None
        self.env_extra: dict[str, str] = store.env() if store is not None else {}

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SCREEN_BOT_"))
        }
        env.update(
            TELEGRAM_BOT_TOKEN=self.fake.token,
            TELEGRAM_API_BASE_URL=self.fake.base_url,
            TELEGRAM_API_FILE_URL=self.fake.file_url,
            SCREEN_BOT_ALLOWED_USERS=self.allowed,
            SCREEN_BOT_DATA_DIR=str(self.data_dir),
            # the test's own (conftest), never the user's
            SCREEN_BOT_CACHE_DIR=os.environ.get("SCREEN_BOT_CACHE_DIR", f"{self.data_dir}/cache"),
            SCREEN_BOT_DIALOGS_DIR=str(DIALOGS),
        )
        env.update(self.env_extra)
        return env

    def start(self, wait_for_poll: bool = True) -> None:
        polls = len(self.fake.calls("getUpdates"))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SCREEN_BOT), "run", *self.extra],
                env=self.env(),
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_for_poll:
            self.fake.wait_until(
                lambda: (
                    len(self.fake.calls("getUpdates")) > polls or self.process.poll() is not None
                ),
                timeout=30,
            )
            assert self.process.poll() is None, self.output()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_update(user: int, update_id: int) -> dict[str, Any]:
    """A ``/start`` typed by ``user`` in their private chat, as Telegram posts it to a webhook."""
    message = {
        "message_id": update_id,
        "date": 1,
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "C"},
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return {"update_id": update_id, "message": message}


def last_id(fake: FakeBotApi, chat_id: int) -> int:
    messages = fake.messages(chat_id)
    return messages[-1]["message_id"] if messages else 0


def say(fake: FakeBotApi, user: int, text: str, timeout: float = 15) -> dict[str, Any]:
    """Type ``text`` and return the bot's next new message."""
    after = last_id(fake, user)
    fake.send_text(user, text)
    return fake.wait_for_message(user, after=after, timeout=timeout)


def tap(fake: FakeBotApi, user: int, message: dict[str, Any], label: str) -> dict[str, Any]:
    after = last_id(fake, user)
    fake.press(user, message, label)
    return fake.wait_for_message(user, after=after, timeout=15)


def variables_of(message: dict[str, Any]) -> list[str]:
    """The questions a bot message asks (by the dialog file's own wording): one, or the
    items of a checklist."""
    matches = [q.variable for q in QUESTIONS if q.text in message["text"]]
    assert matches, message["text"]
    assert len(matches) == 1 or matches[0] in PROTOCOL.checklists, message["text"]
    return matches


def variable_of(message: dict[str, Any]) -> str:
    """Which question a bot message asks (of a checklist: its first item)."""
    return variables_of(message)[0]


def reply_for(message: dict[str, Any], answers: dict[str, Any]) -> tuple[str, str]:
    """How the coordinator answers a question message: ("tap", label) or ("say", text).
    A checklist with nothing to change is one tap; otherwise its line is typed."""
    items = variables_of(message)
    checklist = PROTOCOL.checklists.get(items[0])
    labels = {b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row}
    if checklist is not None:
        line = checklist_line(checklist, items, answers)
        finish = "✓ All of these hold" if checklist.default else "✓ None of these"
        return ("tap", finish) if line == "0" and finish in labels else ("say", line)
    answer = str(answers[items[0]])
    button = {"yes": "Yes", "no": "No", "none": "None (never)"}.get(answer, answer)
    return ("tap", button) if button in labels else ("say", answer)
