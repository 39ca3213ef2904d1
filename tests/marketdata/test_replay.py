"""Replay: the recorded candles become ticks that stay inside each candle and rebuild it exactly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from marketdata.feed.candles import CandleBuilder
from marketdata.feed.sources.clock import MarketClock
from marketdata.feed.sources.replay import ReplaySource, load_recording, recording_path, tick_path
from tests.marketdata.conftest import run_async

REPLAY_DIR = settings.MARKET_REPLAY_DIR


@pytest.fixture(scope="module")
def btc_usdt():
    path = recording_path(symbol="BTC/USDT", directory=REPLAY_DIR)
    if path is None:
        pytest.fail(f"the recorded market data is missing from {REPLAY_DIR} (MARKET_REPLAY_DIR)")
    return load_recording(path)


def test_the_recordings_are_found_by_symbol(btc_usdt):
    assert recording_path(symbol="BTC/USDC", directory=REPLAY_DIR).name.startswith("BTCUSDC_1m_")
    assert recording_path(symbol="ETH/USDT", directory=REPLAY_DIR) is None
    assert len(btc_usdt) == 30240
    assert btc_usdt[0].open_time == datetime(2023, 3, 1, tzinfo=UTC)
    assert btc_usdt[0].open == Decimal("23140.48")


def test_every_tick_lies_within_its_candle_and_candles_rebuild_exactly(btc_usdt):
    # Two days of real minutes, including the crash of March 10 and flat zero-volume minutes.
    minutes = btc_usdt[13000:15880]
    builder = CandleBuilder()
    rebuilt = []
    for bar in minutes:
        path = tick_path(bar, points=60, precision=2, seed=f"BTC/USDT|{bar.open_time.isoformat()}")
        assert len(path) == 60
        for offset, price, volume in path:
            assert bar.low <= price <= bar.high, (bar, price)
            assert volume >= 0
            closed = builder.add(
                "BTC/USDT", price=price, volume=volume, at=bar.open_time + timedelta(seconds=60 * offset)
            )
            if closed:
                rebuilt.append(closed)
    rebuilt.append(builder.live("BTC/USDT"))
    assert len(rebuilt) == len(minutes)
    for source, candle in zip(minutes, rebuilt, strict=True):
        assert (candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            source.open_time,
            source.open,
            source.high,
            source.low,
            source.close,
            source.volume,
        )


def test_paths_are_deterministic_per_symbol_and_minute(btc_usdt):
    bar = btc_usdt[42]
    first = tick_path(bar, points=30, precision=2, seed="BTC/USDT|x")
    assert first == tick_path(bar, points=30, precision=2, seed="BTC/USDT|x")
    assert first != tick_path(bar, points=30, precision=2, seed="BTC/USDC|x")


class FakeTime:
    """A clock whose sleep only moves time forward, so a replay runs instantly."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_replay_source_is_aligned_to_the_clock_and_starts_mid_minute(btc_usdt):
    start = datetime(2026, 1, 5, 12, 30, 45, tzinfo=UTC)  # 45 s into a minute
    fake = FakeTime(start.timestamp())
    clock = MarketClock(speed=1.0, now=fake.time, sleep=fake.sleep)
    recording = btc_usdt[:5]
    source = ReplaySource(
        recordings={"BTC/USDT": recording},
        precisions={"BTC/USDT": 2},
        clock=clock,
        ticks_per_minute=12,
        backfill_minutes=3,
        loops=1,
    )
    ticks, history = [], []

    async def replay():
        await source.run(
            emit_tick=ticks.append, emit_candles=lambda s, bars, current=None: history.extend(bars)
        )

    run_async(replay)

    minute = start.replace(second=0)
    index = int(minute.timestamp() // 60) % len(recording)
    # History: the three minutes before, each the recorded candle for its place in the loop, re-dated.
    assert [b.open_time for b in history] == [minute - timedelta(minutes=k) for k in (3, 2, 1)]
    assert history[-1].close == recording[(index - 1) % 5].close
    # The first minute's ticks before the start go out at once (time does not move for them), the rest
    # at their time: the candle is whole, and nothing waits for a minute that has passed.
    first_minute = [t for t in ticks if t.at < minute + timedelta(minutes=1)]
    assert len(first_minute) == 12
    assert first_minute[0].at == minute and first_minute[0].price == recording[index].open
    caught_up = [t for t in first_minute if t.at < start]
    assert len(caught_up) == 9  # offsets 0 .. 40 s of a 45 s-old minute, one every 5 s
    assert fake.now == pytest.approx(ticks[-1].at.timestamp())
    builder = CandleBuilder()
    closed = [c for t in ticks if (c := builder.add(t.symbol, price=t.price, volume=t.volume, at=t.at))]
    closed.append(builder.live("BTC/USDT"))
    assert [(c.open, c.high, c.low, c.close) for c in closed] == [
        (r.open, r.high, r.low, r.close) for r in (recording[(index + k) % 5] for k in range(5))
    ]


def test_faster_speed_plays_minutes_in_seconds(btc_usdt):
    fake = FakeTime(datetime(2026, 1, 5, 12, 30, tzinfo=UTC).timestamp())
    clock = MarketClock(speed=60.0, now=fake.time, sleep=fake.sleep)
    source = ReplaySource(
        recordings={"BTC/USDT": btc_usdt[:3]},
        precisions={"BTC/USDT": 2},
        clock=clock,
        ticks_per_minute=6,
        loops=1,
    )
    start = fake.now

    async def replay():
        await source.run(emit_tick=lambda t: None, emit_candles=lambda *a, **k: None)

    run_async(replay)
    # Three market minutes at 60x: under three seconds of wall time.
    assert 2.5 <= fake.now - start < 3.0


def test_a_takeover_in_the_next_minute_replays_from_the_previous_leaders_last_minute(btc_usdt):
    # The leader's last tick was 12:30:58; the standby starts at 12:31:00.7. Starting in its own minute it
    # would skip 12:30:59: it starts in the mark's minute instead, the minute's past ticks at once (the
    # publisher drops those up to the mark: the previous leader published them).
    start = datetime(2026, 1, 5, 12, 31, 0, 700000, tzinfo=UTC)
    fake = FakeTime(start.timestamp())
    source = ReplaySource(
        recordings={"BTC/USDT": btc_usdt[:5]},
        precisions={"BTC/USDT": 2},
        clock=MarketClock(speed=1.0, now=fake.time, sleep=fake.sleep),
        ticks_per_minute=60,
        loops=1,
    )
    source.resume_after = datetime(2026, 1, 5, 12, 30, 58, tzinfo=UTC)
    ticks = []

    async def replay():
        await source.run(emit_tick=ticks.append, emit_candles=lambda *a, **k: None)

    run_async(replay)
    seconds = [t.at for t in ticks]
    assert seconds[0] == datetime(2026, 1, 5, 12, 30, tzinfo=UTC)
    assert datetime(2026, 1, 5, 12, 30, 59, tzinfo=UTC) in seconds
    assert all(b - a == timedelta(seconds=1) for a, b in zip(seconds, seconds[1:], strict=False))
    # Nothing waited for a second that had passed.
    assert fake.now == pytest.approx(ticks[-1].at.timestamp())
