"""The live ccxt source, tested at the ccxt boundary: an exchange object answering like ccxt.pro does
(trade dicts, OHLCV rows of floats, ccxt's exception classes), no network."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt

from marketdata.feed.sources.exchange import Backoff, CcxtSource
from marketdata.models import Candle, Quote
from tests.marketdata.conftest import run_async
from tests.marketdata.test_feed import make_publisher

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def ms(minutes: float) -> int:
    return int((T + timedelta(minutes=minutes)).timestamp() * 1000)


def trade(
    trade_id: int, minutes: float, price: float, amount: float = 0.01, symbol: str = "BTC/USDT"
) -> dict:
    """A ccxt unified trade structure, as watch_trades returns it for Binance."""
    timestamp = ms(minutes)
    return {
        "info": {
            "e": "trade",
            "s": symbol.replace("/", ""),
            "t": trade_id,
            "p": f"{price:.2f}",
            "q": f"{amount:.5f}",
            "T": timestamp,
            "m": False,
        },
        "timestamp": timestamp,
        "datetime": datetime.fromtimestamp(timestamp / 1000, tz=UTC).isoformat().replace("+00:00", "Z"),
        "symbol": symbol,
        "id": str(trade_id),
        "order": None,
        "type": None,
        "side": "buy",
        "takerOrMaker": None,
        "price": price,
        "amount": amount,
        "cost": price * amount,
        "fee": None,
        "fees": [],
    }


class Venue:
    """What the exchange knows (its candles) and what happens to each connection we open."""

    def __init__(self, candles: list[list], scripts: list[list]) -> None:
        self.candles = candles  # ccxt OHLCV rows: [ms, open, high, low, close, volume]
        self.scripts = scripts  # per connection: trade batches or exceptions, in order
        self.clock = T.timestamp()
        self.opened = 0
        self.rest_calls: list[tuple[str, int]] = []
        self.closed = 0
        self.exhausted = asyncio.Event()

    def time(self) -> float:
        return self.clock

    def connect(self) -> FakeExchange:
        script = self.scripts[self.opened] if self.opened < len(self.scripts) else None
        self.opened += 1
        return FakeExchange(self, script)


class FakeExchange:
    id = "binance"

    def __init__(self, venue: Venue, script: list | None) -> None:
        self.venue, self.script = venue, list(script or [])

    async def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        self.venue.rest_calls.append((symbol, since))
        if self.script and isinstance(self.script[0], Exception) and getattr(self.script[0], "rest", False):
            raise self.script.pop(0)
        return [row for row in self.venue.candles if row[0] >= since][:limit]

    async def watch_trades(self, symbol, since=None, limit=None, params=None):
        if not self.script:
            if self.venue.opened >= len(self.venue.scripts):  # the last scripted connection has said it all
                self.venue.exhausted.set()
            await asyncio.Event().wait()  # an open connection with nothing to say
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step()
        return step

    async def close(self):
        self.venue.closed += 1


def rest_down() -> Exception:
    error = ccxt.ExchangeNotAvailable(
        "binance GET https://api.binance.com/api/v3/klines 503 Service Unavailable"
    )
    error.rest = True
    return error


def test_drops_reconnect_with_backoff_fill_the_gap_and_duplicate_no_candle(instruments, announced):
    # The exchange's own 1m candles for 12:00 .. 12:04 (12:04 in progress when we come back).
    venue = Venue(
        candles=[
            [ms(0), 100.0, 105.0, 99.0, 101.0, 1.5],
            [ms(1), 101.0, 102.0, 100.0, 102.0, 2.0],
            [ms(2), 102.0, 103.0, 101.5, 103.0, 0.5],
            [ms(3), 103.0, 104.0, 102.0, 103.5, 0.05],
            [ms(4), 103.5, 106.0, 103.5, 105.0, 0.03],
        ],
        scripts=[],
    )
    venue.candles_at_start = venue.candles[:3] + [[ms(3), 103.0, 103.0, 103.0, 103.0, 0.0]]
    full = venue.candles
    venue.candles = venue.candles_at_start
    venue.clock = (T + timedelta(minutes=3, seconds=1)).timestamp()

    def back_at_12_04_20():
        venue.candles = full
        venue.clock = (T + timedelta(minutes=4, seconds=20)).timestamp()
        raise ccxt.NetworkError("binance ping-pong keepalive missing on time")

    def drop_after_trade_6():
        venue.candles = [*full[:4], [ms(4), 103.5, 106.0, 103.5, 104.0, 0.04]]  # the exchange counted it too
        raise ccxt.NetworkError("connection reset")

    venue.scripts = [
        # 1st connection: two trades in 12:03, one in 12:04 (closes 12:03), then the line drops.
        [
            [trade(1, 3.1, 103.5), trade(2, 3.5, 104.0), trade(3, 3.9, 102.0)],
            [trade(4, 4.05, 103.5)],
            back_at_12_04_20,
        ],
        # 2nd: trades 4 and 5 were sent before we came back (in the REST candle already), 6 is new.
        [[trade(4, 4.05, 103.5), trade(5, 4.2, 106.0), trade(6, 4.4, 104.0)], drop_after_trade_6],
        # 3rd and 4th: the REST API is down too.
        [rest_down()],
        [rest_down()],
        # 5th: healthy; 12:05 begins and closes 12:04.
        [[trade(7, 5.01, 104.5)]],
    ]
    sleeps: list[float] = []

    async def no_wait(seconds):
        sleeps.append(seconds)

    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        source = CcxtSource(
            exchange_id="binance",
            symbols=["BTC/USDT"],
            config={},
            backfill_minutes=3,
            exchange_factory=venue.connect,
            backoff=Backoff(jitter=0),
            sleep=no_wait,
            now=venue.time,
        )
        pub_task = asyncio.create_task(publisher.run())
        src_task = asyncio.create_task(
            source.run(emit_tick=publisher.accept_tick, emit_candles=publisher.accept_candles)
        )
        await asyncio.wait_for(venue.exhausted.wait(), 10)
        src_task.cancel()
        await asyncio.gather(src_task, return_exceptions=True)
        publisher.stop()
        await pub_task

    run_async(scenario)

    assert venue.opened == 5 and venue.closed == 5
    # Backoff: 1 s after a healthy connection drops (twice), then 2 s and 4 s while it keeps failing.
    assert sleeps == [1.0, 1.0, 2.0, 4.0]
    rows = list(
        Candle.objects.filter(instrument=instruments["BTC/USDT"])
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume")
    )
    minutes = [r[0] for r in rows]
    assert minutes == [T + timedelta(minutes=m) for m in range(6)]  # one row per minute, none twice
    # 12:03 built live from trades 1-3 on top of the REST candle at connect time. 12:04: REST (which had
    # trades 4 and 5 we missed) plus trade 6 live, then REST again after later drops: trade 6 once.
    assert rows[3][1:] == (Decimal("103"), Decimal("104"), Decimal("102"), Decimal("102"), Decimal("0.03"))
    assert rows[4][1:] == (
        Decimal("103.5"),
        Decimal("106"),
        Decimal("103.5"),
        Decimal("104"),
        Decimal("0.04"),
    )
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("104.5")
    # Closed minutes announced once each and in order; the history loaded at start is not announced.
    assert [c.open_time for _, c in announced["candles"]] == [
        T + timedelta(minutes=3),
        T + timedelta(minutes=4),
    ]
    # REST: one call per symbol per (re)connect, never per user or per tick.
    assert len(venue.rest_calls) == 5


def test_planned_reconnect_before_the_exchange_24_hour_limit(instruments):
    venue = Venue(candles=[], scripts=[])
    monotonic = [0.0]

    def later(batch):
        def step():
            monotonic[0] += 3600 * 12  # each batch arrives 12 hours into the connection
            return batch

        return step

    venue.scripts = [
        [later([trade(1, 0.1, 100.0)]), later([trade(2, 0.2, 100.5)])],  # 24 h: must not reach the limit
        [[trade(3, 0.3, 101.0)]],
    ]
    sleeps = []

    async def no_wait(seconds):
        sleeps.append(seconds)

    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        source = CcxtSource(
            exchange_id="binance",
            symbols=["BTC/USDT"],
            config={},
            exchange_factory=venue.connect,
            sleep=no_wait,
            now=lambda: T.timestamp(),
            monotonic=lambda: monotonic[0],
        )
        task = asyncio.create_task(
            source.run(emit_tick=publisher.accept_tick, emit_candles=publisher.accept_candles)
        )
        await asyncio.wait_for(venue.exhausted.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.publish_due()

    run_async(scenario)
    assert venue.opened == 2  # reconnected after 23.5 h of connection age, at once
    assert sleeps == []
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("101")


def test_a_silent_connection_is_treated_as_dropped(instruments):
    venue = Venue(candles=[], scripts=[[], [[trade(1, 0.1, 100.0)]]])

    class Hanging(FakeExchange):
        async def watch_trades(self, symbol, since=None, limit=None, params=None):
            if self.venue.opened == 1:
                await asyncio.Event().wait()
            return await super().watch_trades(symbol)

    sleeps = []

    async def no_wait(seconds):
        sleeps.append(seconds)

    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        source = CcxtSource(
            exchange_id="binance",
            symbols=["BTC/USDT"],
            config={},
            exchange_factory=lambda: Hanging(
                venue, venue.scripts[venue.opened - 1] if venue.connect() else None
            ),
            sleep=no_wait,
            silence_timeout=0.1,
            backoff=Backoff(jitter=0),
            now=lambda: T.timestamp(),
        )
        task = asyncio.create_task(
            source.run(emit_tick=publisher.accept_tick, emit_candles=publisher.accept_candles)
        )
        await asyncio.wait_for(venue.exhausted.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.publish_due()

    run_async(scenario)
    assert sleeps == [1.0]
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("100")


def test_unknown_exchange_is_refused_clearly():
    import pytest

    with pytest.raises(ValueError, match="no WebSocket client for exchange 'nope'"):
        CcxtSource(exchange_id="nope", symbols=["BTC/USDT"], config={})


async def _until(condition, *, what: str, timeout: float = 15.0) -> None:
    """Poll `condition` until it holds; fail (naming `what`) if it does not within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_real_ccxt_client_against_binance_wire_format_survives_a_drop(instruments, announced):
    """The real ccxt.pro Binance client, over HTTP and WebSocket to a local server speaking Binance's
    formats: trades become quotes, a dropped stream reconnects and refills from REST."""
    from tests.marketdata.mock_binance import MockBinance

    async def scenario():
        mock = await MockBinance(
            prices={"BTC/USDT": 23000.0, "ETH/USDT": 1600.0}, trades_per_second=20
        ).start()
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", coalesce=0.05)
        source = CcxtSource(
            exchange_id="binance",
            symbols=["BTC/USDT", "ETH/USDT"],
            config=mock.ccxt_config(),
            backfill_minutes=5,
            backoff=Backoff(base=0.05, jitter=0),
        )
        pub_task = asyncio.create_task(publisher.run())
        src_task = asyncio.create_task(
            source.run(emit_tick=publisher.accept_tick, emit_candles=publisher.accept_candles)
        )
        try:
            # Streaming on one connection, both symbols refilled from REST, trades flowing.
            await _until(
                lambda: mock.ws_connections == 1 and mock.requests["klines"] == 2 and mock.trades_sent > 10,
                what="the first stream",
            )
            before_drop = mock.trades_sent
            await mock.drop_connections()
            await _until(
                lambda: mock.ws_connections >= 2 and mock.requests["klines"] >= 4
                and mock.trades_sent > before_drop + 10,
                what="the reconnection and its refill",
            )
        finally:
            src_task.cancel()
            await asyncio.gather(src_task, return_exceptions=True)
            publisher.stop()
            await pub_task
            await mock.stop()
        return mock, before_drop

    mock, before_drop = run_async(scenario)
    assert before_drop > 10
    assert mock.ws_connections == 2  # one stream for both symbols, and one more after the drop
    assert mock.requests["klines"] == 4  # one refill per symbol per connection
    prices = dict(Quote.objects.values_list("instrument__symbol", "price"))
    assert set(prices) == {"BTC/USDT", "ETH/USDT"}
    assert Decimal("22900") < prices["BTC/USDT"] < Decimal("23100")
    minutes = list(
        Candle.objects.filter(instrument=instruments["BTC/USDT"]).values_list("open_time", flat=True)
    )
    assert len(minutes) == len(set(minutes)) >= 5


def test_a_symbol_the_exchange_does_not_list_is_dropped_not_retried(instruments):
    venue = Venue(candles=[], scripts=[[[trade(1, 0.1, 100.0)]]])

    class NoEth(FakeExchange):
        async def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
            if symbol == "ETH/USDT":
                raise ccxt.BadSymbol("binance does not have market symbol ETH/USDT")
            return await super().fetch_ohlcv(symbol, timeframe, since, limit, params)

    sleeps = []

    async def no_wait(seconds):
        sleeps.append(seconds)

    async def run():
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", coalesce=0)

        def connect():
            venue.opened += 1
            return NoEth(venue, venue.scripts[0])

        source = CcxtSource(
            exchange_id="binance",
            symbols=["BTC/USDT", "ETH/USDT"],
            config={},
            exchange_factory=connect,
            sleep=no_wait,
            now=lambda: T.timestamp(),
        )
        task = asyncio.create_task(
            source.run(emit_tick=publisher.accept_tick, emit_candles=publisher.accept_candles)
        )
        await asyncio.wait_for(venue.exhausted.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.publish_due()
        return source

    source = run_async(run)
    assert source.symbols == ["BTC/USDT"] and venue.opened == 1 and sleeps == []
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("100")
