"""The simulated market: prices on the instrument's grid, consistent candles, history only where missing."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketdata.feed.candles import CandleBuilder
from marketdata.feed.sources.clock import MarketClock
from marketdata.feed.sources.simulated import SimulatedSource
from tests.marketdata.conftest import run_async
from tests.marketdata.test_replay import FakeTime

START = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)


def run_for(source: SimulatedSource, fake: FakeTime, ticks_wanted: int):
    ticks, history = [], {}

    def emit(tick):
        ticks.append(tick)
        if len(ticks) >= ticks_wanted:
            raise asyncio.CancelledError

    async def go():
        with contextlib.suppress(asyncio.CancelledError):
            await source.run(
                emit_tick=emit, emit_candles=lambda s, bars, current=None: history.setdefault(s, bars)
            )

    run_async(go)
    return ticks, history


def test_simulated_prices_are_on_the_grid_and_history_fills_only_the_gap():
    fake = FakeTime(START.timestamp())
    clock = MarketClock(speed=1.0, now=fake.time, sleep=fake.sleep)
    last_stored = START.replace(second=0) - timedelta(minutes=10)
    source = SimulatedSource(
        start_prices={"ETH/BTC": Decimal("0.06935"), "SOL/USDT": Decimal("22.45")},
        precisions={"ETH/BTC": 5, "SOL/USDT": 2},
        notionals={"ETH/BTC": Decimal("0.0001"), "SOL/USDT": Decimal("10")},
        clock=clock,
        ticks_per_minute=60,
        history_from={"ETH/BTC": last_stored, "SOL/USDT": None},
        backfill_minutes=120,
        seed=7,
    )
    ticks, history = run_for(source, fake, 2 * 600)

    # ETH/BTC had candles up to 10 minutes ago: only the 9 missing minutes; SOL had none: two hours.
    assert [b.open_time for b in history["ETH/BTC"]] == [
        last_stored + timedelta(minutes=k) for k in range(1, 10)
    ]
    assert len(history["SOL/USDT"]) == 120
    for bars in history.values():
        for bar in bars:
            assert (
                bar.low <= min(bar.open, bar.close)
                and max(bar.open, bar.close) <= bar.high
                and bar.volume > 0
            )
    eth = [t for t in ticks if t.symbol == "ETH/BTC"]
    sol = [t for t in ticks if t.symbol == "SOL/USDT"]
    assert len(eth) == len(sol) == 600
    assert all(t.price == t.price.quantize(Decimal("0.00001")) and t.price > 0 for t in eth)
    assert all(t.price == t.price.quantize(Decimal("0.01")) and t.price > 0 for t in sol)
    assert len({t.price for t in sol}) > 3  # it moves, a cent at a time
    # Ten minutes of a calm-to-turbulent walk stays within a plausible band, and ticks are a second apart.
    assert Decimal("15") < min(t.price for t in sol) and max(t.price for t in sol) < Decimal("30")
    assert sol[1].at - sol[0].at == timedelta(seconds=1)
    builder = CandleBuilder()
    closed = [c for t in sol if (c := builder.add(t.symbol, price=t.price, volume=t.volume, at=t.at))]
    assert len(closed) == 10
