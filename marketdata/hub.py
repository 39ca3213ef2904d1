"""In-process fan-out of market ticks to this web process's WebSocket clients.

The feed sends one channel-layer message per symbol and publish. If every socket joined the group
itself, channels_redis would copy the message into Redis once per socket and each copy would be popped
one round trip at a time: N users, N copies. Instead each web process holds ONE channel in `market.all`
(the hub), keeps the latest message per symbol (the snapshot a new client gets first), and hands the same
pre-rendered strings to each local subscriber. Upstream, Redis and rendering costs do not grow with users.

Memory per slow client is bounded: the hub's own channel is capped by the channel-layer capacity (older
messages are dropped, the next one carries the full state of the symbol), a subscriber that has not
yet had its snapshot keeps only the latest message per symbol, and a client that stops reading is
disconnected by daphne's ping timeout (it answers no pings), which frees what Twisted had buffered.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable

import structlog
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from marketdata import metrics
from marketdata.render import ALL_GROUP, MESSAGE_TYPE, channel_message, with_stale

logger = structlog.get_logger(__name__)
# channels_redis forgets group members after a day (group_expiry): the hub re-joins well before.
REJOIN_SECONDS = 3600
RETRY_SECONDS = 1.0
# Messages arriving within this window go out together: symbols ticking at the same moment cost a
# socket one frame, not one each (the per-frame cost, not the bytes, is what limits a process).
FLUSH_SECONDS = 0.01
# A flush lets the channel reader run after this many sockets, so what arrives meanwhile is merged
# (newest per symbol) into the next flush: an overloaded process sends fewer, fresher frames instead
# of falling behind.
SOCKETS_PER_SLICE = 250


class Subscriber(ABC):
    """What a consumer gives the hub: the symbols it wants, how messages become frames, how to send."""

    kind = "base"
    slugs: frozenset[str] | None = None  # None: every symbol

    def wants(self, slug: str) -> bool:
        return self.slugs is None or slug in self.slugs

    def render_key(self) -> tuple:
        """Subscribers with the same key get the same frames: they are built once per flush."""
        return (type(self), self.slugs)

    @abstractmethod
    def frames(self, messages: list[dict]) -> list[str]:
        """The frames that carry these messages (already rendered by the feed) to this client."""

    @abstractmethod
    async def send_frames(self, frames: list[str]) -> None:
        """Write the frames to the socket."""


class MarketHub:
    def __init__(self) -> None:
        self.latest: dict[str, dict] = {}
        self.subscribers: set[Subscriber] = set()
        self._pending: dict[Subscriber, dict[str, dict]] = {}
        self._task: asyncio.Task | None = None
        self._outbox: dict[str, dict] = {}
        self._flusher: asyncio.Task | None = None
        self._outbox_ready = asyncio.Event()
        self._loaded = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._loaded = asyncio.Event()
            self._outbox_ready = asyncio.Event()
            self._task = loop.create_task(self._run(), name="market-hub")
            self._flusher = loop.create_task(self._flush_forever(), name="market-hub-writer")
        await self._loaded.wait()

    async def subscribe(self, subscriber: Subscriber) -> list[dict]:
        """Register, and return the snapshot (latest message per wanted symbol). Until `ready()` the hub
        keeps only the newest message per symbol for this subscriber, so nothing overtakes the snapshot."""
        await self._ensure_running()
        self.subscribers.add(subscriber)
        self._pending[subscriber] = {}
        metrics.WS_CLIENTS.labels(subscriber.kind).inc()
        return [self._fresh(m) for slug, m in sorted(self.latest.items()) if subscriber.wants(slug)]

    async def ready(self, subscriber: Subscriber, *, sent: Iterable[dict]) -> None:
        """The snapshot went out: send what arrived meanwhile (if newer), then deliver live."""
        seen = {m["slug"]: m["seq"] for m in sent}
        pending = self._pending.pop(subscriber, {})
        newer = [m for slug, m in sorted(pending.items()) if m["seq"] > seen.get(slug, -1)]
        if newer:
            await self._send(subscriber, subscriber.frames(newer))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.discard(subscriber)
            self._pending.pop(subscriber, None)
            metrics.WS_CLIENTS.labels(subscriber.kind).dec()

    def retarget(self, subscriber: Subscriber, slugs: frozenset[str] | None) -> list[dict]:
        """Change what a subscriber wants; returns the snapshot of the newly wanted symbols."""
        before = subscriber.slugs
        subscriber.slugs = slugs
        return [
            self._fresh(m)
            for slug, m in sorted(self.latest.items())
            if subscriber.wants(slug) and not (before is None or slug in before)
        ]

    def _fresh(self, message: dict) -> dict:
        """The stored message, or a stale version of it if its symbol has been silent too long (the feed
        may be down, so nobody else would say so)."""
        data = message["data"]
        if data["stale"] or time.time() - data["display"]["updated_ts"] <= data["stale_after"]:
            return message
        stale = channel_message({**with_stale(data, stale=True), "received_at": None})
        self.latest[message["slug"]] = stale
        return stale

    async def dispatch(self, message: dict) -> None:
        """A message from the feed: remember it, and send it with whatever else arrives in FLUSH_SECONDS."""
        slug = message["slug"]
        current = self.latest.get(slug)
        if current is not None and message["seq"] <= current["seq"]:
            return
        self.latest[slug] = message
        self._outbox[slug] = message
        self._outbox_ready.set()

    async def _flush_forever(self) -> None:
        """One writer: wait for messages, gather what arrives in FLUSH_SECONDS, write; repeat. Whatever
        comes in while it writes is merged into the next round."""
        while True:
            await self._outbox_ready.wait()
            await asyncio.sleep(FLUSH_SECONDS)
            self._outbox_ready.clear()
            await self.flush()

    async def flush(self) -> None:
        messages = list(self._outbox.values())
        self._outbox = {}
        if not messages:
            return
        started = time.time()
        for message in messages:
            if message["data"].get("received_at"):
                metrics.HUB_LAG.observe(max(0.0, started - message["data"]["received_at"]))
        built: dict[tuple, tuple[list[dict], list[str]]] = {}
        for count, subscriber in enumerate(list(self.subscribers), start=1):
            if count % SOCKETS_PER_SLICE == 0:
                await asyncio.sleep(0)
            if subscriber not in self.subscribers:
                continue  # went away while we yielded
            key = subscriber.render_key()
            if key not in built:
                wanted = [m for m in messages if subscriber.wants(m["slug"])]
                built[key] = (wanted, subscriber.frames(wanted) if wanted else [])
            wanted, frames = built[key]
            if not wanted:
                continue
            pending = self._pending.get(subscriber)
            if pending is not None:
                pending.update((m["slug"], m) for m in wanted)
            else:
                await self._send(subscriber, frames)
        metrics.HUB_FLUSH.observe(time.time() - started)

    async def _send(self, subscriber: Subscriber, frames: list[str]) -> None:
        try:
            await subscriber.send_frames(frames)
        except Exception as exc:
            # The client closed while we wrote (its disconnect is still queued): routine when many leave
            # at once, so one line without a traceback. Forget it, serve the others.
            logger.info("marketdata.hub_socket_gone", error=repr(exc))
            self.unsubscribe(subscriber)

    async def _rejoin(self, layer, channel: str) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            await layer.group_add(ALL_GROUP, channel)

    async def _run(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                channel = await layer.new_channel()
                await layer.group_add(ALL_GROUP, channel)
                if not self.latest:
                    for message in await database_sync_to_async(_snapshot_from_database)():
                        self.latest.setdefault(message["slug"], message)
                self._loaded.set()
                rejoin = asyncio.get_running_loop().create_task(self._rejoin(layer, channel))
                try:
                    while True:
                        message = await layer.receive(channel)
                        if message.get("type") == MESSAGE_TYPE:
                            await self.dispatch(message)
                finally:
                    rejoin.cancel()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("marketdata.hub_failed")
                self._loaded.set()
                await asyncio.sleep(RETRY_SECONDS)


def _snapshot_from_database() -> list[dict]:
    """Before the first message arrives: the stored quotes, rendered the way the feed renders them."""
    from marketdata.selectors import instrument_list, live_payloads

    return [channel_message(data) for data in live_payloads(instruments=list(instrument_list()))]


hub = MarketHub()
