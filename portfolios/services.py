"""Writes: portfolios, transactions (with their FIFO lots, positions and cash), snapshots, watchlists.

Every write that spans rows runs in one database transaction, locks the portfolio row first so two
writers to the same portfolio queue up, writes an audit row, and pushes the new figures to the user's
open pages after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainError
from core.jobs import task_enqueue
from core.money import ZERO, decimal_parse, plain
from portfolios.choices import (
    AMOUNT,
    PRICE,
    QUANTITY,
    TRADE_KINDS,
    TRANSFER_KINDS,
    PortfolioKind,
    TransactionKind,
    TransactionSource,
)
from portfolios.ledger import Ledger, LotState, PositionState, mul
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

CURRENCY_RE = re.compile(r"^[A-Z0-9]{2,16}$")
# Clocks differ a little; a transaction dated further ahead than this is a typo.
FUTURE_TOLERANCE = timedelta(minutes=5)
DERIVED_FIELDS = ["realized_pnl", "flow_amount", "flow_currency", "funding", "fee_funding"]


# --- portfolios ---------------------------------------------------------------------------------------


@transaction.atomic
def portfolio_create(
    *,
    user,
    name: str,
    base_currency: str,
    kind: str = PortfolioKind.MANUAL,
    allow_short: bool = False,
    exchange_connection_id: int | None = None,
    request: HttpRequest | None = None,
) -> Portfolio:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the portfolio a name.", field="name")
    if kind not in PortfolioKind.values:
        raise DomainError("Choose manual, paper or exchange.", field="kind")
    base_currency = currency_clean(base_currency, field="base_currency")
    if Portfolio.objects.filter(user=user, name__iexact=name).exists():
        raise DomainError(f"You already have a portfolio called “{name}”.", field="name")
    portfolio = Portfolio.objects.create(
        user=user,
        name=name,
        base_currency=base_currency,
        kind=kind,
        allow_short=allow_short,
        exchange_connection_id=exchange_connection_id,
    )
    audit_record(
        action="portfolio.created",
        user=user,
        actor=request_actor(user, request),
        target=portfolio,
        after={"name": name, "base_currency": base_currency, "kind": kind, "allow_short": allow_short},
        request=request,
    )
    return portfolio


@transaction.atomic
def portfolio_delete(*, user, portfolio: Portfolio, request: HttpRequest | None = None) -> None:
    """Delete a portfolio with its transactions and snapshots (refused while other records point at it)."""
    ensure_owner(user, portfolio)
    before = {"name": portfolio.name, "transactions": portfolio.transactions.count()}
    try:
        with transaction.atomic():
            portfolio.delete()
    except ProtectedError:
        raise DomainError(
            f"“{portfolio.name}” has orders in Trading and cannot be deleted; it keeps their history."
        ) from None
    audit_record(
        action="portfolio.deleted",
        user=user,
        actor=request_actor(user, request),
        target=None,
        before=before,
        request=request,
    )


# --- transactions -------------------------------------------------------------------------------------


def transaction_build(
    *,
    portfolio: Portfolio,
    kind: str,
    instrument=None,
    quantity,
    price=None,
    fee=ZERO,
    fee_currency: str = "",
    executed_at: datetime,
    external_id: str | None = None,
    note: str = "",
    currency: str | None = None,
    source: str = TransactionSource.MANUAL,
) -> Transaction:
    """Check one transaction's fields and return it unsaved. Raises DomainError naming the field."""
    if kind not in TransactionKind.values:
        raise DomainError(
            "Choose buy, sell, deposit, withdrawal, fee, transfer in or transfer out.", field="kind"
        )
    quantity = decimal_parse(quantity, field="quantity", sign="positive", **QUANTITY)
    fee = decimal_parse(fee if fee not in (None, "") else ZERO, field="fee", sign="zero_or_more", **AMOUNT)
    price = decimal_parse(price, field="price", sign="zero_or_more", **PRICE) if price not in (None, "") else None
    if executed_at is None:
        raise DomainError("Give the date and time of the transaction.", field="executed_at")
    if timezone.is_naive(executed_at):
        raise DomainError("The time needs a time zone.", field="executed_at")
    if executed_at > timezone.now() + FUTURE_TOLERANCE:
        raise DomainError("The date is in the future.", field="executed_at")

    if kind in TRADE_KINDS or (kind in TRANSFER_KINDS and instrument is not None):
        if instrument is None:
            raise DomainError("Choose the instrument traded.", field="instrument")
        if kind in TRADE_KINDS and (price is None or price <= 0):
            raise DomainError("Give the price per unit (greater than zero).", field="price")
        if kind == TransactionKind.TRANSFER_IN and price is None:
            raise DomainError(
                "Give the price per unit when the coins came in: it becomes their cost basis.", field="price"
            )
        currency = instrument.quote
        default_fee_currency = instrument.quote
    else:
        if instrument is not None:
            raise DomainError(
                f"A {TransactionKind(kind).label.lower()} moves cash, not an instrument.", field="instrument"
            )
        if price is not None:
            raise DomainError("Cash movements have no price; put the amount in quantity.", field="price")
        currency = currency_clean(currency or portfolio.base_currency, field="currency")
        default_fee_currency = currency
    fee_currency = currency_clean(fee_currency, field="fee_currency") if fee_currency else ""
    if fee and not fee_currency:
        fee_currency = default_fee_currency
    if not fee:
        fee_currency = fee_currency or ""
    external_id = (external_id or "").strip() or None
    if external_id and len(external_id) > 128:
        raise DomainError("The external id is longer than 128 characters.", field="external_id")
    note = (note or "").strip()
    if len(note) > 500:
        raise DomainError("Keep the note under 500 characters.", field="note")
    return Transaction(
        user_id=portfolio.user_id,
        portfolio=portfolio,
        kind=kind,
        instrument=instrument,
        currency=currency,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency,
        executed_at=executed_at,
        external_id=external_id,
        note=note,
        source=source,
    )


