"""Two ``screen-bot run --webhook`` processes behind one URL share one PostgreSQL database:
no update handled twice, each chat's updates handled in order, and ``kill -9`` of either
loses nothing (see ``two_instances.py`` for the set-up and what is counted)."""

from __future__ import annotations

import two_instances
from stores import StoreUnderTest


def test_two_instances_killed_in_turn_lose_nothing_and_keep_each_chats_order(
    postgres_store: StoreUnderTest,
) -> None:
    burst = two_instances.run(postgres_store.data_dir, postgres_store, chats=8, per_chat=12)
    assert burst.kills == 2
    assert burst.posted == 8 * 12
    assert (burst.lost, burst.twice, burst.out_of_order) == (0, 0, 0), burst.problems
    assert burst.handled == 8 * 12
    assert not burst.problems
