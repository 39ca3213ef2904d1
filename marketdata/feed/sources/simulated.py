"""A generated market for symbols without a recording: a random walk whose volatility and drift switch
between regimes (calm, trending up, trending down, turbulent) every so often. Prices are Decimal on the
instrument's price grid; the random draws only decide the steps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from marketdata.feed.sources.base import EmitCandles, EmitTick, RawTick
from marketdata.feed.sources.clock import MarketClock
from marketdata.types import CandleBar


@dataclass(frozen=True)
class Regime:
    name: str
    drift: Decimal  # per second, as a fraction of the price
    volatility: Decimal  # per square root of a second, as a fraction of the price


# About 40% to 120% annualised volatility; a trend moves the price some 2% a day.
REGIMES = [
    Regime("calm", Decimal("0"), Decimal("0.00007")),
    Regime("bullish", Decimal("0.00000025"), Decimal("0.0001")),
    Regime("bearish", Decimal("-0.00000025"), Decimal("0.0001")),
    Regime("turbulent", Decimal("0"), Decimal("0.0002")),
]
REGIME_SWITCH_SECONDS = 1800  # a regime lasts half an hour on average
BACKFILL_STEPS_PER_MINUTE = 4


@dataclass
class Walk:
    symbol: str
    level: Decimal  # the walk itself, finer than the price grid so small steps add up
    quantum: Decimal
    rng: random.Random
    notional: Decimal  # the instrument's minimum order: the unit of simulated trading activity
    regime: Regime = REGIMES[0]

    @property
    def price(self) -> Decimal:
        return max(self.quantum, self.level.quantize(self.quantum, rounding=ROUND_HALF_EVEN))

    def step(self, seconds: Decimal) -> Decimal:
        """Move by `seconds` worth of the current regime's drift and volatility; the price on the grid."""
        if self.rng.random() < float(seconds) / REGIME_SWITCH_SECONDS:
            self.regime = self.rng.choice(REGIMES)
        shock = Decimal(repr(round(self.rng.gauss(0, 1), 6)))
        moved = self.level * (
            1 + self.regime.drift * seconds + self.regime.volatility * seconds.sqrt() * shock
        )
        self.level = max(self.quantum, moved.quantize(self.quantum / 10_000))
        return self.price

    def volume(self, seconds: Decimal) -> Decimal:
        """Traded volume (base currency): between 1 and 20 minimum orders a second."""
        notional = self.notional * self.rng.randint(1, 20) * seconds
        return (notional / self.price).quantize(Decimal("0.00000001"))

    def minute_bar(self, minute: datetime) -> CandleBar:
        seconds = Decimal(60 // BACKFILL_STEPS_PER_MINUTE)
        opening = self.price
        prices = [self.step(seconds) for _ in range(BACKFILL_STEPS_PER_MINUTE)]
        volume = sum((self.volume(seconds) for _ in range(BACKFILL_STEPS_PER_MINUTE)), Decimal(0))
        return CandleBar(minute, opening, max(opening, *prices), min(opening, *prices), prices[-1], volume)


class SimulatedSource:
    name = "simulated"

    def __init__(
        self,
        *,
        start_prices: dict[str, Decimal],
        precisions: dict[str, int],
        notionals: dict[str, Decimal] | None = None,
        clock: MarketClock,
        ticks_per_minute: int = 60,
        history_from: dict[str, datetime | None] | None = None,
        backfill_minutes: int = 0,
        seed: int | None = None,
    ) -> None:
        rng = random.Random(seed)
        self.walks = {
            symbol: Walk(
                symbol=symbol,
                level=price,
                quantum=Decimal(1).scaleb(-precisions.get(symbol, 2)),
                rng=random.Random(rng.random()),
                notional=(notionals or {}).get(symbol, Decimal(10)),
            )
            for symbol, price in start_prices.items()
        }
        self.clock = clock
        self.ticks_per_minute = ticks_per_minute
        self.history_from = history_from or {}
        self.backfill_minutes = backfill_minutes

    def _backfill(self, emit_candles: EmitCandles, start: datetime) -> None:
        """Generated history up to now, from the last stored candle (or `backfill_minutes` back)."""
        earliest = start - timedelta(minutes=self.backfill_minutes)
        for symbol, walk in self.walks.items():
            last = self.history_from.get(symbol)
            first = earliest if last is None else max(earliest, last + timedelta(minutes=1))
            minutes = int((start - first).total_seconds() // 60)
            if minutes > 0:
                emit_candles(
                    symbol,
                    [walk.minute_bar(first + timedelta(minutes=k)) for k in range(minutes)],
                )

    async def run(self, *, emit_tick: EmitTick, emit_candles: EmitCandles) -> None:
        self._backfill(emit_candles, self.clock.start_minute())
        interval = timedelta(seconds=60 / self.ticks_per_minute)
        seconds = Decimal(60) / self.ticks_per_minute
        at = self.clock.market_start
        while True:
            for walk in self.walks.values():
                emit_tick(
                    RawTick(symbol=walk.symbol, price=walk.step(seconds), volume=walk.volume(seconds), at=at)
                )
            at += interval
            await self.clock.sleep_until(at)