@transaction.atomic
def transaction_record(
    *,
    user,
    portfolio: Portfolio,
    kind: str,
    instrument=None,
    quantity,
    price=None,
    fee=ZERO,
    fee_currency: str = "",
    executed_at: datetime,
    external_id: str | None = None,
    note: str = "",
    currency: str | None = None,
    source: str = TransactionSource.MANUAL,
    request: HttpRequest | None = None,
) -> Transaction:
    """Record one transaction and update lots, positions and cash with it, all or nothing.

    Idempotent on (portfolio, external_id): recording an id that is already there returns the existing
    transaction and changes nothing. Raises DomainError (with the field) for anything the user can fix,
    including a sell of more than is held in a portfolio without shorting.
    """
    ensure_owner(user, portfolio)
    portfolio = portfolio_lock(portfolio)
    if external_id:
        existing = Transaction.objects.filter(
            portfolio=portfolio, external_id=str(external_id).strip()
        ).first()
        if existing is not None:
            return existing
    txn = transaction_build(
        portfolio=portfolio,
        kind=kind,
        instrument=instrument,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency,
        executed_at=executed_at,
        external_id=external_id,
        note=note,
        currency=currency,
        source=source,
    )
    _ledger_commit(portfolio=portfolio, new=[txn])
    audit_record(
        action="portfolio.transaction_recorded",
        user=user,
        actor=request_actor(user, request),
        actor_label="" if request_actor(user, request) else f"{source} for {user.email}",
        target=txn,
        after=transaction_summary(txn),
        request=request,
    )
    push_after_commit(portfolio)
    return txn


@dataclass(frozen=True)
class RowProblem:
    index: int  # position in the input sequence
    message: str
    field: str | None = None


def transactions_apply_many(
    *, portfolio: Portfolio, transactions: Sequence[Transaction], dry_run: bool
) -> list[RowProblem]:
    """Apply many built transactions at once (CSV import): every row checked, all written or none.

    Returns each row's problem (an oversell, say); writes only when there are none and dry_run is
    false. The caller holds the portfolio lock (see `transactions_import`).
    """
    return _ledger_commit(portfolio=portfolio, new=list(transactions), collect=True, write=not dry_run)


