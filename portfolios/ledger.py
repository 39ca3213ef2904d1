"""FIFO accounting in memory: transactions in, lots / positions / cash / realized P&L out.

Pure Python, no queries: `portfolios.services` loads the state, applies transactions here and writes
the result back in one database transaction. The same code replays a portfolio's whole history when
a transaction is inserted out of order or deleted. docs/portfolio-math.md describes every rule.

A transaction that cannot be applied (an oversell, a withdrawal beyond the cash held) raises
DomainError before anything is changed, so the ledger is left as it was.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import TYPE_CHECKING

from core.errors import DomainError
from core.money import ZERO, plain
from portfolios.choices import QUANTUM, TransactionKind

if TYPE_CHECKING:
    from marketdata.models import Instrument
    from portfolios.models import Transaction

# Wide enough that a product of two 28-digit numbers is exact before it is rounded to QUANTUM.
CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)


def rounded(value: Decimal) -> Decimal:
    """Round to the stored precision (12 places, half to even)."""
    return value.quantize(QUANTUM, context=CONTEXT)


def mul(a: Decimal, b: Decimal) -> Decimal:
    return rounded(CONTEXT.multiply(a, b))


def share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """amount * part / whole, rounded once."""
    return rounded(CONTEXT.divide(CONTEXT.multiply(amount, part), whole))


@dataclass
class LotState:
    opening: Transaction | int  # the Transaction that opened the lot, or its id when loaded from the table
    opened_at: datetime
    quantity: Decimal
    quantity_open: Decimal
    cost_open: Decimal
    closed_at: datetime | None = None
    pk: int | None = None


@dataclass
class PositionState:
    instrument: Instrument
    quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    last_price: Decimal | None = None
    open_lots: deque[LotState] = field(default_factory=deque)
    changed_lots: list[LotState] = field(default_factory=list)
    pk: int | None = None

    @property
    def opened_at(self) -> datetime | None:
        return self.open_lots[0].opened_at if self.open_lots else None

    def _touch(self, lot: LotState) -> None:
        if not any(existing is lot for existing in self.changed_lots):
            self.changed_lots.append(lot)

    def trade(self, *, units: Decimal, cash_in: Decimal, opening, at: datetime) -> Decimal:
        """Move `units` (signed) through the FIFO lots against `cash_in` (cash received, signed).

        Units opposite in sign to the open lots close them oldest first; each closed part realizes its
        share of `cash_in` minus its share of the lot's cost. What is left opens a new lot whose cost is
        the rest of the cash paid. Returns the realized P&L.
        """
        realized = ZERO
        remaining, cash_remaining = units, cash_in
        total = abs(units)
        while remaining and self.open_lots and (self.open_lots[0].quantity_open > 0) != (remaining > 0):
            lot = self.open_lots[0]
            take = min(abs(remaining), abs(lot.quantity_open))
            cash_part = cash_remaining if take == abs(remaining) else share(cash_in, take, total)
            cost_part = (
                lot.cost_open
                if take == abs(lot.quantity_open)
                else share(lot.cost_open, take, abs(lot.quantity_open))
            )
            realized += cash_part - cost_part
            step = take if lot.quantity_open > 0 else -take
            lot.quantity_open -= step
            lot.cost_open -= cost_part
            remaining += step
            cash_remaining -= cash_part
            self._touch(lot)
            if not lot.quantity_open:
                lot.closed_at = at
                self.open_lots.popleft()
        if remaining:
            lot = LotState(
                opening=opening,
                opened_at=at,
                quantity=remaining,
                quantity_open=remaining,
                cost_open=-cash_remaining,
            )
            self.open_lots.append(lot)
            self.changed_lots.append(lot)
        self.quantity += units
        self.cost_basis = sum((lot.cost_open for lot in self.open_lots), ZERO)
        self.realized_pnl += realized
        return realized

    def remove_at_cost(self, *, units: Decimal, at: datetime) -> Decimal:
        """Take `units` out of the long lots, oldest first, without realizing anything; returns their cost."""
        remaining = units
        removed = ZERO
        while remaining:
            lot = self.open_lots[0]
            take = min(remaining, lot.quantity_open)
            cost_part = (
                lot.cost_open if take == lot.quantity_open else share(lot.cost_open, take, lot.quantity_open)
            )
            lot.quantity_open -= take
            lot.cost_open -= cost_part
            removed += cost_part
            remaining -= take
            self._touch(lot)
            if not lot.quantity_open:
                lot.closed_at = at
                self.open_lots.popleft()
        self.quantity -= units
        self.cost_basis = sum((lot.cost_open for lot in self.open_lots), ZERO)
        return removed


class Ledger:
    """The derived state of one portfolio, or of the part of it a transaction touches."""

    def __init__(self, *, allow_short: bool, strict_cash: bool) -> None:
        self.allow_short = allow_short
        self.strict_cash = strict_cash
        self.positions: dict[int, PositionState] = {}
        self.cash: dict[str, Decimal] = {}
        self.changed_cash: set[str] = set()

    def position(self, instrument) -> PositionState:
        state = self.positions.get(instrument.pk)
        if state is None:
            state = self.positions[instrument.pk] = PositionState(instrument=instrument)
        return state

    # --- applying ------------------------------------------------------------------------------------

    def apply(self, txn) -> None:
        """Apply one transaction; set its derived fields (realized_pnl, flows, funding)."""
        txn.realized_pnl = ZERO
        txn.flow_amount = ZERO
        txn.flow_currency = ""
        txn.funding = ZERO
        txn.fee_funding = ZERO
        if txn.instrument_id is not None:
            self._apply_asset(txn)
        else:
            self._apply_cash(txn)

    def _fee_split(self, txn, *, base: str | None, quote: str) -> tuple[Decimal, Decimal, Decimal]:
        """(fee in quote, fee in base, fee in a third currency) for this transaction."""
        fee = txn.fee or ZERO
        if not fee:
            return ZERO, ZERO, ZERO
        currency = txn.fee_currency or quote
        if currency == quote:
            return fee, ZERO, ZERO
        if base is not None and currency == base:
            return ZERO, fee, ZERO
        return ZERO, ZERO, fee

    def _apply_asset(self, txn) -> None:
        instrument = txn.instrument
        base, quote = instrument.base, instrument.quote
        kind = txn.kind
        quantity = txn.quantity
        price = txn.price if txn.price is not None else None
        gross = mul(quantity, price) if price is not None else ZERO
        quote_fee, base_fee, other_fee = self._fee_split(txn, base=base, quote=quote)
        position = self.position(instrument)
        incoming = kind in (TransactionKind.BUY, TransactionKind.TRANSFER_IN)

        if incoming:
            units = quantity - base_fee
            if units <= 0:
                raise DomainError(f"The fee in {base} must be smaller than the quantity.", field="fee")
        else:
            units = -(quantity + base_fee)
            held = max(position.quantity, ZERO)
            if -units > held and (kind == TransactionKind.TRANSFER_OUT or not self.allow_short):
                needs = plain(-units)
                verb = "transfer out" if kind == TransactionKind.TRANSFER_OUT else "sell"
                message = f"You hold {plain(held)} {base} in {instrument.symbol}; this {verb} needs {needs}."
                if kind == TransactionKind.SELL:
                    message += " Selling more than you hold needs a portfolio that allows short positions."
                raise DomainError(message, field="quantity")

        if kind == TransactionKind.BUY:
            cash_for_units = -(gross + quote_fee)
            moves = [(quote, cash_for_units, False)]
        elif kind == TransactionKind.SELL:
            cash_for_units = gross - quote_fee
            moves = [(quote, cash_for_units, False)]
        else:
            cash_for_units = -gross
            moves = [(quote, -quote_fee, False)] if quote_fee else []
        if other_fee:
            moves.append((txn.fee_currency, -other_fee, True))
        self._check_cash(moves, kind=kind)

        at = txn.executed_at
        if kind == TransactionKind.TRANSFER_OUT:
            cost_removed = position.remove_at_cost(units=quantity, at=at)
            if base_fee:
                txn.realized_pnl = position.trade(units=-base_fee, cash_in=ZERO, opening=txn, at=at)
            txn.flow_amount = -(gross if price is not None else cost_removed)
        else:
            txn.realized_pnl = position.trade(units=units, cash_in=cash_for_units, opening=txn, at=at)
            if kind == TransactionKind.TRANSFER_IN:
                txn.flow_amount = gross
        if kind in (TransactionKind.BUY, TransactionKind.SELL):
            position.fees_paid += quote_fee + (mul(base_fee, price) if base_fee else ZERO)
        if price is not None:
            position.last_price = price
        txn.flow_currency = quote
        self._move_cash(moves, txn)
        txn.flow_amount += txn.funding

    def _apply_cash(self, txn) -> None:
        kind = txn.kind
        currency = txn.currency
        amount = txn.quantity
        quote_fee, _, other_fee = self._fee_split(txn, base=None, quote=currency)
        if kind in (TransactionKind.DEPOSIT, TransactionKind.TRANSFER_IN):
            moves = [(currency, amount - quote_fee, False)]
            flow = amount
        elif kind in (TransactionKind.WITHDRAWAL, TransactionKind.TRANSFER_OUT):
            needed = amount + quote_fee
            held = self.cash.get(currency, ZERO)
            if needed > held:
                raise DomainError(
                    f"You have {plain(held)} {currency} in cash; this {txn.get_kind_display().lower()} "
                    f"needs {plain(needed)}.",
                    field="quantity",
                )
            moves = [(currency, -needed, False)]
            flow = -amount
        else:  # a standalone fee
            moves = [(currency, -(amount + quote_fee), False)]
            flow = ZERO
        if other_fee:
            moves.append((txn.fee_currency, -other_fee, True))
        self._check_cash(moves, kind=kind)
        txn.flow_currency = currency
        self._move_cash(moves, txn)
        txn.flow_amount = flow + txn.funding

    def _check_cash(self, moves: list[tuple[str, Decimal, bool]], *, kind: str) -> None:
        if not self.strict_cash:
            return
        for currency, delta, _ in moves:
            held = self.cash.get(currency, ZERO)
            if delta < 0 and held + delta < 0:
                raise DomainError(
                    f"Not enough {currency}: the portfolio holds {plain(held)}, this {kind} needs {plain(-delta)}.",
                    field="quantity",
                )

    def _move_cash(self, moves: list[tuple[str, Decimal, bool]], txn) -> None:
        for currency, delta, is_third_currency_fee in moves:
            if not delta:
                continue
            balance = self.cash.get(currency, ZERO) + delta
            if balance < 0:
                # Not strict: money spent that the portfolio never received counts as added at that moment.
                if is_third_currency_fee:
                    txn.fee_funding += -balance
                else:
                    txn.funding += -balance
                balance = ZERO
            self.cash[currency] = balance
            self.changed_cash.add(currency)
