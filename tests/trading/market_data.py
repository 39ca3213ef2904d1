"""The real March 2023 BTC/USDT one-minute candles (shared/data/market), read at test time."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.conf import settings


@dataclass
class Bar:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@lru_cache(maxsize=2)
def minute_bars(pair: str = "BTCUSDT") -> tuple[Bar, ...]:
    [path] = sorted((settings.SHARED_DATA_DIR / "market").glob(f"{pair}_1m_*.csv"))
    with path.open() as handle:
        return tuple(
            Bar(
                open_time=datetime.fromisoformat(row["open_time"]),
                open=Decimal(row["open"]),
                high=Decimal(row["high"]),
                low=Decimal(row["low"]),
                close=Decimal(row["close"]),
                volume=Decimal(row["volume"]),
            )
            for row in csv.DictReader(handle)
        )


def hourly_bars(pair: str = "BTCUSDT") -> list[Bar]:
    hours: dict[datetime, Bar] = {}
    for bar in minute_bars(pair):
        hour = bar.open_time.replace(minute=0, second=0)
        current = hours.get(hour)
        if current is None:
            hours[hour] = Bar(hour, bar.open, bar.high, bar.low, bar.close, bar.volume)
        else:
            current.high = max(current.high, bar.high)
            current.low = min(current.low, bar.low)
            current.close = bar.close
            current.volume += bar.volume
    return list(hours.values())
