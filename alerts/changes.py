"""How evaluators in other processes learn that alerts changed: a Redis stream of alert ids.

Every alert write appends the alert's id after its transaction commits. An evaluator reads the entries
after the last one it saw (one non-blocking XREAD per batch of ticks) and re-reads those alerts from
PostgreSQL, which stays the only source of truth: the stream carries ids, never state, so entries that
arrive out of order or twice do no harm. A change whose append was lost (the process died between the
commit and the XADD) is picked up by the evaluator's periodic full reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import redis
import structlog
from django.conf import settings
from django.db import transaction

logger = structlog.get_logger(__name__)

# Approximate trimming keeps at least this many ids: far more than an evaluator falls behind by.
STREAM_MAXLEN = 100_000
READ_BATCH = 5_000


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def stream_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:alerts:changes"


def alert_changes_publish(alert_ids: Iterable[int]) -> None:
    """Announce, right now, that these alerts changed (call it after the commit)."""
    ids = [str(int(i)) for i in alert_ids]
    if not ids:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        for start in range(0, len(ids), 500):
            pipe.xadd(
                stream_key(),
                {"ids": ",".join(ids[start : start + 500])},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
        pipe.execute()
    except redis.RedisError:
        logger.exception("alerts.change_publish_failed", count=len(ids))


def alert_changes_on_commit(alert_ids: Iterable[int]) -> None:
    ids = list(alert_ids)
    transaction.on_commit(lambda: alert_changes_publish(ids))


def alert_changes_head() -> str:
    """The id of the newest entry ("0-0" when empty): read from here to see every later change."""
    newest = _client().xrevrange(stream_key(), count=1)
    return newest[0][0].decode() if newest else "0-0"


def alert_changes_since(last_id: str) -> tuple[str, set[int]]:
    """The alert ids announced after `last_id`, and the id to continue from."""
    changed: set[int] = set()
    while True:
        reply = _client().xread({stream_key(): last_id}, count=READ_BATCH)
        if not reply:
            return last_id, changed
        entries = reply[0][1]
        for entry_id, fields in entries:
            last_id = entry_id.decode()
            changed.update(int(i) for i in fields[b"ids"].decode().split(",") if i)
        if len(entries) < READ_BATCH:
            return last_id, changed
