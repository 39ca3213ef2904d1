"""Where the signal engine reads its candles: one interface, two sources.

`StoredCandles` is the live source (`marketdata.selectors.candle_list`); `MemoryCandles` holds one pair's
one-minute candles in memory (a recording, or a range of stored candles) and aggregates them exactly as
`candle_list` does (buckets of `date_bin(step, open_time, 2000-01-03 00:00 UTC)`, open of the first minute,
highest high, lowest low, close of the last minute, summed volume; a bucket without candles is absent). The
replay (trading/tracker/replay.py) drives the same decision code as the live engine with the memory source.

Both answer "the newest `limit` bars whose minutes opened before `end`": the engine asks as of the end of
the minute that just closed, so a minute that opened since then is never read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from marketdata.selectors import TIMEFRAMES, candle_list
from marketdata.types import CandleBar

BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class CandleSource(Protocol):
    def bars(self, *, symbol: str, timeframe: str, limit: int, end: datetime) -> list[CandleBar]: ...


class StoredCandles:
    """The stored candles (the live engine's source)."""

    def bars(self, *, symbol: str, timeframe: str, limit: int, end: datetime) -> list[CandleBar]:
        return candle_list(symbol=symbol, timeframe=timeframe, limit=limit, end=end)


def bucket_start(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - BUCKET_ORIGIN) % step


class MemoryCandles:
    """One pair's one-minute candles (oldest first), aggregated on request like `candle_list`."""

    def __init__(self, *, symbol: str, minutes: Sequence[CandleBar]) -> None:
        self.symbol = symbol
        self.minutes = list(minutes)
        self.times = [bar.open_time for bar in self.minutes]
        self._complete: dict[tuple[timedelta, datetime], CandleBar] = {}

    def __len__(self) -> int:
        return len(self.minutes)

    def bars(self, *, symbol: str, timeframe: str, limit: int, end: datetime) -> list[CandleBar]:
        if symbol != self.symbol:
            raise ValueError(f"This source holds {self.symbol}, not {symbol}.")
        stop = bisect_left(self.times, end)  # minutes [0, stop) opened before `end`
        if stop == 0:
            return []
        if timeframe == "1m":
            return self.minutes[max(0, stop - limit):stop]
        step = TIMEFRAMES[timeframe]
        latest = self.times[stop - 1]
        last_bucket = bucket_start(latest, step)
        first = last_bucket - step * (limit - 1)
        out: list[CandleBar] = []
        bucket = first
        while bucket < last_bucket:
            bar = self._bucket(step, bucket, until=bucket + step)
            if bar is not None:
                out.append(bar)
            bucket += step
        partial = self._aggregate(last_bucket, bisect_left(self.times, last_bucket), stop)
        if partial is not None:
            out.append(partial)
        return out[-limit:]

    def _bucket(self, step: timedelta, start: datetime, *, until: datetime) -> CandleBar | None:
        key = (step, start)
        if key not in self._complete:
            bar = self._aggregate(start, bisect_left(self.times, start), bisect_left(self.times, until))
            if bar is None:
                return None
            self._complete[key] = bar
        return self._complete[key]

    def _aggregate(self, open_time: datetime, lo: int, hi: int) -> CandleBar | None:
        if lo >= hi:
            return None
        group = self.minutes[lo:hi]
        return CandleBar(
            open_time=open_time,
            open=group[0].open,
            high=max(bar.high for bar in group),
            low=min(bar.low for bar in group),
            close=group[-1].close,
            volume=sum((bar.volume for bar in group), Decimal(0)),
        )