@transaction.atomic
def transaction_delete(*, user, txn: Transaction, request: HttpRequest | None = None) -> None:
    """Remove a transaction and replay the portfolio's history without it (refused if that oversells)."""
    portfolio = txn.portfolio
    ensure_owner(user, portfolio)
    portfolio = portfolio_lock(portfolio)
    before = transaction_summary(txn)
    txn.delete()
    try:
        _ledger_commit(portfolio=portfolio, new=[], rebuild=True)
    except DomainError as exc:
        raise DomainError(f"Deleting this transaction would break a later one: {exc}") from exc
    audit_record(
        action="portfolio.transaction_deleted",
        user=user,
        actor=request_actor(user, request),
        target=portfolio,
        before=before,
        request=request,
    )
    push_after_commit(portfolio)


@transaction.atomic
def portfolio_rebuild(*, portfolio: Portfolio) -> None:
    """Replay every transaction from the start (after a fix to the accounting rules, say)."""
    portfolio = portfolio_lock(portfolio)
    _ledger_commit(portfolio=portfolio, new=[], rebuild=True)


def transaction_summary(txn: Transaction) -> dict:
    return {
        "id": txn.pk,
        "portfolio": txn.portfolio_id,
        "kind": txn.kind,
        "instrument": txn.instrument.symbol if txn.instrument is not None else None,
        "currency": txn.currency,
        "quantity": plain(txn.quantity),
        "price": plain(txn.price) if txn.price is not None else None,
        "fee": plain(txn.fee),
        "fee_currency": txn.fee_currency,
        "executed_at": txn.executed_at.isoformat(),
        "external_id": txn.external_id,
        "realized_pnl": plain(txn.realized_pnl),
    }


# --- the ledger, loaded and saved -------------------------------------------------------------------


def _ledger_commit(
    *,
    portfolio: Portfolio,
    new: list[Transaction],
    rebuild: bool = False,
    collect: bool = False,
    write: bool = True,
) -> list[RowProblem]:
    """Apply `new` on top of the stored state and save the result.

    New transactions dated at or after the latest stored one are applied to the stored lots of their
    instruments (the common case). One dated earlier changes the FIFO order of what follows, so the
    whole history is replayed, with the new ones merged in by date. With `collect`, rows that fail are
    reported (and skipped, so later rows are still checked) instead of raising.
    """
    latest = (
        Transaction.objects.filter(portfolio=portfolio)
        .exclude(pk__in=[t.pk for t in new if t.pk])
        .order_by("-executed_at", "-id")
        .values_list("executed_at", flat=True)
        .first()
    )
    replay = rebuild or (latest is not None and new and min(t.executed_at for t in new) < latest)
    ordered_new = sorted(enumerate(new), key=lambda item: item[1].executed_at)
    ledger = Ledger(allow_short=portfolio.allow_short, strict_cash=portfolio.strict_cash)
    problems: list[RowProblem] = []
    existing: list[Transaction] = []
    if replay:
        existing = list(
            Transaction.objects.filter(portfolio=portfolio)
            .select_related("instrument")
            .order_by("executed_at", "id")
        )
        sequence = _merge(existing, ordered_new)
    else:
        _ledger_load(
            ledger, portfolio=portfolio, instrument_ids={t.instrument_id for t in new if t.instrument_id}
        )
        sequence = [(index, txn) for index, txn in ordered_new]
    accepted: list[Transaction] = []
    for index, txn in sequence:
        try:
            ledger.apply(txn)
        except DomainError as exc:
            if not collect:
                raise
            if index is None:
                problems.append(RowProblem(index=-1, message=_existing_problem(txn, exc)))
            else:
                problems.append(RowProblem(index=index, message=str(exc), field=exc.field))
            continue
        if index is not None:
            accepted.append(txn)
    if problems or not write:
        return sorted(problems, key=lambda p: p.index)
    _ledger_save(ledger, portfolio=portfolio, new=accepted, replayed=existing if replay else None)
    return []


