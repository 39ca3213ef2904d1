"""Trading's one doorway into the portfolios app: balances it reads and fills it records.

Fills go through `portfolios.services.transaction_record` in the caller's database transaction (the
same one that moves the order's state), with the fill's id as external id, so a fill reported twice is
recorded once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from portfolios import selectors as portfolio_selectors
from portfolios import services as portfolio_services
from portfolios.choices import PortfolioKind, TransactionSource


def is_paper_portfolio(portfolio) -> bool:
    return portfolio.kind == PortfolioKind.PAPER


def cash(*, portfolio, currency: str) -> Decimal:
    return portfolio_selectors.cash_balance(portfolio=portfolio, currency=currency)


def holding(*, portfolio, instrument) -> Decimal:
    position = portfolio_selectors.position_list(portfolio=portfolio).filter(instrument=instrument).first()
    return position.quantity if position is not None else Decimal("0")


def fill_record(
    *,
    user,
    portfolio,
    side: str,
    instrument,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    executed_at: datetime,
    fill_id: str,
    note: str,
):
    return portfolio_services.transaction_record(
        user=user,
        portfolio=portfolio,
        kind=side,
        instrument=instrument,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency,
        executed_at=executed_at,
        external_id=fill_id,
        note=note,
        source=TransactionSource.EXCHANGE,
    )


def portfolio_get(*, user, pk: int):
    return portfolio_selectors.portfolio_get(user=user, pk=pk)


def portfolio_list(*, user):
    return portfolio_selectors.portfolio_list(user=user)
