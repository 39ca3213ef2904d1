from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from marketdata.models import Candle, Instrument, Quote, Tick
from tests.factories.base import ReferenceFactory

MARCH_2023 = datetime(2023, 3, 1, tzinfo=UTC)


class InstrumentFactory(ReferenceFactory):
    """A listed pair. BTC/USDT by default, and the same row again if it is already listed."""

    class Meta:
        model = Instrument
        django_get_or_create = ("symbol",)

    symbol = "BTC/USDT"
    base = factory.LazyAttribute(lambda o: o.symbol.split("/")[0])
    quote = factory.LazyAttribute(lambda o: o.symbol.split("/")[1])
    price_precision = 2


class QuoteFactory(ReferenceFactory):
    """The latest quote of an instrument, fresh (written now) unless `updated_at` says otherwise."""

    class Meta:
        model = Quote

    instrument = factory.SubFactory(InstrumentFactory)
    price = Decimal("20000")
    source = "replay"
    at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class TickFactory(ReferenceFactory):
    class Meta:
        model = Tick

    instrument = factory.SubFactory(InstrumentFactory)
    price = Decimal("20000")
    volume = Decimal("0.01")
    at = factory.LazyFunction(timezone.now)


class CandleFactory(ReferenceFactory):
    """A flat one-minute candle at `close`; consecutive candles take consecutive minutes of March 2023."""

    class Meta:
        model = Candle

    instrument = factory.SubFactory(InstrumentFactory)
    open_time = factory.Sequence(lambda n: MARCH_2023 + timedelta(minutes=n))
    close = Decimal("20000")
    open = factory.SelfAttribute("close")
    high = factory.SelfAttribute("close")
    low = factory.SelfAttribute("close")
    volume = Decimal("1")