def _merge(existing: list[Transaction], ordered_new: list[tuple[int, Transaction]]):
    """Stored transactions by (executed_at, id), each new one after the stored ones of the same instant."""
    keyed: list[tuple[tuple[datetime, int, int], int | None, Transaction]] = [
        ((txn.executed_at, 0, position), None, txn) for position, txn in enumerate(existing)
    ]
    keyed += [
        ((txn.executed_at, 1, position), index, txn) for position, (index, txn) in enumerate(ordered_new)
    ]
    keyed.sort(key=lambda item: item[0])
    return [(index, txn) for _, index, txn in keyed]


def _existing_problem(txn: Transaction, exc: DomainError) -> str:
    what = txn.instrument.symbol if txn.instrument is not None else txn.currency
    return (
        f"With these rows, your existing {txn.get_kind_display().lower()} of {plain(txn.quantity)} {what} "
        f"on {txn.executed_at:%Y-%m-%d %H:%M} no longer works: {exc}"
    )


def _ledger_load(ledger: Ledger, *, portfolio: Portfolio, instrument_ids: set[int]) -> None:
    positions = list(
        Position.objects.filter(portfolio=portfolio, instrument_id__in=instrument_ids).select_related("instrument")
    )
    lots = list(
        Lot.objects.filter(
            position__portfolio=portfolio, position__instrument_id__in=instrument_ids, closed_at__isnull=True
        ).order_by("opened_at", "id")
    )
    cash = list(CashBalance.objects.filter(portfolio=portfolio))
    ledger_fill(ledger, positions=positions, lots=lots, cash=cash)


def ledger_fill(ledger: Ledger, *, positions: Sequence[Position], lots: Sequence[Lot], cash: Sequence[CashBalance]):
    """Put stored rows into `ledger`: positions (with their instrument), their open lots oldest first, cash."""
    by_id = {}
    for position in positions:
        by_id[position.pk] = ledger.positions[position.instrument_id] = PositionState(
            instrument=position.instrument,
            quantity=position.quantity,
            cost_basis=position.cost_basis,
            realized_pnl=position.realized_pnl,
            fees_paid=position.fees_paid,
            last_price=position.last_price,
            pk=position.pk,
        )
    for lot in lots:
        by_id[lot.position_id].open_lots.append(
            LotState(
                opening=lot.opening_transaction_id,
                opened_at=lot.opened_at,
                quantity=lot.quantity,
                quantity_open=lot.quantity_open,
                cost_open=lot.cost_open,
                pk=lot.pk,
            )
        )
    ledger.cash = {row.currency: row.amount for row in cash}


@dataclass
class LedgerRows:
    """What saving a ledger writes: positions to create and to update, lots likewise, cash to upsert."""

    positions_new: list[Position]
    positions_changed: list[Position]
    lots_new: list[Lot]
    lots_changed: list[Lot]
    cash: list[CashBalance]


POSITION_FIELDS = ["quantity", "cost_basis", "realized_pnl", "fees_paid", "last_price", "opened_at", "updated_at"]
LOT_FIELDS = ["quantity_open", "cost_open", "closed_at"]


def ledger_positions(ledger: Ledger, *, portfolio: Portfolio, stored: dict[int, int]) -> list[Position]:
    """The position rows of `ledger`; `stored` maps instrument id to the pk of rows already in the table."""
    now = timezone.now()
    return [
        Position(
            pk=state.pk or stored.get(instrument_id),
            user_id=portfolio.user_id,
            portfolio=portfolio,
            instrument_id=instrument_id,
            quantity=state.quantity,
            cost_basis=state.cost_basis,
            realized_pnl=state.realized_pnl,
            fees_paid=state.fees_paid,
            last_price=state.last_price,
            opened_at=state.opened_at,
            updated_at=now,
        )
        for instrument_id, state in ledger.positions.items()
    ]


