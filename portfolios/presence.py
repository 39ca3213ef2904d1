"""Who has a dashboard open: price ticks are rendered only for them.

A tick revalues every portfolio that holds the symbol, but only traders looking at a dashboard can see
the result. The dashboard marks its viewer present when it renders and every HEARTBEAT_SECONDS after
(an HTMX poll); the mark expires PRESENCE_SECONDS after the last beat, so a closed tab stops costing
anything within a few minutes. Transactions are still pushed to their owner whatever the page.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache

HEARTBEAT_SECONDS = 45
# Longer than two beats: background tabs may run their timers only once a minute.
PRESENCE_SECONDS = 150


def presence_key(user_id: int) -> str:
    return f"portfolios:viewer:{user_id}"


def viewer_touch(*, user_id: int) -> None:
    cache.set(presence_key(user_id), 1, PRESENCE_SECONDS)


def viewers_among(*, user_ids: Iterable[int]) -> set[int]:
    """The users among `user_ids` with a dashboard open (one cache round trip)."""
    ids = list(user_ids)
    present = cache.get_many([presence_key(user_id) for user_id in ids])
    return {user_id for user_id in ids if presence_key(user_id) in present}
