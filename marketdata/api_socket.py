"""The WebSocket API for programs: `/ws/v1/` (docs/api.md "The socket", docs/asyncapi.yaml).

Authenticated by an API token (the REST one, "read" scope): `Authorization: Token <t>` on the upgrade
request, or `?token=<t>` for clients that cannot set headers. One socket carries public market data
(quotes, candles: through this process's market hub, marketdata.hub) and the token user's own events
(orders, fills, positions, alerts, notifications: an `api.user.<id>.<channel>` group per channel it
subscribed to, core.api_events).

Every frame goes through a bounded per-connection queue drained by one writer task: a client whose queue
fills (it does not read, or reads slower than its subscriptions produce) is closed with 4429 instead of
being buffered without end. The server sends a heartbeat every HEARTBEAT_SECONDS; a client that sends
nothing (not even {"op": "ping"}) for twice that is closed with 4408.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from accounts.choices import ApiScope
from core.api_auth import api_token_lookup
from core.api_events import USER_CHANNELS, api_group, api_presence_enter, api_presence_leave
from core.errors import DomainError
from core.inputs import json_loads_bounded, text_problem
from marketdata.hub import Subscriber, hub
from marketdata.selectors import instrument_get

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_IDLE = 4408
CLOSE_SLOW_CONSUMER = 4429

MAX_MESSAGE_CHARS = 8192
MAX_CHANNELS = 100
CANDLE_INTERVALS = ("1m",)
USAGE = (
    'Send {"op": "subscribe" or "unsubscribe", "channels": ["quotes:BTC/USDT", "candles:BTC/USDT:1m", '
    '"orders", "fills", "positions", "alerts", "notifications"]} or {"op": "ping"}.'
)


def heartbeat_seconds() -> float:
    return float(getattr(settings, "API_SOCKET_HEARTBEAT_SECONDS", 20))


def queue_limit() -> int:
    return int(getattr(settings, "API_SOCKET_QUEUE_LIMIT", 1000))


def _token_from(scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "token":
                return token.strip()
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    return query.get("token", [""])[-1]


@database_sync_to_async
def _authenticate(token: str) -> tuple[int | None, int]:
    """(user id, 0) for a valid read token, else (None, close code)."""
    if not token or not token.isascii():
        return None, CLOSE_UNAUTHORIZED
    api_token = api_token_lookup(token)
    if api_token is None or api_token.expiry <= timezone.now() or not api_token.user.is_active:
        return None, CLOSE_UNAUTHORIZED
    if ApiScope.READ.value not in (api_token.scopes or []):
        return None, CLOSE_FORBIDDEN
    return api_token.user_id, 0


@database_sync_to_async
def _instrument(symbol: str) -> tuple[str, str]:
    instrument = instrument_get(symbol=symbol)
    return instrument.slug, instrument.symbol


class _Market(Subscriber):
    """The socket's market subscriptions, as the hub sees them."""

    kind = "api"

    def __init__(self, consumer: ApiSocketConsumer) -> None:
        self.consumer = consumer
        self.slugs: frozenset[str] | None = frozenset()
        self.quotes: frozenset[str] = frozenset()
        self.candles: frozenset[str] = frozenset()

    def render_key(self) -> tuple:
        return (type(self), self.quotes, self.candles)

    def frames(self, messages: list[dict]) -> list[str]:
        out = []
        for message in messages:
            data = {k: v for k, v in message["data"].items() if k not in ("display", "received_at", "type")}
            if message["slug"] in self.quotes:
                quote = {k: v for k, v in data.items() if k != "candle"}
                out.append(json.dumps({"type": "quote", "channel": f"quotes:{data['symbol']}", **quote}))
            if message["slug"] in self.candles and data.get("candle"):
                out.append(
                    json.dumps(
                        {
                            "type": "candle",
                            "channel": f"candles:{data['symbol']}:1m",
                            "symbol": data["symbol"],
                            "interval": "1m",
                            **data["candle"],
                        }
                    )
                )
        return out

    async def send_frames(self, frames: list[str]) -> None:
        for frame in frames:
            await self.consumer.enqueue(frame)


