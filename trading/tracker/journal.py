"""The trade journal: fills matched into round trips by the portfolio ledger's own FIFO lots, and the daily
P&L curve they make. Pure functions over `JournalFill`s (real fills and a replay's simulated ones alike).

Each buy opens a lot (`portfolios.ledger.PositionState`, through trading.ledger); a sell closes the oldest
lots first. Every (lot, closing fill) pair is one round trip: entry = the lot's fill, exit = the closing
fill, size = the units closed, P&L = the closing fill's share of the proceeds (net of its fee) minus the
lot's share of the cost (its fee included), exactly the realized P&L the portfolio ledger books. Lots still
open at the end are open trades, valued at the mark price. Each FIFO book is one bot (or one playbook tag in
one portfolio, or one replay) and one pair, as the positions they trade are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from core.money import ZERO
from trading.choices import OrderSide
from trading.ledger import PositionState, share


@dataclass(frozen=True)
class JournalFill:
    at: datetime
    symbol: str
    base: str
    quote: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal = ZERO
    fee_currency: str = ""
    reason: str = ""
    regime: str = ""
    book: str = ""
    ref: str = ""

    @property
    def quote_fee(self) -> Decimal:
        """The fee in the quote currency (a base-currency fee at the fill's price; a third currency's is not
        in the P&L, as in the portfolio ledger)."""
        if not self.fee:
            return ZERO
        currency = self.fee_currency or self.quote
        if currency == self.quote:
            return self.fee
        if currency == self.base:
            return self.fee * self.price
        return ZERO

    @property
    def base_fee(self) -> Decimal:
        return self.fee if self.fee and self.fee_currency == self.base else ZERO


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    direction: str  # "long" or "short"
    quantity: Decimal
    entry_at: datetime
    entry_price: Decimal
    entry_reason: str
    regime: str  # at entry
    cost: Decimal  # what the entry cost, its fee included (for a short: minus what it brought in)
    fees: Decimal
    pnl: Decimal  # realized for a closed trade, unrealized at the mark for an open one
    exit_at: datetime | None = None
    exit_price: Decimal | None = None
    exit_reason: str = ""
    mark_price: Decimal | None = None

    @property
    def closed(self) -> bool:
        return self.exit_at is not None

    @property
    def return_pct(self) -> Decimal | None:
        return self.pnl / abs(self.cost) * 100 if self.cost else None

    @property
    def duration(self) -> timedelta | None:
        return self.exit_at - self.entry_at if self.exit_at else None


@dataclass
class Journal:
    trips: list[RoundTrip]
    pnl_by_day: list[tuple[date, Decimal]]
    capital: Decimal  # the most the strategy ever had in open positions (their cost), the base of its returns
    exposure_intervals: list[tuple[datetime, datetime]]
    start: datetime | None
    end: datetime | None
    fills: int = 0
    realized: Decimal = ZERO
    unrealized: Decimal = ZERO

    @property
    def closed(self) -> list[RoundTrip]:
        return [t for t in self.trips if t.closed]

    @property
    def open(self) -> list[RoundTrip]:
        return [t for t in self.trips if not t.closed]


@dataclass
class _Day:
    realized: Decimal = ZERO
    holdings: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # symbol -> (units, cost)
    prices: dict[str, Decimal] = field(default_factory=dict)  # the last traded price of each symbol


PriceAt = Callable[[str, date], Decimal | None]


def journal_build(
    fills: Sequence[JournalFill], *, marks: dict[str, Decimal], closes: PriceAt, end: datetime | None = None
) -> Journal:
    """Round trips, the daily P&L (realized + open positions at each UTC day's close, from `closes`, or the
    last traded price when a day has no close) and the exposure, from `fills` up to `end`."""
    ordered = sorted(fills, key=lambda f: (f.at, f.ref))
    books: dict[tuple[str, str], PositionState] = {}
    trips: list[RoundTrip] = []
    realized = ZERO
    capital = ZERO
    last_price: dict[str, Decimal] = {}
    days: dict[date, _Day] = {}
    intervals: list[tuple[datetime, datetime]] = []
    opened_since: datetime | None = None
    for fill in ordered:
        position = books.setdefault((fill.book, fill.symbol), PositionState(instrument=fill.symbol))
        if fill.side == OrderSide.BUY:
            units = fill.quantity - fill.base_fee
            cash_in = -(fill.quantity * fill.price + (fill.quote_fee if not fill.base_fee else ZERO))
        else:
            units = -(fill.quantity + fill.base_fee)
            cash_in = fill.quantity * fill.price - (fill.quote_fee if not fill.base_fee else ZERO)
        before = [(lot, lot.quantity_open, lot.cost_open) for lot in position.open_lots]
        realized += position.trade(units=units, cash_in=cash_in, opening=fill, at=fill.at)
        remaining, cash_remaining, total = abs(units), cash_in, abs(units)
        for lot, quantity_before, cost_before in before:
            take = abs(quantity_before - lot.quantity_open)
            if not take:
                continue
            # The ledger's own split: the part that finishes the fill takes the rest of its cash.
            cash_part = cash_remaining if take == remaining else share(cash_in, take, total)
            cost_part = cost_before - lot.cost_open
            remaining -= take
            cash_remaining -= cash_part
            entry: JournalFill = lot.opening  # type: ignore[assignment]
            trips.append(RoundTrip(
                symbol=fill.symbol,
                direction="long" if quantity_before > 0 else "short",
                quantity=take,
                entry_at=entry.at,
                entry_price=entry.price,
                entry_reason=entry.reason,
                regime=entry.regime,
                cost=cost_part,
                fees=share(entry.quote_fee, take, abs(lot.quantity)) + share(fill.quote_fee, take, total),
                pnl=cash_part - cost_part,
                exit_at=fill.at,
                exit_price=fill.price,
                exit_reason=fill.reason,
            ))
        last_price[fill.symbol] = fill.price
        open_cost = sum((abs(lot.cost_open) for book in books.values() for lot in book.open_lots), ZERO)
        capital = max(capital, open_cost)
        any_open = any(book.open_lots for book in books.values())
        if any_open and opened_since is None:
            opened_since = fill.at
        elif not any_open and opened_since is not None:
            intervals.append((opened_since, fill.at))
            opened_since = None
        days[fill.at.date()] = _Day(realized=realized, holdings=_holdings(books), prices=dict(last_price))
    unrealized = ZERO
    for (_, symbol), position in books.items():
        mark = marks.get(symbol) or last_price.get(symbol)
        for lot in position.open_lots:
            entry = lot.opening  # type: ignore[assignment]
            pnl = lot.quantity_open * mark - lot.cost_open if mark is not None else ZERO
            unrealized += pnl
            trips.append(RoundTrip(
                symbol=symbol,
                direction="long" if lot.quantity_open > 0 else "short",
                quantity=abs(lot.quantity_open),
                entry_at=entry.at,
                entry_price=entry.price,
                entry_reason=entry.reason,
                regime=entry.regime,
                cost=lot.cost_open,
                fees=share(entry.quote_fee, abs(lot.quantity_open), abs(lot.quantity)),
                pnl=pnl,
                mark_price=mark,
            ))
    start = ordered[0].at if ordered else None
    if end is None and ordered:
        end = ordered[-1].at if opened_since is None else max(ordered[-1].at, datetime.now(ordered[-1].at.tzinfo))
    if opened_since is not None and end is not None:
        intervals.append((opened_since, end))
    trips.sort(key=lambda t: (t.entry_at, t.exit_at or datetime.max.replace(tzinfo=t.entry_at.tzinfo)))
    return Journal(
        trips=trips,
        pnl_by_day=_daily(days, closes=closes, last_day=(end - timedelta(microseconds=1)).date() if end else None),
        capital=capital,
        exposure_intervals=intervals,
        start=start,
        end=end,
        fills=len(ordered),
        realized=realized,
        unrealized=unrealized,
    )


def _holdings(books: dict[tuple[str, str], PositionState]) -> dict[str, tuple[Decimal, Decimal]]:
    held: dict[str, tuple[Decimal, Decimal]] = {}
    for (_, symbol), position in books.items():
        if position.open_lots:
            units, cost = held.get(symbol, (ZERO, ZERO))
            held[symbol] = (units + position.quantity, cost + position.cost_basis)
    return held


def _daily(days: dict[date, _Day], *, closes: PriceAt, last_day: date | None) -> list[tuple[date, Decimal]]:
    """P&L at each UTC day's close from the first fill's day to `last_day`, carrying the state forward."""
    if not days:
        return []
    day = min(days)
    last_day = max(last_day or max(days), max(days))
    state = _Day()
    last_close: dict[str, Decimal] = {}
    out = []
    while day <= last_day:
        state = days.get(day, state)
        pnl = state.realized
        for symbol, (units, cost) in state.holdings.items():
            close = closes(symbol, day) or last_close.get(symbol) or state.prices[symbol]
            last_close[symbol] = close
            pnl += units * close - cost
        out.append((day, pnl))
        day += timedelta(days=1)
    return out
