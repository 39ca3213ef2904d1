"""The publisher: coalesced, one message per symbol on the channel layer, stored in one transaction,
candle closes and the tick stream for the other apps, no duplicated candles, stale and recovered."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.feed.publisher import Publisher
from marketdata.feed.sources.base import RawTick
from marketdata.models import Candle, Quote, Tick
from marketdata.selectors import quote_latest_map
from marketdata.types import CandleBar
from tests.marketdata.conftest import Listener, run_async

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def tick(symbol: str, price: str, seconds: float, volume: str = "0.5") -> RawTick:
    return RawTick(
        symbol=symbol, price=Decimal(price), volume=Decimal(volume), at=T0 + timedelta(seconds=seconds)
    )


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_publisher(instruments, *symbols, coalesce=0.25, now=time.monotonic) -> Publisher:
    from channels.layers import get_channel_layer

    return Publisher(
        instruments=[instruments[s] for s in symbols],
        source_name="replay",
        channel_layer=get_channel_layer(),
        coalesce_seconds=coalesce,
        now=now,
    )


def test_one_coalesced_message_per_symbol_then_stored_and_signalled(instruments, announced):
    async def scenario():
        listener = await Listener.join("market.BTC-USDT", "market.all")
        eth_listener = await Listener.join("market.ETH-USDT")
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT")
        for i, price in enumerate(["23100.00", "23120.50", "23090.25", "23150.00"]):
            publisher.accept_tick(tick("BTC/USDT", price, 1 + i))
        started = time.monotonic()
        await publisher.publish_due()
        # Two more ticks inside the coalescing interval: published once, at its end, with the last price.
        publisher.accept_tick(tick("BTC/USDT", "23160.00", 6))
        publisher.accept_tick(tick("BTC/USDT", "23155.10", 7))
        await publisher.publish_due()
        waited = time.monotonic() - started
        messages = await listener.drain()
        return messages[:2], messages[2:], waited, await eth_listener.drain()

    first, second, waited, eth_messages = run_async(scenario)

    # Four ticks, one publish: once to market.BTC-USDT and once to market.all.
    assert [m["data"]["price"] for m in first] == ["23150", "23150"]
    assert first[0]["seq"] == first[1]["seq"]
    assert 'id="q-BTC-USDT-price"' in first[0]["html"]["row"]
    assert ">23,150.00<" in first[0]["html"]["row"]
    assert "hx-swap-oob" in first[0]["html"]["ticker"]
    assert first[0]["data"]["candle"] == {
        "t": int(T0.timestamp()),
        "o": "23100",
        "h": "23150",
        "l": "23090.25",
        "c": "23150",
        "v": "2",
    }
    assert [m["data"]["price"] for m in second] == ["23155.1", "23155.1"]
    assert second[0]["data"]["previous_price"] == "23150"
    assert second[0]["seq"] > first[0]["seq"]
    assert waited >= 0.25
    assert eth_messages == []

    quote = Quote.objects.get(instrument=instruments["BTC/USDT"])
    assert (quote.price, quote.at, quote.source) == (Decimal("23155.1"), T0 + timedelta(seconds=7), "replay")
    assert Tick.objects.filter(instrument=instruments["BTC/USDT"]).count() == 6
    candle = Candle.objects.get(instrument=instruments["BTC/USDT"])
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        Decimal("23100"),
        Decimal("23160"),
        Decimal("23090.25"),
        Decimal("23155.1"),
        Decimal("3.0"),
    )
    assert quote_latest_map(symbols=["BTC/USDT"])["BTC/USDT"].stale is False

    events = [e for batch in announced["ticks"] for e in batch]
    assert [(e.symbol, e.price, e.previous_price) for e in events] == [
        ("BTC/USDT", Decimal("23150.00"), None),
        ("BTC/USDT", Decimal("23155.10"), Decimal("23150.00")),
    ]
    assert announced["candles"] == []


def test_a_new_minute_closes_the_candle_once(instruments, announced):
    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        for seconds, price in [(5, "100"), (20, "104"), (40, "98"), (59, "101"), (61, "102"), (75, "103")]:
            publisher.accept_tick(tick("BTC/USDT", price, seconds))
            await publisher.publish_due()

    run_async(scenario)
    assert announced["candles"] == [
        (
            "BTC/USDT",
            CandleBar(T0, Decimal("100"), Decimal("104"), Decimal("98"), Decimal("101"), Decimal("2.0")),
        )
    ]
    rows = list(
        Candle.objects.filter(instrument=instruments["BTC/USDT"]).values_list("open_time", "open", "close")
    )
    assert rows == [
        (T0, Decimal("100"), Decimal("101")),
        (T0 + timedelta(minutes=1), Decimal("102"), Decimal("103")),
    ]


def test_replaying_the_same_minutes_again_duplicates_no_candle(instruments, announced):
    ticks = [tick("BTC/USDT", str(100 + i % 7), i * 10) for i in range(20)]  # a bit over three minutes

    async def feed_once():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        for t in ticks:
            publisher.accept_tick(t)
            await publisher.publish_due()

    run_async(feed_once)
    before = list(
        Candle.objects.order_by("open_time").values_list(
            "open_time", "open", "high", "low", "close", "volume"
        )
    )
    run_async(feed_once)  # the feed restarts and the source resends the same minutes
    after = list(
        Candle.objects.order_by("open_time").values_list(
            "open_time", "open", "high", "low", "close", "volume"
        )
    )
    assert len(before) == 4
    assert after == before


def test_late_tick_for_a_closed_minute_does_not_reopen_it(instruments, announced):
    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        for t in [tick("BTC/USDT", "100", 10), tick("BTC/USDT", "101", 65), tick("BTC/USDT", "500", 30)]:
            publisher.accept_tick(t)
            await publisher.publish_due()

    run_async(scenario)
    assert Candle.objects.get(open_time=T0).high == Decimal("100")
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("101")
    assert len(announced["candles"]) == 1


def test_silent_symbol_goes_stale_on_every_page_and_recovers(instruments, announced):
    clock = FakeMonotonic()

    async def scenario():
        listener = await Listener.join("market.all")
        publisher = make_publisher(instruments, "BTC/USDT", "ETH/USDT", now=clock)
        publisher.accept_tick(tick("BTC/USDT", "23000", 1))
        await publisher.publish_due()
        live = await listener.drain()
        clock.now += 10
        quiet = await publisher.mark_stale()
        clock.now += 21  # 31 s of silence, threshold 30 s
        went_stale = await publisher.mark_stale()
        stale_messages = await listener.drain()
        again = await publisher.mark_stale()
        publisher.accept_tick(tick("BTC/USDT", "23010", 40))
        await publisher.publish_due()
        recovered = await listener.drain()
        return live, quiet, went_stale, stale_messages, again, recovered

    live, quiet, went_stale, stale_messages, again, recovered = run_async(scenario)
    assert live[0]["data"]["stale"] is False and " hidden" in live[0]["html"]["row"]
    assert quiet == []
    assert sorted(went_stale) == ["BTC/USDT", "ETH/USDT"]
    # ETH never had a price, so there is nothing to show as stale; BTC's pages are told.
    assert [m["symbol"] for m in stale_messages] == ["BTC/USDT"]
    stale = stale_messages[0]
    assert stale["data"]["stale"] is True and stale["data"]["price"] == "23000"
    assert 'id="q-BTC-USDT-state"' in stale["html"]["row"] and " hidden" not in stale["html"]["row"]
    assert ">Stale</span>" in stale["html"]["ticker"]
    assert again == []  # reported once
    assert recovered[0]["data"]["stale"] is False and recovered[0]["data"]["price"] == "23010"
    assert recovered[0]["seq"] > stale["seq"]


def test_receiver_errors_do_not_stop_the_feed(instruments):
    from marketdata.events import candle_closed

    def broken(sender, symbol, candle, **kwargs):
        raise RuntimeError("a bug in another app")

    candle_closed.connect(broken, dispatch_uid="test.broken")
    try:

        async def scenario():
            publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
            publisher.accept_tick(tick("BTC/USDT", "1", 1))
            await publisher.publish_due()
            publisher.accept_tick(tick("BTC/USDT", "2", 62))  # closes the first minute: the receiver raises
            await publisher.publish_due()
            publisher.accept_tick(tick("BTC/USDT", "3", 63))
            await publisher.publish_due()

        run_async(scenario)
    finally:
        candle_closed.disconnect(dispatch_uid="test.broken")
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("3")


def test_batches_the_tick_stream_could_not_take_are_appended_later_in_order(instruments, announced, monkeypatch):
    import redis

    from marketdata.feed import publisher as publisher_module

    append, attempts = publisher_module.tick_batches_append, []

    def redis_restarting_once(batches):
        attempts.append(len(batches))
        if len(attempts) == 1:
            raise redis.ConnectionError("Redis is restarting")
        append(batches)

    monkeypatch.setattr(publisher_module, "tick_batches_append", redis_restarting_once)

    async def scenario():
        publisher = make_publisher(instruments, "BTC/USDT", coalesce=0)
        publisher.accept_tick(tick("BTC/USDT", "1", 1))
        with pytest.raises(redis.ConnectionError):
            await publisher.publish_due()  # the feed's loop logs it and carries on
        publisher.accept_tick(tick("BTC/USDT", "2", 2))
        await publisher.publish_due()

    run_async(scenario)
    assert Quote.objects.get(instrument=instruments["BTC/USDT"]).price == Decimal("2")
    assert attempts == [1, 2]  # the kept batch, then the new one, in one round trip
    assert [[(e.price, e.previous_price) for e in batch] for batch in announced["ticks"]] == [
        [(Decimal("1"), None)],
        [(Decimal("2"), Decimal("1"))],
    ]


@pytest.mark.parametrize("coalesce", [0.25])
def test_symbols_without_instrument_are_ignored(instruments, coalesce):
    publisher = make_publisher(instruments, "BTC/USDT", coalesce=coalesce)
    publisher.accept_tick(tick("DOGE/USDT", "1", 1))
    assert not any(s.dirty for s in publisher.states.values())
