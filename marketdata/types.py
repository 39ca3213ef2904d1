"""The value objects market data hands to the rest of Nexus. Frozen, Decimal, timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

CHANGE_PCT_PLACES = Decimal("0.01")


def change_pct(*, price: Decimal, reference: Decimal | None) -> Decimal | None:
    """The move from `reference` (the price 24 hours ago) to `price`, in percent."""
    if not reference:
        return None
    return ((price - reference) / reference * 100).quantize(CHANGE_PCT_PLACES)


@dataclass(frozen=True, slots=True)
class QuoteSnapshot:
    """The latest quote of one instrument as a reader sees it now.

    `stale` is true when the symbol has been silent for longer than its instrument's threshold
    (`Instrument.stale_after_seconds`); show it to the user and do not trade on it.
    """

    symbol: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    change_pct: Decimal | None
    updated_at: datetime
    stale: bool
    volume_24h: Decimal | None = None
    open_24h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TickEvent:
    """One coalesced price change of one symbol, as published by the feed."""

    symbol: str
    price: Decimal
    previous_price: Decimal | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CandleBar:
    """One OHLCV bar; `open_time` is the start of its interval (UTC)."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


# A closed one-minute candle, as sent with the `candle_closed` signal: the same shape as a bar.
CandleEvent = CandleBar
