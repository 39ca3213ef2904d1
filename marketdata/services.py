"""Writes of market data. Only the feed process writes quotes, ticks and candles.

Market data is shared reference data (core/tables.py): the runtime role reads it, and only its owning
process writes it, on the system connection (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from core.rls import system_context
from marketdata.models import Candle, Instrument, Quote, Tick
from marketdata.registry import DEFAULT_INSTRUMENTS
from marketdata.selectors import candles_memo
from marketdata.types import CandleBar


def instruments_seed() -> list[Instrument]:
    """Create the default instruments that are missing; existing rows (and admin edits) are left alone."""
    instruments = []
    with system_context(reason="market data: seed the default instruments"):
        for spec in DEFAULT_INSTRUMENTS:
            base, quote = spec["symbol"].split("/")
            instrument, _ = Instrument.objects.get_or_create(
                symbol=spec["symbol"], defaults={**spec, "base": base, "quote": quote}
            )
            instruments.append(instrument)
    return instruments


def _dedupe_latest(rows: Iterable[tuple[int, CandleBar]]) -> list[tuple[int, CandleBar]]:
    """One row per (instrument, minute), the last one given winning: one INSERT .. ON CONFLICT per key."""
    return list(
        {(instrument_id, bar.open_time): (instrument_id, bar) for instrument_id, bar in rows}.values()
    )


def candles_store(*, rows: Iterable[tuple[int, CandleBar]]) -> int:
    """Insert or overwrite one-minute candles; (instrument, open_time) is unique, so never a duplicate."""
    candles = [
        Candle(
            instrument_id=instrument_id,
            open_time=bar.open_time,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
        )
        for instrument_id, bar in _dedupe_latest(rows)
    ]
    with system_context(reason="market feed: store candles"):
        Candle.objects.bulk_create(
            candles,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["instrument", "open_time"],
            update_fields=["open", "high", "low", "close", "volume"],
        )
    candles_memo.bump(candle.instrument_id for candle in candles)
    return len(candles)


def ticks_store(*, rows: Iterable[tuple[int, Decimal, Decimal, datetime]]) -> None:
    with system_context(reason="market feed: store ticks"):
        Tick.objects.bulk_create(
            [Tick(instrument_id=i, price=price, volume=volume, at=at) for i, price, volume, at in rows],
            batch_size=2000,
        )


def quotes_store(*, quotes: Iterable[Quote]) -> None:
    with system_context(reason="market feed: store quotes"):
        Quote.objects.bulk_create(
            list(quotes),
            update_conflicts=True,
            unique_fields=["instrument"],
            update_fields=[
                "price",
                "bid",
                "ask",
                "open_24h",
                "high_24h",
                "low_24h",
                "volume_24h",
                "source",
                "at",
                "updated_at",
            ],
        )


@dataclass(frozen=True)
class WindowStats:
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: Decimal


def window_stats(*, instrument_id: int, start: datetime, end: datetime) -> WindowStats:
    """Open, high, low and volume of the closed minutes in [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (array_agg(open ORDER BY open_time))[1], max(high), min(low), coalesce(sum(volume), 0)
              FROM marketdata_candle
             WHERE instrument_id = %s AND open_time >= %s AND open_time < %s
            """,
            [instrument_id, start, end],
        )
        opening, high, low, volume = cursor.fetchone()
    return WindowStats(open=opening, high=high, low=low, volume=volume)


def ticks_trim(*, older_than: datetime) -> int:
    """Delete ticks before `older_than` (the retention task); returns how many went."""
    with system_context(reason="market data: trim old ticks"):
        deleted, _ = Tick.objects.filter(at__lt=older_than).delete()
    return deleted
