"""A live exchange through ccxt's WebSocket client (ccxt.pro): one connection for every symbol.

- Trades arrive through one `watch_trades(symbol)` loop per symbol, all multiplexed on ONE WebSocket
  (`streamLimits` set to 1: ccxt's Binance client would otherwise spread subscriptions over several
  connections); a single `watch_trades_for_symbols` call would drop trades of one symbol when two
  arrive together. Each trade becomes a tick (deduplicated by trade id and time, so a trade resent
  after a reconnect is not counted twice).
- A drop (NetworkError, an exchange error, or silence longer than `silence_timeout`) reconnects with
  exponential backoff and jitter (1 s, 2 s, 4 s ... 60 s); the backoff starts again after a healthy
  connection.
- Exchanges close connections after 24 hours (Binance does); we reconnect on our own before that
  (`max_connection_age`, 23 h 30 min) without waiting.
- After every (re)connect the minutes since the last trade we saw are fetched over REST (`fetch_ohlcv`) and
  stored as authoritative candles; the current minute continues from the REST candle. Trades older than
  that fetch are ignored so nothing is counted twice. One REST call per symbol per reconnect: the rate
  does not depend on the number of users.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import structlog

from marketdata import metrics
from marketdata.feed.candles import minute_floor
from marketdata.feed.sources.base import EmitCandles, EmitTick, RawTick
from marketdata.types import CandleBar

logger = structlog.get_logger(__name__)
OHLCV_PAGE = 1000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        raw = min(self.maximum, self.base * self.factor ** max(0, attempt - 1))
        return raw * (1 + self.jitter * (2 * rng() - 1))


class PlannedReconnect(Exception):
    """The connection is old enough that the exchange would close it soon: reconnect now, on our terms."""


class Silence(Exception):
    """No message for longer than the silence timeout: the connection is presumed dead."""


def _decimal(value) -> Decimal:
    # ccxt hands numbers over as floats; their shortest repr is the exchange's decimal string.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def bar_from_ohlcv(row: list) -> CandleBar:
    """A ccxt OHLCV row [timestamp ms, open, high, low, close, volume]."""
    ms, o, h, low, c, v = row[:6]
    return CandleBar(
        open_time=datetime.fromtimestamp(ms / 1000, tz=UTC),
        open=_decimal(o),
        high=_decimal(h),
        low=_decimal(low),
        close=_decimal(c),
        volume=_decimal(v or 0),
    )


class CcxtSource:
    def __init__(
        self,
        *,
        exchange_id: str,
        symbols: list[str],
        config: dict,
        backfill_minutes: int = 0,
        exchange_factory: Callable[[], object] | None = None,
        backoff: Backoff | None = None,
        max_connection_age: float = timedelta(hours=23, minutes=30).total_seconds(),
        silence_timeout: float = 60.0,
        sleep=asyncio.sleep,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if exchange_factory is None:
            import ccxt.pro

            if exchange_id not in ccxt.pro.exchanges:
                raise ValueError(f"ccxt has no WebSocket client for exchange {exchange_id!r}")
            exchange_class = getattr(ccxt.pro, exchange_id)

            def exchange_factory():
                exchange = exchange_class({"enableRateLimit": True, **config})
                if isinstance(exchange.options.get("streamLimits"), dict):
                    exchange.options["streamLimits"] = dict.fromkeys(exchange.options["streamLimits"], 1)
                return exchange

        self.name = f"ccxt:{exchange_id}"
        self.symbols = symbols
        self.backfill_minutes = backfill_minutes
        self.exchange_factory = exchange_factory
        self.backoff = backoff or Backoff()
        self.max_connection_age = max_connection_age
        self.silence_timeout = silence_timeout
        self._sleep = sleep
        self._now = now
        self._monotonic = monotonic
        self.last_trade: dict[str, tuple[int, set[str]]] = {}
        self.filled_until: dict[str, int] = {}
        self.connections = 0
        self.healthy = False

    async def run(self, *, emit_tick: EmitTick, emit_candles: EmitCandles) -> None:
        attempt = 0
        while True:
            exchange = self.exchange_factory()
            self.connections += 1
            self.healthy = False
            try:
                await self._gap_fill(exchange, emit_candles)
                await self._stream(exchange, emit_tick)
            except PlannedReconnect:
                metrics.UPSTREAM_RECONNECTS.labels(self.name, "planned").inc()
                logger.info("marketdata.ccxt_planned_reconnect", exchange=self.name)
                attempt = 0
                continue
            except (ccxt.NetworkError, ccxt.ExchangeError, Silence) as exc:
                attempt = 1 if self.healthy else attempt + 1
                delay = self.backoff.delay(attempt)
                metrics.UPSTREAM_RECONNECTS.labels(self.name, type(exc).__name__).inc()
                logger.warning(
                    "marketdata.ccxt_disconnected",
                    exchange=self.name,
                    error=repr(exc),
                    attempt=attempt,
                    retry_in=round(delay, 2),
                )
                await self._sleep(delay)
            finally:
                await self._close(exchange)

    async def _close(self, exchange) -> None:
        try:
            await exchange.close()
        except Exception:  # closing a broken connection may fail too; the next one is what matters
            logger.debug("marketdata.ccxt_close_failed", exc_info=True)

    async def _stream(self, exchange, emit_tick: EmitTick) -> None:
        """Emit trades until the connection fails, goes silent, or is old enough for a planned reconnect."""
        queue: asyncio.Queue = asyncio.Queue()

        async def watch(symbol: str) -> None:
            try:
                while True:
                    queue.put_nowait(await exchange.watch_trades(symbol))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # handed to the loop below, which decides
                queue.put_nowait(exc)

        watchers = [asyncio.create_task(watch(symbol)) for symbol in self.symbols]
        opened = self._monotonic()
        try:
            while True:
                remaining = self.max_connection_age - (self._monotonic() - opened)
                if remaining <= 0:
                    raise PlannedReconnect
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that lands as
                    # the queue hands over an item, and a cancelled feed then streams on forever.
                    async with asyncio.timeout(min(self.silence_timeout, remaining)):
                        item = await queue.get()
                except TimeoutError:
                    if self._monotonic() - opened >= self.max_connection_age:
                        raise PlannedReconnect from None
                    raise Silence(f"no trade for {self.silence_timeout:g} s") from None
                if isinstance(item, BaseException):
                    raise item
                metrics.UPSTREAM_MESSAGES.labels(self.name).inc()
                self.healthy = True
                self._emit(item, emit_tick)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    def _emit(self, trades: list[dict], emit_tick: EmitTick) -> None:
        for trade in sorted(trades, key=lambda t: t["timestamp"] or 0):
            symbol, ms, trade_id = trade["symbol"], trade["timestamp"], str(trade.get("id") or "")
            if symbol not in self.filled_until or ms is None:
                continue
            if ms <= self.filled_until[symbol]:
                continue  # already inside the candles the gap fill stored
            last_ms, ids = self.last_trade.get(symbol, (0, set()))
            if ms < last_ms or (ms == last_ms and trade_id in ids):
                continue
            self.last_trade[symbol] = (ms, ids | {trade_id} if ms == last_ms else {trade_id})
            emit_tick(
                RawTick(
                    symbol=symbol,
                    price=_decimal(trade["price"]),
                    volume=_decimal(trade["amount"] or 0),
                    at=datetime.fromtimestamp(ms / 1000, tz=UTC),
                )
            )

    async def _gap_fill(self, exchange, emit_candles: EmitCandles) -> None:
        now_ms = int(self._now() * 1000)
        current_minute = minute_floor(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
        for symbol in list(self.symbols):
            try:
                await self._gap_fill_symbol(exchange, emit_candles, symbol, now_ms, current_minute)
            except ccxt.BadSymbol:
                # A configuration error, not a drop: retrying would not help.
                logger.error("marketdata.ccxt_unknown_symbol", exchange=self.name, symbol=symbol)
                self.symbols.remove(symbol)
        if not self.symbols:
            raise ValueError(
                f"{self.name} lists none of the instruments; check MARKET_EXCHANGE and the registry"
            )
        logger.info("marketdata.ccxt_gap_filled", exchange=self.name, symbols=len(self.symbols))

    async def _gap_fill_symbol(
        self, exchange, emit_candles: EmitCandles, symbol: str, now_ms: int, current_minute: datetime
    ) -> None:
        """The minutes since the last trade seen (or the backfill), from REST; the current one continues."""
        last_ms = self.last_trade.get(symbol, (None,))[0] or self.filled_until.get(symbol)
        since = now_ms - self.backfill_minutes * MINUTE_MS if last_ms is None else last_ms
        since -= since % MINUTE_MS
        bars: list[CandleBar] = []
        while True:
            metrics.UPSTREAM_REQUESTS.labels(self.name, "fetch_ohlcv").inc()
            rows = await exchange.fetch_ohlcv(symbol, "1m", since=since, limit=OHLCV_PAGE)
            bars += [bar_from_ohlcv(row) for row in rows]
            if len(rows) < OHLCV_PAGE or rows[-1][0] + MINUTE_MS > now_ms:
                break
            since = rows[-1][0] + MINUTE_MS
        closed = [b for b in bars if b.open_time < current_minute]
        current = next((b for b in bars if b.open_time == current_minute), None)
        emit_candles(symbol, closed, current=current)
        self.filled_until[symbol] = now_ms
