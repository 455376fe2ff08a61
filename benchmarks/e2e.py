"""4. End to end: the real ``screen-bot run`` beside a bare PTB echo bot, same fake Bot API.

The driver (threads in this process) types a full screening per coordinator and times
each message until the bot's next new message appears in the fake (the reply). Both bots
use AIORateLimiter: 30 API calls/s overall, which counts sendMessage and editMessageText
alike. A screening answer costs an edit plus a send, an echo one send.

Without the limiter a third bot runs too, ``echo_edit_bot.py``: the echo bot doing only what
issue 3 asks of every reply (the answered question edited, awaited, then the next one sent).
Its ratio to the echo is the best any bot keeping that rule could show on PTB's stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .common import PYTHON, ROOT, SCREEN_BOT, Figure, percentile
from .patients import protocol, screening_texts

sys.path.insert(0, str(ROOT / "tests"))
from fakebot import FakeBotApi  # noqa: E402

SEQUENTIAL_USER = 500
COORDINATORS = list(range(501, 521))


class Fake(FakeBotApi):
    """The fake Bot API with cheap observations for a driver that waits on every message."""

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self._calls if method in (None, c["method"]))

    def reply(self, chat_id: int, after: int, timeout: float = 60) -> str:
        """Text of the first bot message after message ``after`` (no copy of the chat)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                chat = self._chats.get(chat_id)
                for message_id in range(after + 1, chat.next_id if chat else 0):
                    message = chat.messages.get(message_id)
                    if message and message["from"]["id"] == self.bot_user["id"]:
                        return message.get("text", "")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reply in chat {chat_id} after #{after}")
                self._cond.wait(remaining)


