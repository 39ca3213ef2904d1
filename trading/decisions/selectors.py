"""Reads of the regime gatekeeper's readings (market-wide, no user)."""

from __future__ import annotations

from django.db.models import QuerySet

from trading.models import RegimeReading


def regime_latest_map() -> dict[str, RegimeReading]:
    """The latest regime reading per symbol (market-wide)."""
    readings = RegimeReading.objects.select_related("instrument").order_by("instrument_id", "-as_of").distinct(
        "instrument_id"
    )
    return {reading.instrument.symbol: reading for reading in readings}


def regime_history(*, instrument, timeframe: str | None = None) -> QuerySet[RegimeReading]:
    """A pair's readings, newest first (market-wide); optionally of one candle timeframe."""
    readings = RegimeReading.objects.filter(instrument=instrument).select_related("instrument")
    if timeframe:
        readings = readings.filter(timeframe=timeframe)
    return readings.order_by("-as_of", "-id")


def regime_latest(*, instrument) -> RegimeReading | None:
    """A pair's latest reading, or None before the gatekeeper has classified it."""
    return regime_history(instrument=instrument).first()
