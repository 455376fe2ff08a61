"""Two ``screen-bot run --webhook`` processes behind one URL, sharing one PostgreSQL database.

A round-robin :class:`Forwarder` on 127.0.0.1 plays the load balancer: each request goes
to the next instance, or to the other one when that one does not take the connection (it
is down). The test plays Telegram: it POSTs each chat's updates one after the other to the
forwarder, each until it is answered 200 (Telegram sends an update again until it is
confirmed), many chats at once. Each update is ``/screen R-<chat>-<n>``, which starts a
screening and pauses the one before, so the store and the replies show which updates
were handled, how often, and in which order.

Used by ``tests/test_two_instances.py`` and ``benchmarks/store.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot_process import BotProcess, free_port
from fakebot import FakeBotApi
from stores import StoreUnderTest

WEBHOOK_URL = "https://bot.example.org:8443/hook"  # what setWebhook gets (the fake checks it)
SECRET = "two-instances-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
STARTED = re.compile(r"Screening (\S+) started \([^)]*\)\.(?: The screening (\S+) is paused)?")
REFUSED_TWICE = "already has an unfinished screening"


class Forwarder:
    """A round-robin reverse proxy for POSTs, skipping backends that refuse connections."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self._next = itertools.count()
        self.forwarded: Counter[str] = Counter()
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = forwarder.forward(body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, body: bytes, headers: dict[str, str]) -> int:
        first = next(self._next)
        for k in range(len(self.backends)):
            backend = self.backends[(first + k) % len(self.backends)]
            request = urllib.request.Request(
                backend,
                body,
                {"Content-Type": "application/json", SECRET_HEADER: headers.get(SECRET_HEADER, "")},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    self.forwarded[backend] += 1
                    return int(response.status)
            except urllib.error.HTTPError as err:
                return err.code
            except ConnectionRefusedError:
                continue  # down: the next one
            except (OSError, urllib.error.URLError) as err:
                if isinstance(getattr(err, "reason", None), ConnectionRefusedError):
                    continue
                return HTTPStatus.BAD_GATEWAY  # cut mid-request: Telegram will send it again
        return HTTPStatus.BAD_GATEWAY

    def __enter__(self) -> Forwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Burst:
    """What was sent and what the store and the chats show afterwards."""

    chats: int
    per_chat: int
    kills: int = 0
    posted: int = 0  # updates answered 200
    retries: int = 0  # POSTs answered otherwise, sent again
    handled: int = 0  # inbox rows marked done
    lost: int = 0  # answered 200, but not handled (or its screening not in the store)
    twice: int = 0  # handled more than once (refused as already open, or started twice)
    out_of_order: int = 0  # handled after a later update of its chat
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class Telegram:
    """Sends each chat's updates in order to ``url``, each until answered 200."""

    def __init__(self, fake: FakeBotApi, url: str, burst: Burst, deadline: float) -> None:
        self.fake, self.url, self.burst, self.deadline = fake, url, burst, deadline
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.sent: dict[int, list[tuple[int, str]]] = {}  # chat -> (update id, label) in order

    def chat(self, chat_id: int) -> None:
        for n in range(1, self.burst.per_chat + 1):
            label = f"R-{chat_id}-{n}"
            with self._lock:  # update ids rise in the order the updates are made
                message = self.fake.send_text(chat_id, f"/screen {label}")
                update = {"update_id": next(self._ids), "message": message}
            self._post(update)
            self.sent.setdefault(chat_id, []).append((update["update_id"], label))

    def _post(self, update: dict[str, Any]) -> None:
        body = json.dumps(update).encode()
        headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
        while time.monotonic() < self.deadline:
            request = urllib.request.Request(self.url, body, headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status == HTTPStatus.OK:
                        with self._lock:
                            self.burst.posted += 1
                        return
            except (OSError, urllib.error.URLError):
                pass
            with self._lock:
                self.burst.retries += 1
            time.sleep(0.2)
        raise TimeoutError(f"update {update['update_id']} was never confirmed")


def instance(
    fake: FakeBotApi, store: StoreUnderTest, allowed: list[int], port: int, name: str
) -> BotProcess:
    args = ("--webhook", WEBHOOK_URL, "--port", str(port))
    process = BotProcess(
        fake, store.data_dir, ",".join(map(str, allowed)), *args, store=store, log_name=name
    )
    process.env_extra["SCREEN_BOT_WEBHOOK_SECRET"] = SECRET
    return process


def start(process: BotProcess, port: int, timeout: float = 30) -> None:
    """Start an instance and wait until it takes connections."""
    process.start(wait_for_poll=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process is not None and process.process.poll() is None, process.output()
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/hook", b"{}"), timeout=2
            )
        except urllib.error.HTTPError:
            return  # 403: listening
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"instance on port {port} did not start:\n{process.output()}")


def run(
    work: Path,
    store: StoreUnderTest,
    *,
    chats: int = 8,
    per_chat: int = 12,
    kill: bool = True,
    time_limit: float = 120,
) -> Burst:
    """Two instances, a burst of updates from ``chats`` chats; with ``kill``, instance A is
    killed (-9) a third of the way in and started again halfway, then B is killed at two
    thirds. Then wait until the store has nothing waiting, and count."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # kills cut requests short
    burst = Burst(chats=chats, per_chat=per_chat)
    users = list(range(2001, 2001 + chats))
    ports = [free_port(), free_port()]
    started = time.monotonic()
    with FakeBotApi() as fake:
        a, b = (
            instance(fake, store, users, p, f"bot-{n}.log")
            for p, n in zip(ports, "ab", strict=True)
        )
        for process, port in ((a, ports[0]), (b, ports[1])):
            start(process, port)
        backends = [f"http://127.0.0.1:{p}/hook" for p in ports]
        try:
            with Forwarder(backends) as forwarder:
                telegram = Telegram(fake, forwarder.url, burst, started + time_limit)
                threads = [threading.Thread(target=telegram.chat, args=(u,)) for u in users]
                for thread in threads:
                    thread.start()
                if kill:
                    total = chats * per_chat
                    _at(burst, total // 3, started + time_limit)
                    a.kill()
                    _at(burst, total // 2, started + time_limit)
                    start(a, ports[0])
                    _at(burst, 2 * total // 3, started + time_limit)
                    b.kill()
                    burst.kills = 2
                for thread in threads:
                    thread.join(max(1.0, started + time_limit - time.monotonic()))
                _settle(store, started + time_limit)
                burst.seconds = round(time.monotonic() - started, 1)
        finally:
            a.stop()
            b.stop()
        count(burst, store, fake, telegram.sent)
    return burst


def _at(burst: Burst, posted: int, deadline: float) -> None:
    while burst.posted < posted and time.monotonic() < deadline:
        time.sleep(0.01)


def _settle(store: StoreUnderTest, deadline: float) -> None:
    """Wait until every stored update is handled and every verdict sent."""
    while time.monotonic() < deadline:
        waiting = store.rows("SELECT COUNT(*) FROM inbox WHERE done = 0")[0][0]
        if not waiting and not store.count("outbox"):
            return
        time.sleep(0.1)


def count(
    burst: Burst, store: StoreUnderTest, fake: FakeBotApi, sent: dict[int, list[tuple[int, str]]]
) -> None:
    done = {row[0] for row in store.rows("SELECT update_id FROM inbox WHERE done = 1")}
    burst.handled = len(done)
    for chat_id, updates in sent.items():
        labels = [label for _, label in updates]
        lost = [uid for uid, _ in updates if uid not in done]
        rows = store.rows(
            "SELECT referral, active, body FROM open_sessions WHERE owner = ?", (chat_id,)
        )
        stored = {referral for referral, _, _ in rows}
        missing = [label for label in labels if label not in stored]
        burst.lost += max(len(lost), len(missing))
        if lost or missing:
            burst.problems.append(f"chat {chat_id}: not handled {lost}, not stored {missing}")
        # The order the screenings were started in (each session's created_at) is the
        # order the updates were sent in.
        created = sorted(rows, key=lambda row: json.loads(row[2])["created_at"])
        order = [referral for referral, _, _ in created]
        expected = [label for label in labels if label in stored]
        if order != expected:
            burst.out_of_order += sum(1 for x, y in zip(order, expected, strict=True) if x != y)
            burst.problems.append(f"chat {chat_id}: started in the order {order}")
        active = [referral for referral, is_active, _ in rows if is_active]
        if active != labels[-1:]:
            burst.problems.append(f"chat {chat_id}: active {active}, not {labels[-1]}")
        texts = [m["text"] for m in fake.messages(chat_id) if m["from"]["is_bot"]]
        shown = [match.groups() for t in texts if (match := STARTED.search(t))]
        times = Counter(label for label, _ in shown)
        twice = sum(REFUSED_TWICE in t for t in texts) + sum(n - 1 for n in times.values())
        burst.twice += twice
        if twice:
            burst.problems.append(f"chat {chat_id}: {twice} update(s) handled twice")
        positions = [labels.index(label) for label, _ in shown]
        if positions != sorted(positions):  # the replies came in another order
            burst.out_of_order += 1
            burst.problems.append(f"chat {chat_id}: replies in the order {positions}")
        for label, paused in shown:  # each start paused the screening before it, if shown
            before = labels[labels.index(label) - 1] if labels.index(label) else None
            if paused != before:
                burst.out_of_order += 1
                burst.problems.append(f"chat {chat_id}: {label} paused {paused}, not {before}")