class BotProcess:
    """A bot process polling the fake; ``start`` returns seconds until its first poll."""

    def __init__(self, argv: list[str], fake: Fake, work: Path, allowed: list[int]) -> None:
        self.argv, self.fake, self.work = argv, fake, work
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SCREEN_BOT_"))
        }
        self.env.update(
            TELEGRAM_BOT_TOKEN=fake.token,
            TELEGRAM_API_BASE_URL=fake.base_url,
            TELEGRAM_API_FILE_URL=fake.file_url,
            SCREEN_BOT_ALLOWED_USERS=",".join(map(str, allowed)),
            SCREEN_BOT_DATA_DIR=str(work),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        self.work.mkdir(parents=True, exist_ok=True)
        polls = self.fake.count("getUpdates")
        begin = time.perf_counter()
        with (self.work / "bot.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=self.work, stdout=log, stderr=subprocess.STDOUT
            )
        self.fake.wait_until(
            lambda: self.fake.count("getUpdates") > polls or self.process.poll() is not None,
            timeout=60,
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.argv} exited; see {self.work / 'bot.log'}")
        return time.perf_counter() - begin

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def screening_bot(fake: Fake, work: Path, allowed: list[int], limit: bool = True) -> BotProcess:
    argv = [SCREEN_BOT, "run"] if limit else [PYTHON, str(ROOT / "benchmarks/unthrottled_bot.py")]
    return BotProcess(argv, fake, work, allowed)


def echo_bot(fake: Fake, work: Path, allowed: list[int], limit: bool = True) -> BotProcess:
    bot = BotProcess([PYTHON, str(ROOT / "benchmarks/echo_bot.py")], fake, work, allowed)
    bot.env["BENCH_NO_LIMIT"] = "" if limit else "1"
    return bot


def converse(fake: Fake, user: int, texts: list[str], out: dict[int, Any]) -> None:
    """Type each text, wait for the reply; record (latencies, replies)."""
    latencies, replies = [], []
    for text in texts:
        begin = time.perf_counter()
        sent = fake.send_text(user, text)
        replies.append(fake.reply(user, sent["message_id"]))
        latencies.append(time.perf_counter() - begin)
    out[user] = (latencies, replies)


def phase(fake: Fake, scripts: dict[int, list[str]]) -> dict[str, Any]:
    """All coordinators at once (one thread each); figures of the phase."""
    calls = fake.count() - fake.count("getUpdates")
    out: dict[int, Any] = {}
    threads = [
        threading.Thread(target=converse, args=(fake, user, texts, out))
        for user, texts in scripts.items()
    ]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - begin
    if len(out) != len(scripts):
        raise RuntimeError("a coordinator thread failed")
    calls = fake.count() - fake.count("getUpdates") - calls
    latencies = [x for lat, _ in out.values() for x in lat]
    return {
        "messages": len(latencies),
        "seconds": seconds,
        "messages_per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "api_calls": calls,
        "api_calls_per_reply": calls / len(latencies),
        "api_calls_per_s": calls / seconds,
        "replies": {user: replies for user, (_, replies) in out.items()},
    }


def check(scripts: dict[int, list[str]], replies: dict[int, list[str]], echo: bool) -> None:
    """The benchmark is void if the bot did not do its job."""
    for user, texts in scripts.items():
        for text, reply in zip(texts, replies[user], strict=True):
            if echo and reply != text:
                raise RuntimeError(f"echo of {text!r} was {reply!r}")
            if not echo and reply.startswith(("⚠", "This bot is only")):
                raise RuntimeError(f"the screening bot answered {text!r} with {reply!r}")
        complete = len(texts) > len(screening_texts(protocol()))
        if not echo and complete and not replies[user][-1].startswith("PRE-SCREEN PASSED"):
            raise RuntimeError(f"no eligible verdict for {user}: {replies[user][-1]!r}")


def floor_bot(fake: Fake, work: Path, allowed: list[int], limit: bool = False) -> BotProcess:
    """The echo that edits the last "question" and then sends the next (no limiter)."""
    bot = BotProcess([PYTHON, str(ROOT / "benchmarks/echo_edit_bot.py")], fake, work, allowed)
    bot.env["BENCH_NO_LIMIT"] = "1"
    return bot


def pair(
    work: Path, limit: bool, sequential: list[str], concurrent: dict[int, list[str]]
) -> dict[str, dict[str, Any]]:
    """The bots, one after the other, each on a fresh fake: sequential, then concurrent
    (the screening bot and the echo; without the limiter the floor bot too)."""
    allowed = [SEQUENTIAL_USER, *concurrent]
    results: dict[str, dict[str, Any]] = {}
    bots = [("bot", screening_bot), ("echo", echo_bot)]
    for name, make in bots if limit else [*bots, ("floor", floor_bot)]:
        with Fake() as fake:
            bot = make(fake, work / f"{name}-{'limited' if limit else 'unlimited'}", allowed, limit)
            bot.start()
            try:
                seq = phase(fake, {SEQUENTIAL_USER: sequential})
                conc = phase(fake, concurrent)
            finally:
                bot.stop()
        for result, scripts in ((seq, {SEQUENTIAL_USER: sequential}), (conc, concurrent)):
            check(scripts, result.pop("replies"), echo=name != "bot")
        results[name] = {"sequential": seq, "concurrent": conc}
    return results


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    one = screening_texts(protocol())
    if quick:
        coordinators, sequential = COORDINATORS[:2], ["/screen blina-dli R-1", *one[:3]]
        concurrent = {u: [f"/screen blina-dli R-{u}", *one[:2]] for u in coordinators}
    else:
        coordinators = COORDINATORS
        sequential = [t for k in range(3) for t in (f"/screen blina-dli R-{k}", *one)]
        concurrent = {u: [f"/screen blina-dli R-{u}", *one] for u in coordinators}
    limited = pair(work, True, sequential, concurrent)
    unlimited = pair(work, False, sequential, concurrent)
    n = len(coordinators)
    figures = []
    for results, limit in ((limited, True), (unlimited, False)):
        bot, echo = results["bot"], results["echo"]
        base = "PTB echo bot, same limiter" if limit else "PTB echo bot, no limiter"
        for key in ("sequential", "concurrent"):
            b, e = bot[key], echo[key]
            short = ("seq" if key == "sequential" else "conc") + ("" if limit else "_nolimit")
            label = "e2e " + ("sequential" if key == "sequential" else f"{n} coordinators")
            label += "" if limit else ", no limiter"
            figures += [
                Figure(
                    f"e2e.{short}_messages_per_s",
                    f"{label}: messages/s",
                    b["messages_per_s"],
                    "msg/s",
                    base,
                    e["messages_per_s"],
                    None if limit else "ratio >= 0.7",
                ),
                Figure(
                    f"e2e.{short}_p50_ms",
                    f"{label}: reply latency p50",
                    b["p50_ms"],
                    "ms",
                    base,
                    e["p50_ms"],
                    None if limit else "ratio <= 1.5",
                ),
                Figure(
                    f"e2e.{short}_p99_ms",
                    f"{label}: reply latency p99",
                    b["p99_ms"],
                    "ms",
                    base,
                    e["p99_ms"],
                ),
            ]
            if limit:
                figures.append(
                    Figure(
                        f"e2e.{short}_api_calls_per_s",
                        f"{label}: Bot API calls/s",
                        b["api_calls_per_s"],
                        "calls/s",
                        base,
                        e["api_calls_per_s"],
                    )
                )
    floor, echo = unlimited["floor"], unlimited["echo"]
    for key in ("sequential", "concurrent"):
        short = "seq" if key == "sequential" else "conc"
        label = "e2e floor " + ("sequential" if key == "sequential" else f"{n} coordinators")
        label += ", no limiter (echo that edits, then sends)"
        for metric, what, unit in (
            ("messages_per_s", "messages/s", "msg/s"),
            ("p50_ms", "reply latency p50", "ms"),
        ):
            figures.append(
                Figure(
                    f"e2e.floor_{short}_{metric}",
                    f"{label}: {what}",
                    floor[key][metric],
                    unit,
                    "PTB echo bot, no limiter",
                    echo[key][metric],
                )
            )
    figures.append(
        Figure(
            "e2e.api_calls_per_reply",
            "e2e: Bot API calls per reply",
            limited["bot"]["concurrent"]["api_calls_per_reply"],
            "calls",
            "PTB echo bot",
            limited["echo"]["concurrent"]["api_calls_per_reply"],
        )
    )
    return figures, {"coordinators": n, "limited": limited, "unlimited": unlimited}
