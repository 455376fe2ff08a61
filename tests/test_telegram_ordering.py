"""One chat's updates run one after the other; different chats run side by side."""

from __future__ import annotations

import asyncio

from telegram import Update

from screen_bot.adapters.telegram.ordering import PerChatOrder
from telegram_offline import BOT_USER


def update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {**BOT_USER, "id": chat_id, "is_bot": False},
                "text": "x",
            },
        },
        None,
    )


async def test_one_chat_in_order_two_chats_at_once() -> None:
    order = PerChatOrder()
    events: list[str] = []

    async def handler(name: str, delay: float) -> None:
        events.append(f"{name} start")
        await asyncio.sleep(delay)
        events.append(f"{name} end")

    await asyncio.gather(
        order.process_update(update(1, 7), handler("a1", 0.05)),  # slow, first
        order.process_update(update(2, 7), handler("a2", 0)),  # same chat: waits for a1
        order.process_update(update(3, 8), handler("b1", 0)),  # other chat: does not wait
    )
    assert events.index("a1 end") < events.index("a2 start")
    assert events.index("b1 end") < events.index("a1 end")
    assert order._locks == {}  # idle chats keep no lock
