"""Tick consumers: the processes that react to published prices, all of one shape.

The feed only publishes: each coalesced batch of ticks goes once to the tick stream
(marketdata/tickstream.py). Each reaction to prices (revaluing open dashboards, evaluating alerts, matching
resting paper orders) is a tick consumer: a Redis consumer group on that stream, run as its own process
by `manage.py run_tick_consumer <name>`, so it can be restarted, scaled and profiled without the feed.
Apps register theirs in AppConfig.ready(); marketdata knows none of them:

    from marketdata.tick_consumers import TickHandler, register_tick_consumer

    class Matching(TickHandler):
        def start(self): ...           # once per process, before the first batch (load, catch up)
        def handle(self, ticks): ...   # the ticks of one or more stream entries, oldest first

    register_tick_consumer("matching", handler=Matching)

Delivery is at least once, so handlers are idempotent. An entry is acknowledged (XACK) only after
`handle` returned: what a process read and did not finish is handled again, by itself after a failure
(with backoff), or by another process of the group once it has been pending for CLAIM_IDLE_MS (XAUTOCLAIM:
the process died). Entries published while no process of a group ran wait in the stream for it. A
`latest_only` group (revaluation) skips to the newest entry when a process starts instead. See
docs/market-data.md, "Tick consumers".
"""

from __future__ import annotations

import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import redis
import structlog
from django.db import close_old_connections

from marketdata.tickstream import stream_client, tick_stream_key, ticks_decode
from marketdata.types import TickEvent

logger = structlog.get_logger(__name__)

BLOCK_MS = 1_000  # a read waits this long for new entries; also how soon SIGTERM is noticed
CLAIM_IDLE_MS = 30_000  # an entry pending this long belongs to a process that died: another one takes it
CLAIM_EVERY_SECONDS = 5.0
FORGET_IDLE_MS = 24 * 3600 * 1000  # consumers (one per process that ever ran) idle this long, with nothing pending
BACKOFF_MAX_SECONDS = 30.0


class TickHandler(ABC):
    """What an app does with published ticks. One instance per consumer process."""

    def start(self) -> None:  # noqa: B027 - most handlers have nothing to load
        """Once, before the first batch: load state, catch up on what the stream cannot replay."""

    @abstractmethod
    def handle(self, ticks: list[TickEvent]) -> None:
        """The ticks of one or more entries, oldest first. Raise to have them handled again."""


@dataclass(frozen=True)
class TickConsumerSpec:
    name: str  # the consumer group, and the argument of `manage.py run_tick_consumer`
    handler: Callable[[], TickHandler]
    latest_only: bool = False  # start from the newest entry, not from where the group left off
    read_count: int = 100  # entries per read: what one `handle` call gets at most


_consumers: dict[str, TickConsumerSpec] = {}


def register_tick_consumer(
    name: str, *, handler: Callable[[], TickHandler], latest_only: bool = False, read_count: int = 100
) -> None:
    _consumers[name] = TickConsumerSpec(
        name=name, handler=handler, latest_only=latest_only, read_count=read_count
    )


def tick_consumer_names() -> list[str]:
    return sorted(_consumers)


def tick_consumer_spec(name: str) -> TickConsumerSpec:
    try:
        return _consumers[name]
    except KeyError:
        raise LookupError(
            f"no tick consumer {name!r}; registered: {', '.join(tick_consumer_names()) or 'none'}"
        ) from None


