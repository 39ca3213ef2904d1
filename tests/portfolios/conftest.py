from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from core.rls import system_context, tenant
from marketdata.models import Quote
from marketdata.services import instruments_seed
from portfolios.choices import PortfolioKind
from portfolios.services import portfolio_create, transaction_record


def at(day: int, hour: int = 12, month: int = 3, year: int = 2023) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def D(value) -> Decimal:  # noqa: N802 - reads like the literal it stands for
    return Decimal(str(value))


def set_quote(instrument, price, *, open_24h=None, updated_at=None) -> Quote:
    now = updated_at or timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        quote, _ = Quote.objects.update_or_create(
            instrument=instrument,
            defaults={
                "price": D(price),
                "open_24h": D(open_24h) if open_24h else None,
                "source": "test",
                "at": now,
                "updated_at": now,
            },
        )
    return quote


@pytest.fixture
def instruments(db):
    return {i.symbol: i for i in instruments_seed()}


@pytest.fixture
def as_a(user_a):
    """The test body runs as user A (as a request of theirs would)."""
    with tenant(user_a.pk):
        yield user_a


@pytest.fixture
def portfolio(as_a, instruments):
    return portfolio_create(user=as_a, name="Main", base_currency="USDT")


@pytest.fixture
def paper_portfolio(as_a, instruments):
    return portfolio_create(user=as_a, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER)


@pytest.fixture
def record(as_a, instruments):
    """record(portfolio, kind, symbol_or_currency, quantity, price=None, fee=0, fee_currency="", day=1, ...)."""

    def _record(portfolio, kind, what, quantity, price=None, fee="0", fee_currency="", when=None, **extra):
        instrument = instruments.get(what)
        return transaction_record(
            user=as_a,
            portfolio=portfolio,
            kind=kind,
            instrument=instrument,
            currency=None if instrument else what,
            quantity=D(quantity),
            price=D(price) if price is not None else None,
            fee=D(fee),
            fee_currency=fee_currency,
            executed_at=when or at(1),
            **extra,
        )

    return _record
