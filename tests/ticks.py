"""The tick stream in tests: the feed's side (append published batches) and a tick consumer process's side,
run in-process (`TickConsumer.run(max_entries=..., timeout=...)` handles that many entries and returns)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

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


def consume(name: str, *batches: Sequence[TickEvent], consumer: str = "test", timeout: float = 10) -> int:
    """A process of the tick consumer `name` starts, the feed publishes `batches`, the process handles
    them; returns the entries it handled. Runs on a thread of its own, with its own database
    connections, as the consumer's own process would (a browser test's thread runs Playwright's loop)."""

    def run() -> int:
        from django.db import connections

        try:
            tick_consumer = started(name, consumer=consumer)
            publish(*batches)
            return tick_consumer.run(max_entries=len(batches), timeout=timeout)
        finally:
            connections.close_all()

    return _on_own_thread(run)


def _on_own_thread(function: Callable[[], int]) -> int:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()