def ledger_rows(
    ledger: Ledger, *, portfolio: Portfolio, positions: list[Position], replayed: bool, cash: set[str]
) -> LedgerRows:
    """The rows that store `ledger`, given its position rows (which must have their pk by now)."""
    by_instrument = {row.instrument_id: row for row in positions}
    lots_new: list[Lot] = []
    lots_changed: list[Lot] = []
    for instrument_id, state in ledger.positions.items():
        for lot in state.changed_lots:
            row = Lot(
                pk=None if replayed else lot.pk,
                user_id=portfolio.user_id,
                portfolio=portfolio,
                position=by_instrument[instrument_id],
                opened_at=lot.opened_at,
                quantity=lot.quantity,
                quantity_open=lot.quantity_open,
                cost_open=lot.cost_open,
                closed_at=lot.closed_at,
            )
            if isinstance(lot.opening, Transaction):
                row.opening_transaction = lot.opening
            else:
                row.opening_transaction_id = lot.opening
            (lots_changed if row.pk else lots_new).append(row)
    return LedgerRows(
        positions_new=[row for row in positions if row.pk is None],
        positions_changed=[row for row in positions if row.pk is not None],
        lots_new=lots_new,
        lots_changed=lots_changed,
        cash=[
            CashBalance(user_id=portfolio.user_id, portfolio=portfolio, currency=c, amount=ledger.cash[c])
            for c in sorted(cash)
        ],
    )


def _ledger_save(
    ledger: Ledger, *, portfolio: Portfolio, new: list[Transaction], replayed: list[Transaction] | None
) -> None:
    try:
        with transaction.atomic():
            Transaction.objects.bulk_create(new)
    except IntegrityError as exc:
        raise DomainError(
            "A transaction with this external id is already recorded.", field="external_id"
        ) from exc
    if replayed:
        Transaction.objects.bulk_update(replayed, DERIVED_FIELDS, batch_size=2000)

    stored = dict(Position.objects.filter(portfolio=portfolio).values_list("instrument_id", "pk"))
    if replayed is not None:
        Lot.objects.filter(portfolio=portfolio).delete()
        Position.objects.filter(portfolio=portfolio).exclude(
            instrument_id__in=list(ledger.positions)
        ).delete()
        CashBalance.objects.filter(portfolio=portfolio).exclude(currency__in=list(ledger.cash)).delete()
    positions = ledger_positions(ledger, portfolio=portfolio, stored=stored)
    changed = [row for row in positions if row.pk is not None]
    Position.objects.bulk_create([row for row in positions if row.pk is None])
    rows = ledger_rows(
        ledger,
        portfolio=portfolio,
        positions=positions,
        replayed=replayed is not None,
        cash=set(ledger.cash) if replayed is not None else ledger.changed_cash,
    )
    Position.objects.bulk_update(changed, POSITION_FIELDS, batch_size=1000)
    Lot.objects.bulk_create(rows.lots_new, batch_size=2000)
    Lot.objects.bulk_update(rows.lots_changed, LOT_FIELDS, batch_size=2000)
    if rows.cash:
        CashBalance.objects.bulk_create(
            rows.cash,
            update_conflicts=True,
            unique_fields=["portfolio", "currency"],
            update_fields=["amount"],
        )


# --- snapshots ----------------------------------------------------------------------------------------


@transaction.atomic
def snapshot_take(
    *, portfolio: Portfolio, day: date, quotes=None, taken_at: datetime | None = None
) -> Snapshot:
    """Record the portfolio's value now as the close of `day` (UTC). Idempotent: the first one of a day stays."""
    from portfolios.selectors import (
        flows_between,
        flows_cumulative,
        flows_decode,
        flows_encode,
        portfolio_valuation,
        snapshot_latest,
    )

    existing = Snapshot.objects.filter(portfolio=portfolio, date=day).first()
    if existing is not None:
        return existing
    valuation = portfolio_valuation(portfolio=portfolio, quotes=quotes)
    previous = snapshot_latest(portfolio=portfolio, before=day)
    flows = flows_cumulative(portfolio=portfolio)
    net_flow = flows_between(
        portfolio=portfolio,
        before=flows_decode(previous.flows) if previous else {},
        after=flows,
        rates=valuation.rates,
    )
    return _snapshot_save(
        portfolio=portfolio,
        day=day,
        taken_at=taken_at or timezone.now(),
        valuation=valuation,
        net_flow=net_flow,
        flows=flows_encode(flows),
    )