class ApiSocketConsumer(AsyncWebsocketConsumer):
    # The user's events come through Redis pub/sub (config/settings/base.py, API_EVENTS_LAYER).
    channel_layer_alias = settings.API_EVENTS_LAYER

    async def connect(self) -> None:
        user_id, code = await _authenticate(_token_from(self.scope))
        # Accepted, then closed: a refused handshake would hide the close code from the client.
        await self.accept()
        if user_id is None:
            await self.close(code=code)
            return
        self.user_id = user_id
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_limit())
        self.closing = False
        self.channels: set[str] = set()
        self.market = _Market(self)
        self.in_hub = False
        self.last_seen = time.monotonic()
        await api_presence_enter(user_id, every=heartbeat_seconds(), seconds=self._presence_seconds())
        self.present = True
        loop = asyncio.get_running_loop()
        self.writer = loop.create_task(self._write())
        self.beater = loop.create_task(self._heartbeat())
        await self.enqueue(json.dumps({"type": "welcome", "heartbeat_seconds": heartbeat_seconds()}))

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "user_id"):
            return
        self.closing = True
        for task in (self.writer, self.beater):
            task.cancel()
        if self.in_hub:
            hub.unsubscribe(self.market)
        if getattr(self, "present", False):
            self.present = False
            api_presence_leave(self.user_id)
        await self._regroup(set())

    # --- sending --------------------------------------------------------------------------------------

    async def enqueue(self, frame: str) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            await self._shut(CLOSE_SLOW_CONSUMER)

    async def _shut(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        if self.in_hub:
            hub.unsubscribe(self.market)
            self.in_hub = False
        self.writer.cancel()
        await self.close(code=code)

    async def _write(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.base_send({"type": "websocket.send", "text": frame})

    async def _heartbeat(self) -> None:
        every = heartbeat_seconds()
        while not self.closing:
            await asyncio.sleep(every)
            if time.monotonic() - self.last_seen > 2 * every:
                await self._shut(CLOSE_IDLE)
                return
            await self.enqueue(json.dumps({"type": "heartbeat", "ts": time.time()}))

    @staticmethod
    def _presence_seconds() -> float:
        # Outlives a missed renewal; a stale mark only costs a group_send that reaches nobody.
        return max(3 * heartbeat_seconds(), 60)

    async def error(self, detail: str) -> None:
        await self.enqueue(json.dumps({"type": "error", "detail": detail}))

    # --- receiving ------------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if not hasattr(self, "user_id") or self.closing:
            return
        self.last_seen = time.monotonic()
        if text_data is None:
            await self.error("Send text frames with JSON. " + USAGE)
            return
        problem = text_problem(text_data, max_length=MAX_MESSAGE_CHARS)
        if problem:
            await self.error(f"The message {problem}.")
            return
        try:
            request = json_loads_bounded(text_data)
        except ValueError:
            await self.error("The message is not JSON. " + USAGE)
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "ping":
            await self.enqueue(json.dumps({"type": "pong", "ts": time.time()}))
            return
        channels = request.get("channels") if isinstance(request, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(channels, list) or not channels:
            await self.error(USAGE)
            return
        if not all(isinstance(c, str) for c in channels) or len(channels) > MAX_CHANNELS:
            await self.error(f"channels is a list of at most {MAX_CHANNELS} strings.")
            return
        try:
            parsed = [await self._parse(c) for c in channels]
        except DomainError as exc:
            await self.error(str(exc))
            return
        if op == "subscribe":
            wanted = self.channels | {name for name, _ in parsed}
            if len(wanted) > MAX_CHANNELS:
                await self.error(f"A socket subscribes to at most {MAX_CHANNELS} channels.")
                return
        else:
            wanted = self.channels - {name for name, _ in parsed}
        await self._regroup(wanted)
        self.channels = wanted
        await self._retarget()
        await self.enqueue(
            json.dumps(
                {"type": f"{op}d", "channels": [name for name, _ in parsed], "active": sorted(self.channels)}
            )
        )

    async def _parse(self, channel: str) -> tuple[str, str | None]:
        """The channel's canonical name and the instrument slug it concerns (None for user channels)."""
        if channel in USER_CHANNELS:
            return channel, None
        kind, _, rest = channel.partition(":")
        if kind == "quotes" and rest:
            slug, symbol = await self._symbol(rest)
            return f"quotes:{symbol}", slug
        if kind == "candles" and rest:
            symbol_text, _, interval = rest.rpartition(":")
            if interval not in CANDLE_INTERVALS or not symbol_text:
                raise DomainError(
                    f"{channel}: candles are candles:<symbol>:<interval>, interval one of "
                    f"{', '.join(CANDLE_INTERVALS)}."
                )
            slug, symbol = await self._symbol(symbol_text)
            return f"candles:{symbol}:{interval}", slug
        raise DomainError(f"Unknown channel {channel[:100]!r}. " + USAGE)

    async def _symbol(self, text: str) -> tuple[str, str]:
        return await _instrument(text)

    async def _regroup(self, wanted: set[str]) -> None:
        """Join the groups of the user channels newly wanted, leave those no longer wanted."""
        user_channels = set(USER_CHANNELS)
        for channel in (wanted - self.channels) & user_channels:
            await self.channel_layer.group_add(api_group(self.user_id, channel), self.channel_name)
        for channel in (self.channels - wanted) & user_channels:
            await self.channel_layer.group_discard(api_group(self.user_id, channel), self.channel_name)

    async def _retarget(self) -> None:
        quotes, candles = set(), set()
        for name in self.channels:
            kind, _, rest = name.partition(":")
            if kind == "quotes":
                quotes.add(rest.replace("/", "-"))
            elif kind == "candles":
                candles.add(rest.rpartition(":")[0].replace("/", "-"))
        market = self.market
        market.quotes, market.candles = frozenset(quotes), frozenset(candles)
        slugs = market.quotes | market.candles
        if not slugs:
            if self.in_hub:
                hub.unsubscribe(market)
                self.in_hub = False
            market.slugs = frozenset()
            return
        if not self.in_hub:
            market.slugs = slugs
            snapshot = await hub.subscribe(market)
            self.in_hub = True
            await market.send_frames(market.frames(snapshot))
            await hub.ready(market, sent=snapshot)
            return
        added = hub.retarget(market, slugs)
        if added:
            await market.send_frames(market.frames(added))

    # --- the user's events ----------------------------------------------------------------------------

    async def api_event(self, event: dict) -> None:
        """core.api_events.MESSAGE_TYPE: one JSON event of a channel this socket joined (checked again: an
        event already on its way when the client unsubscribed is not forwarded)."""
        if event.get("channel") in self.channels:
            await self.enqueue(event["frame"])
