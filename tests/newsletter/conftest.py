from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.choices import PlanCode
from tests.factories import SubscriptionFactory, UserFactory
from tests.factories.marketdata import CandleFactory, InstrumentFactory, QuoteFactory
from tests.factories.trading import RegimeReadingFactory


@pytest.fixture
def staff_author(db):
    return UserFactory(email="editor@example.com", display_name="Editor", is_staff=True)


@pytest.fixture
def enterprise_author(db):
    user = UserFactory(email="desk@example.com", display_name="Desk")
    SubscriptionFactory(user=user, plan=PlanCode.ENTERPRISE)
    return user


@pytest.fixture
def members(db):
    return [UserFactory(email=f"member{i}@example.com") for i in range(5)]


@pytest.fixture
def market(db):
    """BTC/USDT up 5% over ten hourly candles, ETH/USDT down 2%, both with a quote; BTC classified bullish."""
    btc = InstrumentFactory(symbol="BTC/USDT")
    eth = InstrumentFactory(symbol="ETH/USDT")
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=10)
    for hour in range(10):
        at = start + timedelta(hours=hour)
        btc_open = Decimal("20000") + Decimal(100) * hour
        CandleFactory(instrument=btc, open_time=at, open=btc_open, close=btc_open + 100,
                      high=btc_open + 150, low=btc_open - 50)
        eth_open = Decimal("1000") - Decimal(2) * hour
        CandleFactory(instrument=eth, open_time=at, open=eth_open, close=eth_open - 2,
                      high=eth_open + 1, low=eth_open - 3)
    QuoteFactory(instrument=btc, price=Decimal("21000"), open_24h=Decimal("20000"))
    QuoteFactory(instrument=eth, price=Decimal("980"), open_24h=Decimal("1000"))
    RegimeReadingFactory(instrument=btc, sma_slope_pct=Decimal("1.234"), adx=Decimal("31.25"))
    return {"btc": btc, "eth": eth}