def _snapshot_save(
    *, portfolio: Portfolio, day: date, taken_at: datetime, valuation, net_flow, flows
) -> Snapshot:
    snapshot, _ = Snapshot.objects.get_or_create(
        portfolio=portfolio,
        date=day,
        defaults={
            "user_id": portfolio.user_id,
            "taken_at": taken_at,
            "value": valuation.total,
            "cash_value": valuation.cash_value,
            "positions_value": valuation.positions_value,
            "unrealized_pnl": valuation.unrealized_pnl,
            "realized_pnl": valuation.realized_pnl,
            "net_flow": net_flow,
            "flows": flows,
        },
    )
    return snapshot


@dataclass(frozen=True)
class _CashRow:
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class BackfillResult:
    missing: int  # past days without a snapshot before the run
    written: int
    candles: bool = False  # whether any stored candle covers the holdings at all


def snapshot_backfill(
    *, portfolio: Portfolio, today: date | None = None, max_days: int = 366
) -> BackfillResult:
    """Fill missing daily closes from the stored daily candles.

    The transactions are replayed (in memory) up to the end of each missing day and the holdings valued
    at that day's candle closes. A day on which any holding, or any conversion to the base currency,
    has no candle is left out: the curve shows no point rather than an invented one.
    """
    from marketdata.selectors import candle_list, instrument_list
    from marketdata.types import QuoteSnapshot
    from portfolios.selectors import flows_decode, flows_encode
    from portfolios.valuation import conversion_rate, conversion_symbols, value_portfolio

    today = today or timezone.now().date()
    history = list(
        Transaction.objects.filter(portfolio=portfolio)
        .select_related("instrument")
        .order_by("executed_at", "id")
    )
    if not history:
        return BackfillResult(missing=0, written=0)
    first_day = max(history[0].executed_at.astimezone(UTC).date(), today - timedelta(days=max_days))
    stored = {s.date: s for s in Snapshot.objects.filter(portfolio=portfolio, date__lt=today)}
    days = [first_day + timedelta(days=n) for n in range((today - first_day).days)]
    missing = [day for day in days if day not in stored]
    if not missing:
        return BackfillResult(missing=0, written=0)

    listed = set(instrument_list(active=None).values_list("symbol", flat=True))
    currencies = {t.currency for t in history} | {t.fee_currency for t in history if t.fee_currency}
    symbols = {t.instrument.symbol for t in history if t.instrument is not None}
    symbols |= conversion_symbols(currencies, portfolio.base_currency) & listed
    closes: dict[str, dict[date, Decimal]] = {}
    for symbol in symbols:
        bars = candle_list(symbol=symbol, timeframe="1d", limit=min(len(days) + 1, 5000))
        closes[symbol] = {bar.open_time.astimezone(UTC).date(): bar.close for bar in bars}

    ledger = Ledger(allow_short=portfolio.allow_short, strict_cash=portfolio.strict_cash)
    flows: dict[str, Decimal] = {}
    previous_flows: dict[str, Decimal] = {}
    position = 0
    written = 0
    for day in days:
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        while position < len(history) and history[position].executed_at < end:
            txn = history[position]
            ledger.apply(txn)
            if txn.flow_amount:
                flows[txn.flow_currency] = flows.get(txn.flow_currency, ZERO) + txn.flow_amount
            if txn.fee_funding:
                flows[txn.fee_currency] = flows.get(txn.fee_currency, ZERO) + txn.fee_funding
            position += 1
        if day in stored:
            previous_flows = flows_decode(stored[day].flows)
            continue
        quotes = {
            symbol: QuoteSnapshot(
                symbol=symbol,
                price=by_day[day],
                bid=None,
                ask=None,
                change_pct=None,
                updated_at=end,
                stale=False,
            )
            for symbol, by_day in closes.items()
            if day in by_day
        }
        held = [state for state in ledger.positions.values() if state.quantity]
        if any(state.instrument.symbol not in quotes for state in held):
            continue
        cash = [_CashRow(currency=c, amount=a) for c, a in ledger.cash.items()]
        valuation = value_portfolio(
            portfolio=portfolio, positions=list(ledger.positions.values()), cash=cash, quotes=quotes, at=end
        )
        changes = {
            c: flows.get(c, ZERO) - previous_flows.get(c, ZERO) for c in set(flows) | set(previous_flows)
        }
        rates = {
            c: conversion_rate(c, portfolio.base_currency, quotes) for c, amount in changes.items() if amount
        }
        known = {c: rate for c, rate in rates.items() if rate is not None}
        if valuation.unpriced or len(known) < len(rates):
            continue
        net_flow = sum((mul(changes[c], rate) for c, rate in known.items()), ZERO)
        _snapshot_save(
            portfolio=portfolio,
            day=day,
            taken_at=end,
            valuation=valuation,
            net_flow=net_flow,
            flows=flows_encode(flows),
        )
        previous_flows = dict(flows)
        written += 1
    return BackfillResult(missing=len(missing), written=written, candles=any(closes.values()))


