from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alerts.changes import _client, stream_key
from marketdata.types import TickEvent
from tests.factories import InstrumentFactory

# Every database test commits and is emptied afterwards (tests/conftest.py); these say so where it matters.
COMMITTED = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
def _empty_change_stream():
    _client().delete(stream_key())
    yield


@pytest.fixture
def btc(db):
    return InstrumentFactory(symbol="BTC/USDT")


@pytest.fixture
def eth(db):
    return InstrumentFactory(symbol="ETH/USDT")


class Ticker:
    """Ticks of one symbol with increasing market times, each remembering the previous price."""

    def __init__(self, symbol: str, start: Decimal | str) -> None:
        self.symbol = symbol
        self.price = Decimal(start)
        self.at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def to(self, price, *, after: timedelta = timedelta(seconds=1)) -> TickEvent:
        previous, self.price = self.price, Decimal(price)
        self.at += after
        return TickEvent(symbol=self.symbol, price=self.price, previous_price=previous, at=self.at)


@pytest.fixture
def btc_ticker(btc):
    return Ticker("BTC/USDT", "100")
