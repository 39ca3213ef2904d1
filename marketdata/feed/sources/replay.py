"""Replay of recorded one-minute candles as a live market.

Each candle becomes a plausible intra-minute tick path: it starts at the open, touches the high and the
low, ends at the close, never leaves [low, high], and its volumes add up to the candle's volume, so the
candles rebuilt from the ticks are the recorded ones. Paths are seeded by (symbol, minute): a restart
replays the same ticks. The recording is aligned to the wall clock (minute index = minutes since the
epoch modulo its length) and loops.
"""

from __future__ import annotations

import csv
import heapq
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from marketdata.feed.sources.base import EmitCandles, EmitTick, RawTick
from marketdata.feed.sources.clock import MarketClock
from marketdata.types import CandleBar

VOLUME_QUANTUM = Decimal("0.00000001")
MIN_POINTS = 4


def recording_path(*, symbol: str, directory: Path) -> Path | None:
    """`BTC/USDT` -> the first `BTCUSDT_1m_*.csv` in the directory."""
    matches = sorted(Path(directory).glob(f"{symbol.replace('/', '')}_1m_*.csv"))
    return matches[0] if matches else None


def load_recording(path: Path) -> list[CandleBar]:
    with open(path, newline="") as handle:
        return [
            CandleBar(
                open_time=datetime.fromisoformat(row["open_time"]),
                open=Decimal(row["open"]),
                high=Decimal(row["high"]),
                low=Decimal(row["low"]),
                close=Decimal(row["close"]),
                volume=Decimal(row["volume"]),
            )
            for row in csv.DictReader(handle)
        ]


def _grid_step(bar: CandleBar, precision: int) -> Decimal:
    places = max(precision, *(-v.as_tuple().exponent for v in (bar.open, bar.high, bar.low, bar.close)))
    return Decimal(1).scaleb(-places)


def _split_volume(volume: Decimal, parts: int, rng: random.Random) -> list[Decimal]:
    weights = [rng.randint(1, 10) for _ in range(parts)]
    total = sum(weights)
    shares = [(volume * w / total).quantize(VOLUME_QUANTUM, rounding=ROUND_DOWN) for w in weights[:-1]]
    return [*shares, volume - sum(shares, Decimal(0))]


def tick_path(
    bar: CandleBar, *, points: int, precision: int, seed: str
) -> list[tuple[float, Decimal, Decimal]]:
    """`points` ticks (offset in the minute as a fraction in [0, 1), price, volume) reproducing `bar`."""
    points = max(points, MIN_POINTS)
    rng = random.Random(seed)
    step = _grid_step(bar, precision)
    span = int((bar.high - bar.low) / step)
    to_units = lambda price: int((price - bar.low) / step)  # noqa: E731 - prices are on the grid
    # Waypoints (index, units): open first, close last, high and low somewhere between, in an order that
    # suits the candle's colour most of the time.
    first, second = sorted(rng.sample(range(1, points - 1), 2))
    low_first = (bar.close >= bar.open) != (rng.random() < 0.25)
    extremes = [(first, 0), (second, span)] if low_first else [(first, span), (second, 0)]
    waypoints = [(0, to_units(bar.open)), *extremes, (points - 1, to_units(bar.close))]
    units = [0] * points
    for (i0, u0), (i1, u1) in zip(waypoints, waypoints[1:], strict=False):
        units[i0], units[i1] = u0, u1
        wobble = max(1, span // 8)
        for i in range(i0 + 1, i1):
            straight = u0 + (u1 - u0) * (i - i0) // (i1 - i0)
            units[i] = min(span, max(0, straight + rng.randint(-wobble, wobble)))
    volumes = _split_volume(bar.volume, points, rng)
    return [(i / points, bar.low + units[i] * step, volumes[i]) for i in range(points)]


class ReplaySource:
    name = "replay"

    def __init__(
        self,
        *,
        recordings: dict[str, Sequence[CandleBar]],
        precisions: dict[str, int],
        clock: MarketClock,
        ticks_per_minute: int = 60,
        backfill_minutes: int = 0,
        loops: int | None = None,
    ) -> None:
        if not recordings:
            raise ValueError("nothing to replay")
        self.recordings = recordings
        self.precisions = precisions
        self.clock = clock
        self.ticks_per_minute = ticks_per_minute
        self.backfill_minutes = backfill_minutes
        self.loops = loops
        # After a failover, the previous leader's last tick: the replay starts in its minute, not the
        # current one, so a takeover across a minute boundary still fills the seconds in between.
        self.resume_after: datetime | None = None

    def bar_at(self, symbol: str, minute: datetime) -> CandleBar:
        """The recorded candle replayed for a market minute, re-dated to it."""
        recording = self.recordings[symbol]
        index = int(minute.timestamp() // 60) % len(recording)
        bar = recording[index]
        return CandleBar(minute, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def ticks_for(self, symbol: str, minute: datetime) -> list[RawTick]:
        bar = self.bar_at(symbol, minute)
        path = tick_path(
            bar,
            points=self.ticks_per_minute,
            precision=self.precisions.get(symbol, 2),
            seed=f"{symbol}|{minute.isoformat()}",
        )
        return [
            RawTick(
                symbol=symbol,
                price=price,
                volume=volume,
                at=minute + timedelta(seconds=60 * offset),
            )
            for offset, price, volume in path
        ]

    async def run(self, *, emit_tick: EmitTick, emit_candles: EmitCandles) -> None:
        start = self.clock.start_minute()
        if self.resume_after is not None:
            start = min(start, self.resume_after.replace(second=0, microsecond=0))
        if self.backfill_minutes:
            for symbol in self.recordings:
                history = [
                    self.bar_at(symbol, start - timedelta(minutes=k))
                    for k in range(self.backfill_minutes, 0, -1)
                ]
                emit_candles(symbol, history)
        # The first minute has partly passed: its ticks so far go out at once (like a gap fill, so the
        # candle is whole), the rest at their time.
        total = None if self.loops is None else self.loops * max(len(r) for r in self.recordings.values())
        minute_index = 0
        while total is None or minute_index < total:
            minute = start + timedelta(minutes=minute_index)
            ticks = heapq.merge(
                *(self.ticks_for(symbol, minute) for symbol in self.recordings),
                key=lambda tick: tick.at,
            )
            for tick in ticks:
                await self.clock.sleep_until(tick.at)
                emit_tick(tick)
            minute_index += 1
