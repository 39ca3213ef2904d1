"""The tick stream in tests: the feed's side (append published batches) and a tick consumer process's side,
run in-process (`TickConsumer.run(max_entries=..., timeout=...)` handles that many entries and returns)."""

from __future__ import annotations

from collections.abc import Sequence

from marketdata.tick_consumers import TickConsumer
from marketdata.tickstream import stream_client, tick_batches_append, tick_stream_key
from marketdata.types import TickEvent


def publish(*batches: Sequence[TickEvent]) -> None:
    """What the feed does after each publish: one entry per batch on the tick stream."""
    tick_batches_append([list(batch) for batch in batches])


def started(name: str, *, consumer: str, **kwargs) -> TickConsumer:
    """A process of the registered tick consumer `name`, started (its group exists from here on)."""
    tick_consumer = TickConsumer.named(name, consumer=consumer, **kwargs)
    tick_consumer.start()
    return tick_consumer


def pending(group: str) -> int:
    """Entries delivered to the group and not acknowledged."""
    return stream_client().xpending(tick_stream_key(), group)["pending"]
