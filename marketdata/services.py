"""Writes of market data. Only the feed process writes quotes, ticks and candles."""

from __future__ import annotations

from django.db import transaction

from marketdata.models import Instrument
from marketdata.registry import DEFAULT_INSTRUMENTS


@transaction.atomic
def instruments_seed() -> list[Instrument]:
    """Create the default instruments that are missing; existing rows (and admin edits) are left alone."""
    instruments = []
    for spec in DEFAULT_INSTRUMENTS:
        base, quote = spec["symbol"].split("/")
        instrument, _ = Instrument.objects.get_or_create(
            symbol=spec["symbol"], defaults={**spec, "base": base, "quote": quote}
        )
        instruments.append(instrument)
    return instruments
