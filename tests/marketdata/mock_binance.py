"""A local stand-in for Binance's public spot API, speaking its real wire formats, for the real ccxt.pro
client: REST `exchangeInfo` and `klines`, and the raw WebSocket stream (`SUBSCRIBE`, `trade` events).
It counts what it is asked, so tests and bench/upstream_calls.py can see the upstream traffic.

Point ccxt at it with MARKET_CCXT_CONFIG = mock.ccxt_config() (only URLs change)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

MINUTE_MS = 60_000


def _market(symbol: str, base: str, quote: str, tick: str, step: str) -> dict:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "1000000.00000000",
                "tickSize": tick,
            },
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


@dataclass
class MockBinance:
    """`prices`: starting price per unified symbol; each subscribed symbol trades `trades_per_second`."""

    prices: dict[str, float]
    trades_per_second: float = 5.0
    host: str = "127.0.0.1"
    port: int = 0
    requests: Counter = field(default_factory=Counter)
    ws_connections: int = 0
    ws_subscriptions: int = 0
    trades_sent: int = 0
    _trade_id: int = 1000
    _runner: web.AppRunner | None = None
    _sockets: set = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ccxt_config(self) -> dict:
        return {
            "urls": {
                "api": {"public": f"{self.url}/api/v3", "ws": {"spot": f"ws://{self.host}:{self.port}/ws"}}
            },
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }

    def _binance_id(self, symbol: str) -> str:
        return symbol.replace("/", "")

    async def start(self) -> MockBinance:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/ws/{stream:.*}", self._stream)
        app.router.add_get("/ws", self._stream)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def drop_connections(self) -> None:
        """Close every stream, as Binance does after 24 hours or on maintenance."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"going away")

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.requests["exchangeInfo"] += 1
        symbols = []
        for symbol in self.prices:
            base, quote = symbol.split("/")
            symbols.append(_market(self._binance_id(symbol), base, quote, "0.01000000", "0.00001000"))
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    async def _klines(self, request: web.Request) -> web.Response:
        self.requests["klines"] += 1
        wanted = request.query["symbol"]
        symbol = next(s for s in self.prices if self._binance_id(s) == wanted)
        now = int(time.time() * 1000)
        start = int(request.query.get("startTime", now - 500 * MINUTE_MS))
        start -= start % MINUTE_MS
        limit = int(request.query.get("limit", 500))
        price = self.prices[symbol]
        rows = []
        for open_ms in range(start, now + 1, MINUTE_MS)[:limit]:
            p = f"{price:.2f}"
            rows.append(
                [
                    open_ms,
                    p,
                    f"{price * 1.001:.2f}",
                    f"{price * 0.999:.2f}",
                    p,
                    "1.50000000",
                    open_ms + MINUTE_MS - 1,
                    f"{price * 1.5:.8f}",
                    42,
                    "0.75000000",
                    f"{price * 0.75:.8f}",
                    "0",
                ]
            )
        return web.json_response(rows)

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.ws_connections += 1
        self._sockets.add(ws)
        streams: set[str] = set()
        pump = asyncio.create_task(self._pump(ws, streams))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                request_body = json.loads(message.data)
                if request_body.get("method") == "SUBSCRIBE":
                    self.ws_subscriptions += 1
                    streams.update(request_body["params"])
                    await ws.send_json({"result": None, "id": request_body["id"]})
        finally:
            pump.cancel()
            self._sockets.discard(ws)
        return ws

    async def _pump(self, ws: web.WebSocketResponse, streams: set[str]) -> None:
        interval = 1 / self.trades_per_second
        step = 0
        while not ws.closed:
            await asyncio.sleep(interval)
            step += 1
            for stream in list(streams):
                wanted = stream.split("@")[0].upper()
                symbol = next((s for s in self.prices if self._binance_id(s) == wanted), None)
                if symbol is None:
                    continue
                self._trade_id += 1
                price = self.prices[symbol] * (1 + 0.0005 * ((step % 7) - 3))
                now = int(time.time() * 1000)
                await ws.send_str(
                    json.dumps(
                        {
                            "e": "trade",
                            "E": now,
                            "s": wanted,
                            "t": self._trade_id,
                            "p": f"{price:.2f}",
                            "q": "0.00150000",
                            "T": now,
                            "m": bool(step % 2),
                            "M": True,
                        }
                    )
                )
                self.trades_sent += 1
