"""The durable record of what the feed published: one Redis stream entry per coalesced batch of ticks.

The feed appends each batch once (`tick_batches_append`); the tick consumers (marketdata/tick_consumers.py)
read the stream through consumer groups, so each of them gets every batch even while it was down. An
entry is `{"ticks": <JSON>}`, the JSON a list of `{"symbol", "price", "previous_price", "at"}` (Decimals
as strings, `at` the market time in ISO 8601); the millisecond part of the entry id is when the feed
published it (wall clock). The stream is trimmed to about `MARKET_TICK_STREAM_MAXLEN` entries, which is
how long a consumer may be down before it misses ticks (docs/market-data.md, "Tick consumers").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache

import redis
from django.conf import settings

from marketdata.types import TickEvent

# Longer than the consumers' blocking read (one second), so a quiet stream is not a timeout.
SOCKET_TIMEOUT_SECONDS = 10


@cache
def stream_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS)


def tick_stream_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:marketdata:ticks"


def ticks_encode(ticks: Sequence[TickEvent]) -> dict[str, str]:
    return {
        "ticks": json.dumps(
            [
                {
                    "symbol": tick.symbol,
                    "price": str(tick.price),
                    "previous_price": None if tick.previous_price is None else str(tick.previous_price),
                    "at": tick.at.isoformat(),
                }
                for tick in ticks
            ]
        )
    }


def ticks_decode(fields: Mapping[bytes, bytes]) -> list[TickEvent]:
    """The ticks of one entry; raises ValueError (or KeyError) for an entry the feed did not write."""
    return [
        TickEvent(
            symbol=item["symbol"],
            price=Decimal(item["price"]),
            previous_price=None if item["previous_price"] is None else Decimal(item["previous_price"]),
            at=datetime.fromisoformat(item["at"]),
        )
        for item in json.loads(fields[b"ticks"])
    ]


def tick_batches_append(batches: Sequence[Sequence[TickEvent]]) -> None:
    """Append each batch as one entry, in order, in one round trip. Raises redis.RedisError."""
    if not batches:
        return
    pipe = stream_client().pipeline(transaction=False)
    for ticks in batches:
        pipe.xadd(
            tick_stream_key(), ticks_encode(ticks), maxlen=settings.MARKET_TICK_STREAM_MAXLEN, approximate=True
        )
    pipe.execute()