def default_consumer_name() -> str:
    """One name per process: a restarted process is a new consumer, and what the old one left pending
    is claimed after CLAIM_IDLE_MS."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _close_old_connections() -> None:
    """Drop broken or old database connections around each batch (a long-lived process). Failing to
    close one (the database is down) must not stop the consumer: the next batch reconnects."""
    try:
        close_old_connections()
    except Exception:
        logger.warning("tick_consumer.close_connections_failed", exc_info=True)


class TickConsumer:
    """One process's member of a consumer group. Single-threaded: `run()` (or `process()`) in one thread;
    `stop()` from anywhere (a signal handler)."""

    def __init__(
        self,
        spec: TickConsumerSpec,
        *,
        consumer: str | None = None,
        client: redis.Redis | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.spec = spec
        self.group = spec.name
        self.consumer = consumer or default_consumer_name()
        self.client = client or stream_client()
        self.key = tick_stream_key()
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.handler = spec.handler()
        self.failures = 0  # consecutive failed rounds
        self._started = False
        self._retry_own = False
        self._next_claim = 0.0
        self._stopping = threading.Event()

    @classmethod
    def named(cls, name: str, **kwargs) -> TickConsumer:
        return cls(tick_consumer_spec(name), **kwargs)

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Join the group (creating it at the newest entry if it does not exist: a consumer kind that never
        ran starts from now), skip to the newest entry when `latest_only`, forget consumers of processes
        long gone, then let the handler load and catch up."""
        if self._started:
            return
        if not self._create_group(at="$") and self.spec.latest_only:
            self.client.xgroup_setid(self.key, self.group, id="$")
        for info in self.client.xinfo_consumers(self.key, self.group):
            name = info["name"].decode()
            if info["pending"] == 0 and info["idle"] > FORGET_IDLE_MS and name != self.consumer:
                self.client.xgroup_delconsumer(self.key, self.group, name)
        self.handler.start()
        self._started = True
        group = next(g for g in self.client.xinfo_groups(self.key) if g["name"].decode() == self.group)
        logger.info(
            "tick_consumer.started",
            group=self.group,
            consumer=self.consumer,
            pending=group["pending"],
            behind=group.get("lag"),  # entries not yet delivered to the group (Redis 7)
        )

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it, and return from run() (SIGTERM, SIGINT)."""
        self._stopping.set()

    def run(self, *, max_entries: int | None = None, timeout: float | None = None) -> int:
        """Start (retrying while Redis or the database is away), then handle entries until stop(), or
        until `max_entries` were handled or `timeout` seconds passed (tests run a consumer in-process
        this way). Returns the number of entries handled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0

        def done() -> bool:
            return (
                self._stopping.is_set()
                or (max_entries is not None and handled >= max_entries)
                or (deadline is not None and time.monotonic() >= deadline)
            )

        attempt = 0
        while not self._started and not done():
            try:
                self.start()
            except Exception:
                attempt += 1
                logger.exception("tick_consumer.start_failed", group=self.group, attempt=attempt)
                self._stopping.wait(min(BACKOFF_MAX_SECONDS, 2 ** (attempt - 1)))
        while not done():
            block_ms = self.block_ms
            if deadline is not None:
                block_ms = max(1, min(block_ms, int((deadline - time.monotonic()) * 1000)))
            handled += self.process(block_ms=block_ms)
            if self.failures:
                self._stopping.wait(min(BACKOFF_MAX_SECONDS, 2 ** (self.failures - 1)))
        return handled

    # --- one round -------------------------------------------------------------------------------------

    def process(self, *, block_ms: int | None = None) -> int:
        """One round: the entries this process must retry, else those claimed from a process that died,
        else new ones (waiting up to `block_ms`; 0 does not wait). Handles and acknowledges them and
        returns how many; a failure is logged, counted in `failures`, and its entries retried next round."""
        try:
            entries = self._due()
            if not entries:
                entries = self._read(">", block_ms=self.block_ms if block_ms is None else block_ms)
            if entries:
                self._handle(entries)
        except redis.ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                return self._failed()
            # Redis lost the stream (restarted without its data, or flushed): what it holds now is all
            # newer than what this group handled, so the group starts again from its beginning.
            logger.warning("tick_consumer.group_recreated", group=self.group)
            self._create_group(at="0")
            return 0
        except Exception:
            return self._failed()
        self.failures = 0
        return len(entries)

    def _failed(self) -> int:
        self.failures += 1
        self._retry_own = True
        logger.exception("tick_consumer.round_failed", group=self.group, failures=self.failures)
        return 0

    def _due(self) -> list:
        if self._retry_own:
            entries = self._read("0", block_ms=0)  # this process's own pending entries, oldest first
            if entries:
                return entries
            self._retry_own = False
        if time.monotonic() < self._next_claim:
            return []
        reply = self.client.xautoclaim(
            self.key,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=self.spec.read_count,
        )
        claimed = reply[1]
        if len(reply) > 2 and reply[2]:  # Redis 7 drops claimed entries trimmed from the stream
            logger.warning("tick_consumer.entries_lost", group=self.group, entries=len(reply[2]))
        # More may be waiting: claim again next round; otherwise look again in a few seconds.
        self._next_claim = 0.0 if claimed else time.monotonic() + CLAIM_EVERY_SECONDS
        if claimed:
            logger.warning("tick_consumer.claimed", group=self.group, consumer=self.consumer, entries=len(claimed))
        return claimed

    def _read(self, start: str, *, block_ms: int) -> list:
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.key: start}, count=self.spec.read_count, block=block_ms or None
        )
        return reply[0][1] if reply else []

    def _create_group(self, *, at: str) -> bool:
        try:
            self.client.xgroup_create(self.key, self.group, id=at, mkstream=True)
        except redis.ResponseError as error:
            if str(error).startswith("BUSYGROUP"):
                return False
            raise
        return True

    def _handle(self, entries: list) -> None:
        ticks: list[TickEvent] = []
        lost = 0
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream before anyone handled it
                lost += 1
                continue
            try:
                ticks += ticks_decode(fields)
            except (KeyError, TypeError, ValueError):
                logger.error("tick_consumer.unreadable_entry", group=self.group, entry=entry_id.decode())
        if lost:
            logger.warning("tick_consumer.entries_lost", group=self.group, entries=lost)
        if ticks:
            _close_old_connections()
            try:
                self.handler.handle(ticks)
            finally:
                _close_old_connections()
        ids = [entry_id for entry_id, _ in entries if entry_id is not None]
        if ids:
            self.client.xack(self.key, self.group, *ids)
