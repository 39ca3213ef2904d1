import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer

from core import api_events
from core.presence import SocketPresence
from marketdata.hub import hub
from marketdata.services import instruments_seed


@pytest.fixture
def instruments(db):
    """The default instruments and no market rows (every test starts from an empty database)."""
    return {i.symbol: i for i in instruments_seed()}


def hub_reset() -> None:
    """The hub is per process and the channel layer is shared Redis: forget both, as a new process would.
    A layer per event loop: each scenario runs its own (async_to_sync), and Redis pools are per loop."""
    hub.latest.clear()
    hub.subscribers.clear()
    hub._pending.clear()
    hub._outbox.clear()
    hub._task = None
    channel_layers.backends.clear()
    api_events.api_presence = SocketPresence("api.socket")  # the API sockets' users this process marks present


@pytest.fixture(autouse=True)
def _fresh_market_state():
    """Each test starts from nothing (the database is emptied after every test by tests/conftest.py)."""
    hub_reset()
    yield
    hub.latest.clear()
    hub.subscribers.clear()
    hub._pending.clear()
    hub._task = None


class Listener:
    """A channel in a group, to see exactly what the feed sends on the channel layer."""

    def __init__(self, layer, channel: str) -> None:
        self.layer = layer
        self.channel = channel

    @classmethod
    async def join(cls, *groups: str) -> "Listener":
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, channel)
        return cls(layer, channel)

    async def drain(self, timeout: float = 5.0) -> list[dict]:
        """Every message the channel received until now. A marker sent to the channel now comes out after
        all of them (a channel is first in, first out), so nothing is left to a fixed wait; `timeout` only
        bounds the wait for the marker."""
        import asyncio
        import uuid

        marker = {"type": "test.marker", "marker": uuid.uuid4().hex}
        await self.layer.send(self.channel, marker)
        messages = []
        while True:
            message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
            if message == marker:
                return messages
            messages.append(message)


class Announced:
    """What the feed told the other apps: `["candles"]`, the `candle_closed` signals (symbol, candle);
    `["ticks"]`, the batches of ticks on the tick stream, oldest first."""

    def __init__(self) -> None:
        self.candles: list = []

    def __getitem__(self, key: str) -> list:
        from marketdata.tickstream import stream_client, tick_stream_key, ticks_decode

        if key == "candles":
            return self.candles
        if key == "ticks":
            return [ticks_decode(fields) for _, fields in stream_client().xrange(tick_stream_key())]
        raise KeyError(key)


@pytest.fixture
def announced():
    """The tick stream starts empty (the Redis test database is flushed before each test)."""
    from marketdata.events import candle_closed

    seen = Announced()

    def on_candle(sender, symbol, candle, **kwargs):
        seen.candles.append((symbol, candle))

    candle_closed.connect(on_candle, dispatch_uid="test.on_candle")
    yield seen
    candle_closed.disconnect(dispatch_uid="test.on_candle")


def run_async(scenario):
    """Run an async test scenario to its end and return its result.

    pytest-django runs the browser tests before transactional and database-free tests, and Playwright
    leaves its event loop set in the main thread; then the scenario gets a thread of its own (whose
    database connection sees only committed rows, which is what those tests use)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return async_to_sync(scenario)()

    def in_thread():
        from django.db import connections

        try:
            return async_to_sync(scenario)()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(in_thread).result()
