"""Two ``screen-bot run --webhook`` processes behind one URL share one PostgreSQL database:
no update handled twice, each chat's updates handled in order, and ``kill -9`` of either
loses nothing (see ``two_instances.py`` for the set-up and what is counted). Instances of
one bot only: one of another bot is refused while it runs."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import two_instances
from bot_process import free_port, last_id, start_update
from fakebot import FakeBotApi
from screen_bot.dburl import hidden
from stores import StoreUnderTest

COORDINATOR = 111
OTHER_BOT = "222222:OTHER-token_abcdefghijklmnopqrstuvwxyz"


def test_two_instances_killed_in_turn_lose_nothing_and_keep_each_chats_order(
    postgres_store: StoreUnderTest,
) -> None:
    burst = two_instances.run(postgres_store.data_dir, postgres_store, chats=8, per_chat=12)
    assert burst.kills == 2
    assert burst.posted == 8 * 12
    assert (burst.lost, burst.twice, burst.out_of_order) == (0, 0, 0), burst.problems
    assert burst.handled == 8 * 12
    assert not burst.problems


def post(port: int, update: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hook",
        json.dumps(update).encode(),
        {"Content-Type": "application/json", two_instances.SECRET_HEADER: two_instances.SECRET},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_an_instance_of_another_bot_is_refused_while_one_runs_and_one_of_the_same_bot_is_not(
    postgres_store: StoreUnderTest,
) -> None:
    """Bot 123456 runs two instances; bot 222222 is refused (exit 2) before it sets its
    webhook, and the first bot goes on. Once those are killed (-9), it starts."""
    ports = [free_port() for _ in range(3)]
    with FakeBotApi() as bot, FakeBotApi(token=OTHER_BOT) as other:
        bot.add_chat(COORDINATOR)
        first, second = (
            two_instances.instance(bot, postgres_store, [COORDINATOR], port, f"{name}.log")
            for port, name in zip(ports[:2], ("first", "second"), strict=True)
        )
        stranger = two_instances.instance(other, postgres_store, [COORDINATOR], ports[2], "o.log")
        try:
            two_instances.start(first, ports[0])
            two_instances.start(second, ports[1])  # the same bot: allowed
            stranger.start(wait_for_poll=False)
            assert stranger.process is not None
            assert stranger.process.wait(30) == 2, stranger.output()
            errors = [line for line in stranger.output().splitlines() if "error:" in line]
            assert errors == [
                f"error: bot 123456 is running on the database {hidden(postgres_store.url)} "
                "(this is bot 222222): stop it first, or give this bot its own database"
            ]
            assert not other.calls("setWebhook")
            for port in ports[:2]:  # both instances of the first bot go on
                after = last_id(bot, COORDINATOR)
                update = start_update(COORDINATOR, port)
                assert post(port, update) == 200
                bot.wait_for_message(COORDINATOR, after=after, timeout=15)
            first.kill()
            second.kill()
            two_instances.start(stranger, ports[2])  # the server freed the dead ones' locks
        finally:
            for process in (first, second, stranger):
                process.stop()
