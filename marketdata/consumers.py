"""Market WebSockets. Market data is public (see docs/market-data.md): anonymous clients are welcome,
nothing here is user data. Both consumers get a snapshot first, then one frame per symbol and publish,
forwarded as the feed rendered it (marketdata.hub).

- `/ws/market/?symbols=BTC-USDT,ETH-USDT&view=row|ticker`: HTML fragments for HTMX (out-of-band swaps).
- `/ws/market/json/?symbols=...`: JSON for programs; send {"action": "subscribe"|"unsubscribe", "symbols": [...]}.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from core.errors import DomainError
from core.inputs import json_loads_bounded, text_problem
from marketdata.hub import Subscriber, hub
from marketdata.metrics import WS_MESSAGES_SENT
from marketdata.render import VIEWS
from marketdata.selectors import instrument_get

MAX_SYMBOLS = 50
# Room for MAX_SYMBOLS symbols and the JSON around them.
MAX_MESSAGE_CHARS = 4096
CLOSE_BAD_REQUEST = 4400


def _query(scope) -> dict[str, str]:
    # Not UTF-8: the replacement characters make an unknown symbol or view, answered like any other.
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode(errors="replace")).items()}


@database_sync_to_async
def _resolve(symbols: list[str]) -> frozenset[str]:
    """Slugs of known instruments; DomainError names the first unknown one."""
    if len(symbols) > MAX_SYMBOLS:
        raise DomainError(f"Subscribe to at most {MAX_SYMBOLS} symbols at once.", field="symbols")
    return frozenset(instrument_get(symbol=s).slug for s in symbols)


def _split(value: str) -> list[str]:
    return [s for s in (part.strip() for part in value.split(",")) if s]


class _MarketConsumer(AsyncWebsocketConsumer, Subscriber):
    # No channel per socket: the hub is this process's one reader of the market group, and a channel
    # per socket would cost a Redis receiver for each of thousands of idle connections.
    channel_layer_alias = None

    async def connect(self) -> None:
        wanted = _split(_query(self.scope).get("symbols", ""))
        try:
            self.slugs = await _resolve(wanted) if wanted else None
        except DomainError as exc:
            await self.accept()
            await self.send_error(str(exc))
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        problem = self.configure()
        await self.accept()
        if problem:
            await self.send_error(problem)
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        snapshot = await hub.subscribe(self)
        self.subscribed = True
        await self.send_snapshot(snapshot)
        await hub.ready(self, sent=snapshot)

    def configure(self) -> str | None:
        """Read connection options; a message when they are invalid."""
        return None

    async def disconnect(self, code: int) -> None:
        if getattr(self, "subscribed", False):
            hub.unsubscribe(self)

    async def send_frames(self, frames: list[str]) -> None:
        for frame in frames:
            await self.base_send({"type": "websocket.send", "text": frame})
        self.sent_counter.inc(len(frames))

    async def send_error(self, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "message": message}))


class MarketHtmlConsumer(_MarketConsumer):
    kind = "html"
    sent_counter = WS_MESSAGES_SENT.labels("html")

    def configure(self) -> str | None:
        self.view = _query(self.scope).get("view", "row")
        return None if self.view in VIEWS else f"view must be one of {', '.join(VIEWS)}"

    def render_key(self) -> tuple:
        return (type(self), self.view, self.slugs)

    def frames(self, messages: list[dict]) -> list[str]:
        """One frame of out-of-band swaps for all the symbols of a flush."""
        return ["".join(m["html"][self.view] for m in messages)]

    async def send_snapshot(self, snapshot: list[dict]) -> None:
        if snapshot:
            await self.send_frames(self.frames(snapshot))

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """HTMX may send form values over the socket; this stream is one-way, so they are ignored."""


class MarketJsonConsumer(_MarketConsumer):
    kind = "json"
    sent_counter = WS_MESSAGES_SENT.labels("json")

    def frames(self, messages: list[dict]) -> list[str]:
        """One JSON object per tick, as the feed serialised it."""
        return [m["json"] for m in messages]

    async def send_snapshot(self, snapshot: list[dict]) -> None:
        quotes = [json.loads(m["json"]) for m in snapshot]
        await self.send_frames([json.dumps({"type": "snapshot", "quotes": quotes})])

    async def receive(self, text_data=None, bytes_data=None) -> None:
        problem = text_problem(text_data or "", max_length=MAX_MESSAGE_CHARS)
        if problem:
            await self.send_error(f"The message {problem}.")
            return
        try:
            request = json_loads_bounded(text_data or "")
            action, symbols = request["action"], request["symbols"]
            if action not in ("subscribe", "unsubscribe") or not isinstance(symbols, list):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            await self.send_error(
                'Send {"action": "subscribe" or "unsubscribe", "symbols": ["BTC/USDT", ...]}.'
            )
            return
        try:
            slugs = await _resolve([str(s) for s in symbols])
        except DomainError as exc:
            await self.send_error(str(exc))
            return
        current = self.slugs
        if action == "subscribe":
            # A program that subscribed to everything (no ?symbols=) narrows to what it names.
            target = slugs if current is None else current | slugs
        else:
            target = (current if current is not None else frozenset(hub.latest)) - slugs
        added = hub.retarget(self, frozenset(target))
        await self.send_snapshot(added)
