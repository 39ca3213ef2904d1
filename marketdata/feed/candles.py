"""One-minute candles built from ticks, the same way for every source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from marketdata.types import CandleBar


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@dataclass(slots=True)
class LiveCandle:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def bar(self) -> CandleBar:
        return CandleBar(
            open_time=self.open_time,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
        )


class CandleBuilder:
    """The current minute per symbol. `add` returns the candle a tick closed (the previous minute), if any.

    A tick older than the current minute (late or duplicated after a reconnect) never reopens a closed
    candle: it is ignored here, so a minute is closed and announced once.
    """

    def __init__(self) -> None:
        self.current: dict[str, LiveCandle] = {}

    def add(self, symbol: str, *, price: Decimal, volume: Decimal, at: datetime) -> CandleBar | None:
        minute = minute_floor(at)
        live = self.current.get(symbol)
        if live is not None and minute < live.open_time:
            return None
        if live is not None and minute == live.open_time:
            live.high = max(live.high, price)
            live.low = min(live.low, price)
            live.close = price
            live.volume += volume
            return None
        self.current[symbol] = LiveCandle(minute, price, price, price, price, volume)
        return live.bar() if live is not None else None

    def seed(self, symbol: str, bar: CandleBar) -> None:
        """Continue from an authoritative candle (a REST gap fill of the current minute)."""
        live = self.current.get(symbol)
        if live is None or bar.open_time >= live.open_time:
            self.current[symbol] = LiveCandle(
                bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume
            )

    def live(self, symbol: str) -> CandleBar | None:
        live = self.current.get(symbol)
        return live.bar() if live is not None else None
