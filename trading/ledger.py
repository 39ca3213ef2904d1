"""Trading's one doorway into the portfolios app: balances it reads and fills it records.

Every fill (a bot's plan in a chunk or alone, and the general order path's `order_apply_exchange`: manual
orders, real venues' reports, resting matches) is recorded through `portfolios.batch.LedgerBatch`
(`ledger_batch`, `fill_record_in`), whose rows are written by the caller's `core.unit_of_work.UnitOfWork`.
The strategy tracker's journal (trading/tracker/journal.py) matches fills into round trips with the
portfolio ledger's own FIFO lots (`PositionState`), so there is one FIFO.
Only a fill dated before its portfolio's latest transaction (a replay) goes through
`portfolios.services.transaction_record` (`fill_record`), in the same database transaction, with the
fill's id as external id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portfolios import selectors as portfolio_selectors
from portfolios import services as portfolio_services
from portfolios.batch import LedgerBatch, NeedsReplay
from portfolios.choices import PortfolioKind, TransactionSource
from portfolios.ledger import LotState, PositionState, share
from portfolios.live import portfolios_push

__all__ = [
    "FillEntry", "LedgerBatch", "LotState", "NeedsReplay", "PositionState", "fill_record_in", "ledger_batch",
    "portfolios_push", "share",
]


def is_paper_portfolio(portfolio) -> bool:
    return portfolio.kind == PortfolioKind.PAPER


def cash(*, portfolio, currency: str) -> Decimal:
    return portfolio_selectors.cash_balance(portfolio=portfolio, currency=currency)


def holding(*, portfolio, instrument) -> Decimal:
    position = portfolio_selectors.position_list(portfolio=portfolio).filter(instrument=instrument).first()
    return position.quantity if position is not None else Decimal("0")


def cash_balances(*, portfolio) -> list[tuple[str, Decimal]]:
    """(currency, amount) of every cash balance of the portfolio."""
    return [(row.currency, row.amount) for row in portfolio_selectors.cash_balance_list(portfolio=portfolio)]


def holdings(*, portfolio) -> list[tuple[str, Decimal]]:
    """(base currency, quantity) of every position of the portfolio."""
    return [(position.instrument.base, position.quantity) for position in portfolio_selectors.position_list(portfolio=portfolio)]


@dataclass(frozen=True)
class FillEntry:
    """One exchange fill as the portfolio ledger records it (a buy or sell transaction, the fill's id as
    external id, so a fill reported twice is recorded once)."""

    side: str
    instrument: object
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    executed_at: datetime
    fill_id: str
    note: str

    def transaction_fields(self) -> dict:
        return {
            "kind": self.side,
            "instrument": self.instrument,
            "quantity": self.quantity,
            "price": self.price,
            "fee": self.fee,
            "fee_currency": self.fee_currency,
            "executed_at": self.executed_at,
            "external_id": self.fill_id,
            "note": self.note,
            "source": TransactionSource.EXCHANGE,
        }


def fill_entry(*, order, fill) -> FillEntry:
    """The ledger entry of one fill (an `ExchangeFill` or a stored `Fill`) of `order`."""
    return FillEntry(
        side=order.side,
        instrument=order.instrument,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        executed_at=fill.executed_at,
        fill_id=fill.fill_id,
        note=f"Order {order.pk}",
    )


def fill_record(*, user, portfolio, fill: FillEntry):
    return portfolio_services.transaction_record(user=user, portfolio=portfolio, **fill.transaction_fields())


def ledger_batch(pipe) -> LedgerBatch:
    """A batch of fills recorded into many portfolios, each as its owner, on `pipe` (core.batch)."""
    return LedgerBatch(pipe)


def fill_record_in(batch: LedgerBatch, *, portfolio, owner_email: str, fill: FillEntry):
    """`fill_record` inside a LedgerBatch (raises NeedsReplay when the fill must go through fill_record)."""
    return batch.record(portfolio=portfolio, owner_email=owner_email, **fill.transaction_fields())


def portfolio_get(*, user, pk: int):
    return portfolio_selectors.portfolio_get(user=user, pk=pk)


def portfolio_list(*, user):
    return portfolio_selectors.portfolio_list(user=user)
