"""Reads of the regime gatekeeper's readings (market-wide, no user)."""

from __future__ import annotations

from trading.models import RegimeReading


def regime_latest_map() -> dict[str, RegimeReading]:
    """The latest regime reading per symbol (market-wide)."""
    readings = RegimeReading.objects.select_related("instrument").order_by("instrument_id", "-as_of").distinct(
        "instrument_id"
    )
    return {reading.instrument.symbol: reading for reading in readings}