# --- watchlists ---------------------------------------------------------------------------------------


@transaction.atomic
def watchlist_create(*, user, name: str) -> Watchlist:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the watchlist a name.", field="name")
    if len(name) > 80:
        raise DomainError("Keep the name under 80 characters.", field="name")
    if Watchlist.objects.filter(user=user, name__iexact=name).exists():
        raise DomainError(f"You already have a watchlist called “{name}”.", field="name")
    return Watchlist.objects.create(user=user, name=name)


@transaction.atomic
def watchlist_add(*, user, watchlist: Watchlist, instrument) -> WatchlistItem:
    if watchlist.user_id != user.pk:
        raise DomainError("That watchlist is not yours.")
    item, _ = WatchlistItem.objects.get_or_create(
        watchlist=watchlist, instrument=instrument, defaults={"user_id": user.pk}
    )
    return item


@transaction.atomic
def watchlist_remove(*, user, watchlist: Watchlist, instrument_id: int) -> None:
    WatchlistItem.objects.filter(
        watchlist=watchlist, watchlist__user=user, instrument_id=instrument_id
    ).delete()


@transaction.atomic
def watchlist_delete(*, user, watchlist: Watchlist) -> None:
    Watchlist.objects.filter(pk=watchlist.pk, user=user).delete()


# --- helpers ------------------------------------------------------------------------------------------


def currency_clean(value: str | None, *, field: str) -> str:
    code = (value or "").strip().upper()
    if not CURRENCY_RE.match(code):
        raise DomainError("Use a currency code such as USDT, USD or BTC.", field=field)
    return code


def ensure_owner(user, portfolio: Portfolio) -> None:
    if portfolio.user_id != user.pk:
        raise DomainError("That portfolio is not yours.")


def portfolio_lock(portfolio: Portfolio) -> Portfolio:
    return Portfolio.objects.select_for_update().get(pk=portfolio.pk)


def request_actor(user, request: HttpRequest | None):
    if request is not None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        return request.user
    return None


def backfill_after_commit(portfolio: Portfolio, *, countdown: int = 0) -> None:
    """Draw the past equity curve in the background once the transactions are committed."""
    kwargs = {"portfolio_id": portfolio.pk, "user_id": portfolio.user_id}
    transaction.on_commit(lambda: task_enqueue("portfolios.backfill", kwargs=kwargs, countdown=countdown))


def push_after_commit(portfolio: Portfolio) -> None:
    from portfolios.live import portfolio_push

    portfolio_id, user_id = portfolio.pk, portfolio.user_id
    transaction.on_commit(lambda: portfolio_push(portfolio_id=portfolio_id, user_id=user_id))
