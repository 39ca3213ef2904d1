"""Research fixtures: instruments, traders on each plan, and the real March 2023 BTC/USDT candles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from core.rls import system_context, tenant
from marketdata.models import Candle
from research.services import NoteInput, note_create, note_publish
from tests.factories import InstrumentFactory, SubscriptionFactory, UserFactory
from tests.trading.market_data import minute_bars


@pytest.fixture
def btc(db):
    return InstrumentFactory(symbol="BTC/USDT")


@pytest.fixture
def btc_usdc(db):
    return InstrumentFactory(symbol="BTC/USDC")


@pytest.fixture
def author(db):
    return UserFactory(email="author@example.com", display_name="Ada Author")


@pytest.fixture
def reader(db):
    """A member on the Free plan."""
    return UserFactory(email="reader@example.com", display_name="Free Reader")


@pytest.fixture
def paying_reader(db):
    user = UserFactory(email="payer@example.com", display_name="Paying Reader")
    SubscriptionFactory(user=user)
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def write(user, **fields):
    """A note saved through the service, as the author's request would (tenant context)."""
    with tenant(user.pk):
        return note_create(user=user, data=NoteInput(**fields))


def publish(user, note, *, audience="members", now=None):
    with tenant(user.pk):
        return note_publish(user=user, note=note, audience=audience, now=now)


def load_march_2023(instrument, *, start=datetime(2023, 3, 3, tzinfo=UTC)) -> None:
    """The recorded one-minute candles of BTC/USDT from `start` to 21 March 2023, as the feed stores them."""
    with system_context(reason="tests: the market feed's candles"):
        Candle.objects.bulk_create(
            [
                Candle(instrument=instrument, open_time=b.open_time, open=b.open, high=b.high, low=b.low,
                       close=b.close, volume=b.volume)
                for b in minute_bars("BTCUSDT")
                if b.open_time >= start
            ],
            batch_size=5000,
        )
