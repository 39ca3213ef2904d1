"""Trades recorded into many portfolios at once, each as its owner: the batch form of `transaction_record`.

Trading's fan-out fills thousands of bot orders in one chunk; recording each through `transaction_record`
costs some twenty round trips. `LedgerBatch` does the same work on a `core.batch.TenantPipeline`:

1. `load(portfolio_id=, user_id=, instrument=)` queues the lock of the portfolio row (FOR UPDATE, as
   `transaction_record` takes it) and the reads of that part of its ledger, as the owner;
2. after the pipeline's sync, `record(...)` checks the transaction with `transaction_build` and applies it
   to the same in-memory FIFO `Ledger` that `transaction_record` uses, so the figures cannot differ;
3. `prepare()` reserves the transactions' primary keys and builds every row (transactions, positions,
   lots, cash, audit); `queue(uow, portfolio)` hands a portfolio's rows to the caller's
   `core.unit_of_work.UnitOfWork`, where the caller wants them among its own rows (written as the owner);
   the caller flushes the unit of work and commits.

A transaction dated before the portfolio's latest one would need the history replayed: `record` refuses it
with `NeedsReplay`, and the caller records it through `transaction_record` after the batch. A portfolio on
which a transaction was refused is not touched again in the batch (its ledger may be half-applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.audit import audit_entry
from core.batch import Pending, TenantPipeline
from core.errors import DomainError
from core.models import AuditLog
from core.money import ZERO
from core.unit_of_work import UnitOfWork
from portfolios.ledger import Ledger
from portfolios.models import CashBalance, Lot, Portfolio, Position, Transaction
from portfolios.services import (
    LOT_FIELDS,
    POSITION_FIELDS,
    LedgerRows,
    ledger_fill,
    ledger_positions,
    ledger_rows,
    transaction_build,
    transaction_summary,
)


class NeedsReplay(Exception):
    """This transaction cannot be recorded in the batch: record it with `transaction_record`."""


@dataclass
class _Loaded:
    locked: Pending
    instrument: object
    positions: Pending
    lots: Pending
    cash: Pending
    latest: Pending
    portfolio: Portfolio | None = None
    ledger: Ledger | None = None
    latest_at: datetime | None = None
    recorded: list[tuple[Transaction, str]] = field(default_factory=list)  # (transaction, actor label)
    refused: bool = False
    rows: _Rows | None = None
    queued: bool = False


@dataclass
class _Rows:
    ledger: LedgerRows
    audits: list[AuditLog]


class LedgerBatch:
    """Fills recorded into many portfolios on one `TenantPipeline`, each portfolio as its owner (see above)."""

    def __init__(self, pipe: TenantPipeline) -> None:
        self.pipe = pipe
        self._portfolios: dict[int, _Loaded] = {}

    def load(self, *, portfolio_id: int, user_id: int, instrument) -> None:
        """Queue the lock and the ledger reads of a portfolio for `instrument` (once per portfolio)."""
        if portfolio_id in self._portfolios:
            if self._portfolios[portfolio_id].instrument.pk != instrument.pk:
                raise ValueError("a LedgerBatch records one instrument per portfolio")
            return
        self._portfolios[portfolio_id] = _Loaded(
            locked=self.pipe.select(Portfolio, "id = %s FOR UPDATE", [portfolio_id], user_id=user_id),
            instrument=instrument,
            positions=self.pipe.select(
                Position, "portfolio_id = %s AND instrument_id = %s", [portfolio_id, instrument.pk], user_id=user_id
            ),
            lots=self.pipe.select(
                Lot,
                "portfolio_id = %s AND closed_at IS NULL AND position_id IN "
                "(SELECT id FROM portfolios_position WHERE portfolio_id = %s AND instrument_id = %s) "
                "ORDER BY opened_at, id",
                [portfolio_id, portfolio_id, instrument.pk],
                user_id=user_id,
            ),
            cash=self.pipe.select(CashBalance, "portfolio_id = %s", [portfolio_id], user_id=user_id),
            latest=self.pipe.execute(
                "SELECT max(executed_at) FROM portfolios_transaction WHERE portfolio_id = %s", [portfolio_id], user_id=user_id
            ),
        )

    def portfolio(self, portfolio_id: int) -> Portfolio | None:
        """The locked portfolio (after the sync); None if its owner cannot see it."""
        loaded = self._portfolios[portfolio_id]
        if loaded.portfolio is None:
            loaded.portfolio = loaded.locked.instance()
        return loaded.portfolio

    def _state(self, portfolio: Portfolio) -> _Loaded:
        loaded = self._portfolios[portfolio.pk]
        if loaded.ledger is None:
            portfolio = self.portfolio(portfolio.pk)
            positions = loaded.positions.instances()
            for position in positions:
                position.instrument = loaded.instrument
            loaded.ledger = Ledger(allow_short=portfolio.allow_short, strict_cash=portfolio.strict_cash)
            ledger_fill(loaded.ledger, positions=positions, lots=loaded.lots.instances(), cash=loaded.cash.instances())
            loaded.latest_at = loaded.latest.scalar()
        return loaded

    # --- reading (after the pipeline's sync) ------------------------------------------------------------

    def cash(self, *, portfolio: Portfolio, currency: str) -> Decimal:
        return self._state(portfolio).ledger.cash.get(currency, ZERO)

    def holding(self, *, portfolio: Portfolio, instrument) -> Decimal:
        state = self._state(portfolio).ledger.positions.get(instrument.pk)
        return state.quantity if state is not None else ZERO

    # --- recording --------------------------------------------------------------------------------------

    def record(
        self,
        *,
        portfolio: Portfolio,
        owner_email: str,
        kind: str,
        instrument,
        quantity,
        price,
        fee,
        fee_currency: str,
        executed_at: datetime,
        external_id: str,
        note: str,
        source: str,
    ) -> Transaction:
        """Check and apply one transaction in memory, as `transaction_record` would (DomainError if not)."""
        loaded = self._state(portfolio)
        if loaded.refused:
            raise NeedsReplay("an earlier transaction on this portfolio was refused in this batch")
        if loaded.latest_at is not None and executed_at < loaded.latest_at:
            raise NeedsReplay("dated before the portfolio's latest transaction")
        txn = transaction_build(
            portfolio=portfolio, kind=kind, instrument=instrument, quantity=quantity, price=price, fee=fee,
            fee_currency=fee_currency, executed_at=executed_at, external_id=external_id, note=note, source=source,
        )
        try:
            loaded.ledger.apply(txn)
        except DomainError:
            loaded.refused = True
            raise
        loaded.latest_at = executed_at
        loaded.recorded.append((txn, f"{source} for {owner_email}"))
        return txn

    def prepare(self) -> list[Portfolio]:
        """Reserve the transactions' primary keys (their audit rows name them) and build every row of what
        was recorded (one round trip); returns the portfolios written to. Then `queue(uow, portfolio)` for
        each, where the caller wants them among its rows; the unit of work reserves the other keys."""
        touched = [loaded for loaded in self._portfolios.values() if loaded.recorded]
        transactions = [txn for loaded in touched for txn, _ in loaded.recorded]
        positions = {
            loaded.portfolio.pk: ledger_positions(loaded.ledger, portfolio=loaded.portfolio, stored={})
            for loaded in touched
        }
        for txn, pk in zip(transactions, self.pipe.reserve_ids(Transaction, len(transactions)), strict=True):
            txn.pk = pk
        for loaded in touched:
            rows = ledger_rows(
                loaded.ledger,
                portfolio=loaded.portfolio,
                positions=positions[loaded.portfolio.pk],
                replayed=False,
                cash=loaded.ledger.changed_cash,
            )
            audits = [
                audit_entry(
                    action="portfolio.transaction_recorded", user=None, user_id=loaded.portfolio.user_id,
                    actor_label=actor_label, target=txn, after=transaction_summary(txn),
                )
                for txn, actor_label in loaded.recorded
            ]
            loaded.rows = _Rows(ledger=rows, audits=audits)
        return [loaded.portfolio for loaded in touched]

    def queue(self, uow: UnitOfWork, portfolio: Portfolio) -> None:
        """Hand the rows `prepare` built for `portfolio` to `uow`, as its owner's (nothing if it recorded
        nothing)."""
        loaded = self._portfolios.get(portfolio.pk)
        if loaded is None or loaded.rows is None or loaded.queued:
            return
        loaded.queued = True
        user_id, rows = portfolio.user_id, loaded.rows
        for txn, _ in loaded.recorded:
            uow.insert(txn, user_id=user_id)
        for row in rows.ledger.positions_new:
            uow.insert(row, user_id=user_id)
        for row in rows.ledger.positions_changed:
            uow.update(row, POSITION_FIELDS, user_id=user_id)
        for lot in rows.ledger.lots_new:
            uow.insert(lot, user_id=user_id)
        for lot in rows.ledger.lots_changed:
            uow.update(lot, LOT_FIELDS, user_id=user_id)
        for row in rows.ledger.cash:
            uow.insert(row, user_id=user_id, unique_fields=["portfolio", "currency"], update_fields=["amount"])
        for entry in rows.audits:
            uow.audit(entry)
