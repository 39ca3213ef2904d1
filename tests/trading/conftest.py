"""Fixtures for the trading tests: instruments, a live quote, a funded paper portfolio and a paper connection."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.rls import system_context, tenant
from marketdata.models import Instrument, Quote
from marketdata.services import instruments_seed


@pytest.fixture
def instruments(db):
    return {i.symbol: i for i in instruments_seed()}


def set_quote(symbol: str, price, *, bid=None, ask=None, age_seconds: int = 0) -> None:
    instrument = Instrument.objects.get(symbol=symbol)
    now = timezone.now() - timedelta(seconds=age_seconds)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.update_or_create(
            instrument=instrument,
            defaults={
                "price": Decimal(str(price)),
                "bid": Decimal(str(bid)) if bid is not None else None,
                "ask": Decimal(str(ask)) if ask is not None else None,
                "source": "test",
                "at": now,
                "updated_at": now,
            },
        )


@pytest.fixture
def btc_quote(instruments):
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    return instruments["BTC/USDT"]


def paper_setup(user, *, cash="10000"):
    from portfolios.choices import PortfolioKind, TransactionKind
    from portfolios.services import portfolio_create, transaction_record
    from trading.connections.services import connection_create

    with tenant(user.pk):
        portfolio = portfolio_create(user=user, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER)
        if Decimal(cash) > 0:
            transaction_record(
                user=user, portfolio=portfolio, kind=TransactionKind.DEPOSIT, quantity=Decimal(cash),
                currency="USDT", executed_at=timezone.now(), external_id="seed-cash",
            )
        connection = connection_create(user=user, label="Paper", venue="paper")
    return portfolio, connection


@pytest.fixture
def paper_a(user_a, btc_quote):
    return paper_setup(user_a)


@pytest.fixture
def paper_b(user_b, btc_quote):
    return paper_setup(user_b)


from tests.trading.binance import recorded_binance  # noqa: E402,F401  (fixture)


def make_bot(user, paper, **fields):
    from trading.bots.services import bot_create

    portfolio, connection = paper
    values = {
        "name": "DCA", "symbol": "BTC/USDT", "strategy": "dca", "params": {"every": 1}, "timeframe": "1m",
        "allocation": Decimal("100"), "max_position": Decimal("1"), "daily_loss_limit": Decimal("50"),
    }
    values.update(fields)
    with tenant(user.pk):
        return bot_create(user=user, portfolio=portfolio, connection=connection, **values)


def make_signal(*, action="buy", regime="bullish", strategy="dca", params_key="every=1", price="20000",
                age_seconds=5, candle_open_time=None):
    from trading.models import Signal

    closed_at = timezone.now() - timedelta(seconds=age_seconds)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        return Signal.objects.create(
            instrument=Instrument.objects.get(symbol="BTC/USDT"), strategy=strategy, params={"every": 1},
            params_key=params_key, timeframe="1m", candle_open_time=candle_open_time or closed_at - timedelta(minutes=1),
            closed_at=closed_at, action=action, price=Decimal(price), regime=regime, reason="test signal",
            status="planned",
        )
