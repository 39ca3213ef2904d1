"""Portfolio rows as stored. Transactions, positions, lots and cash built here are raw rows that the
ledger has not seen: when positions and cash must follow from transactions, record them through
`portfolios.services.transaction_record` instead."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from portfolios.choices import PortfolioKind, TransactionKind
from portfolios.models import (
    CashBalance,
    Lot,
    Portfolio,
    Position,
    Snapshot,
    Transaction,
    Watchlist,
    WatchlistItem,
)
from tests.factories.base import TenantFactory, owner
from tests.factories.marketdata import InstrumentFactory


class PortfolioFactory(TenantFactory):
    class Meta:
        model = Portfolio

    name = factory.Sequence(lambda n: f"Portfolio {n}")
    base_currency = "USDT"
    kind = PortfolioKind.MANUAL


class TransactionFactory(TenantFactory):
    """A deposit of 1,000 USDT unless told otherwise (a trade needs `instrument` and `price`)."""

    class Meta:
        model = Transaction

    portfolio = factory.SubFactory(PortfolioFactory, user=owner())
    kind = TransactionKind.DEPOSIT
    currency = "USDT"
    quantity = Decimal("1000")
    executed_at = factory.LazyFunction(timezone.now)


class PositionFactory(TenantFactory):
    class Meta:
        model = Position

    portfolio = factory.SubFactory(PortfolioFactory, user=owner())
    instrument = factory.SubFactory(InstrumentFactory)
    quantity = Decimal("1")
    cost_basis = Decimal("20000")


class LotFactory(TenantFactory):
    class Meta:
        model = Lot

    portfolio = factory.SubFactory(PortfolioFactory, user=owner())
    position = factory.SubFactory(PositionFactory, user=owner(), portfolio=factory.SelfAttribute("..portfolio"))
    opening_transaction = factory.SubFactory(
        TransactionFactory,
        user=owner(),
        portfolio=factory.SelfAttribute("..portfolio"),
        kind=TransactionKind.BUY,
        instrument=factory.SelfAttribute("..position.instrument"),
        quantity=factory.SelfAttribute("..quantity"),
        price=Decimal("20000"),
    )
    opened_at = factory.SelfAttribute("opening_transaction.executed_at")
    quantity = Decimal("1")
    quantity_open = factory.SelfAttribute("quantity")
    cost_open = Decimal("20000")


class CashBalanceFactory(TenantFactory):
    class Meta:
        model = CashBalance

    portfolio = factory.SubFactory(PortfolioFactory, user=owner())
    currency = "USDT"
    amount = Decimal("1000")


class SnapshotFactory(TenantFactory):
    """A day's closing value of a portfolio; consecutive snapshots take consecutive days."""

    class Meta:
        model = Snapshot

    portfolio = factory.SubFactory(PortfolioFactory, user=owner())
    date = factory.Sequence(lambda n: timezone.now().date() - timedelta(days=1000 - n))
    taken_at = factory.LazyFunction(timezone.now)
    value = Decimal("1000")
    cash_value = factory.SelfAttribute("value")


class WatchlistFactory(TenantFactory):
    class Meta:
        model = Watchlist

    name = factory.Sequence(lambda n: f"Watchlist {n}")


class WatchlistItemFactory(TenantFactory):
    class Meta:
        model = WatchlistItem

    watchlist = factory.SubFactory(WatchlistFactory, user=owner())
    instrument = factory.SubFactory(InstrumentFactory)
