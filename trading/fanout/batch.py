"""Executing plans on a venue that can batch (the paper exchange): every plan as its owner, a handful of
round trips, whether the chunk holds 250 plans or one (`services.plan_execute` is a batch of one).

A chunk of plans whose venue's adapter says `can_batch` (market orders fill from the quote the chunk holds,
without reading the database) is one database transaction on a `core.batch.TenantPipeline`, which sends
the statements of every plan together while each plan's own statements still run as its owner
(`app.user_id` set before them, so RLS checks every row read and written):

1. lock each plan with its bot and read its connection (FOR UPDATE, as the owner);
2. lock each portfolio and read its ledger for the pair (portfolios' `LedgerBatch`, through
   trading/ledger.py), its open orders and the owner's notification choices;
3. decide in memory with the order path's own functions: `order_validate` (precision, minimum
   notional, balance), the adapter's `reserved`, `buy_quantity_within` and `place_order` (the paper
   matching engine), `LedgerBatch.record` (`transaction_build` and the FIFO `Ledger`), `order_transition`,
   `bot_fill_account`, `notification_build`, `audit_entry`;
4. hand every row (order, fill, transaction, position, lots, cash, bot, audit, notification, plan) and
   the after-commit effects to a `core.unit_of_work.UnitOfWork`, which writes each plan's rows in one
   statement as its owner and, after the commit, dispatches the notifications and sends one
   `orders_filled` event and one live push of the portfolios whose owners have a dashboard open.

Idempotency: a plan executes only while pending under its row lock, the order id derives from the plan,
and the plan's new status commits with its order. Plans on a venue that cannot batch, a bot's second plan
in one chunk and the rare fill dated before its portfolio's latest transaction (a replay) are left over
for `plan_execute` after the batch. If the batch fails for any other reason it is rolled back as a whole
and every plan of the chunk goes through `plan_execute`, one by one; a database outage is raised for the
task to retry.

`blocked_notify_batch` does the same for the plans the regime gatekeeper blocked (a bearish signal can
block every subscriber at once): one notification per (signal, bot), written as the owner through the unit
of work, and one `executions_blocked` signal for the chunk.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from core.audit import audit_entry
from core.batch import Pending, TenantPipeline, instance_from_row, instances_from_row, model_select
from core.errors import DomainError
from core.models import AuditLog, Notification, NotificationDelivery
from core.notifications import notification_build
from core.unit_of_work import UnitOfWork
from marketdata.selectors import instrument_list
from trading import ledger
from trading.bots.services import BOT_FILL_FIELDS, bot_fill_account
from trading.choices import (
    OPEN_ORDER_STATUSES,
    BotStatus,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    PlanStatus,
)
from trading.exchanges.base import BatchAdapter, OrderRequest
from trading.exchanges.registry import adapter_class, adapter_for
from trading.fanout.plans import (
    BLOCKED_LINK,
    INSUFFICIENT_FOR_PLAN,
    NOTIFY_BLOCKED,
    blocked_message,
    blocked_payload,
    executions_blocked_send,
    plan_order_id,
    plan_skipped_notice,
)
from trading.ledger import LedgerBatch, NeedsReplay
from trading.models import BlockedExecution, Bot, ExchangeConnection, ExecutionPlan, Fill, Order
from trading.orders.services import (
    FILLED_LINK,
    NOTIFY_FILLED,
    order_filled_message,
    order_filled_payload,
    order_summary,
    order_transition,
    orders_filled_send,
)
from trading.orders.validation import order_validate

logger = structlog.get_logger(__name__)

DATABASE_OUTAGES = (OperationalError, InterfaceError)
PLAN_FIELDS = ["status", "reason", "order", "quantity", "executed_at"]

_PLAN_SQL = (
    f"SELECT {model_select(ExecutionPlan, 'p')}, {model_select(Bot, 'b')}, "  # noqa: S608 - model columns
    f"{model_select(ExchangeConnection, 'c')}, s.closed_at, u.email "
    "FROM trading_executionplan p "
    "JOIN trading_bot b ON b.id = p.bot_id "
    "JOIN trading_exchangeconnection c ON c.id = b.connection_id "
    "JOIN trading_signal s ON s.id = p.signal_id "
    "JOIN accounts_user u ON u.id = p.user_id "
    "WHERE p.id = %s FOR UPDATE OF p, b"
)


@dataclass
class _Item:
    ref: tuple[int, int]
    plan: ExecutionPlan
    bot: Bot
    connection: ExchangeConnection
    adapter: BatchAdapter
    instrument: object  # marketdata.Instrument
    owner_email: str
    signal_closed_at: datetime
    portfolio: object = None  # portfolios.Portfolio, locked by the ledger batch
    open_orders: Pending | None = None
    order: Order | None = None
    fill: Fill | None = None
    audit: AuditLog | None = None
    notification: Notification | None = None
    deliveries: list[NotificationDelivery] = field(default_factory=list)


@dataclass
class BatchOutcome:
    counts: Counter
    leftovers: list[tuple[int, int]]


def paper_plans_execute(refs: list[tuple[int, int]], *, quote, now: datetime | None = None) -> BatchOutcome:
    """Execute the plans among `refs` [(plan id, owner id)] whose venue can batch (the paper exchange) in
    one transaction (see the module)."""
    now = now or timezone.now()
    instruments = {instrument.pk: instrument for instrument in instrument_list(active=None)}
    counts: Counter = Counter()
    leftovers: list[tuple[int, int]] = []
    with transaction.atomic():
        pipe = TenantPipeline()
        locked = [(ref, pipe.execute(_PLAN_SQL, [ref[0]], user_id=ref[1])) for ref in refs]
        pipe.sync()
        items: list[_Item] = []
        bots: set[int] = set()
        for ref, pending in locked:
            rows = pending.rows()
            if not rows:
                counts["missing"] += 1
                continue
            plan, bot, connection, (closed_at, email) = instances_from_row(
                rows[0], ExecutionPlan, Bot, ExchangeConnection
            )
            if plan.status != PlanStatus.PENDING:
                counts[plan.status] += 1
            elif (
                not adapter_class(connection.venue).can_batch
                or bot.pk in bots
                or instruments[bot.instrument_id].symbol != quote.symbol
            ):
                # A venue that cannot batch, a second plan of one bot (plans of two signals, from the sweeper), or another
                # pair than the chunk's quote: the single path, after this batch (so a second plan sees the
                # first one's effect on the bot).
                leftovers.append(ref)
            else:
                bots.add(bot.pk)
                items.append(_Item(
                    ref=ref, plan=plan, bot=bot, connection=connection, adapter=adapter_for(connection),
                    instrument=instruments[bot.instrument_id], owner_email=email, signal_closed_at=closed_at,
                ))

        ledgers = ledger.ledger_batch(pipe)
        choices: dict[int, Pending] = {}
        kinds = [NOTIFY_FILLED, NOTIFY_BLOCKED]
        batchable = []
        for item in items:
            user_id = item.plan.user_id
            try:
                ledgers.load(portfolio_id=item.bot.portfolio_id, user_id=user_id, instrument=item.instrument)
            except ValueError:  # a second pair on the same portfolio in this chunk: the single path
                leftovers.append(item.ref)
                continue
            item.open_orders = pipe.select(
                Order, "portfolio_id = %s AND connection_id = %s AND status = ANY(%s)",
                [item.bot.portfolio_id, item.connection.pk, list(OPEN_ORDER_STATUSES)], user_id=user_id,
            )
            if user_id not in choices:
                choices[user_id] = pipe.execute(
                    "SELECT kind, channel, enabled FROM core_notificationpreference WHERE user_id = %s AND kind = ANY(%s)",
                    [user_id, kinds], user_id=user_id,
                )
            batchable.append(item)
        # Sent, and the transaction back to acting as nobody while we decide: anything that might query
        # the database on the way (a notification channel's `available`, say) sees nothing rather than the
        # last owner's rows.
        pipe.close()
        preferences = {user_id: _choices(pending.rows()) for user_id, pending in choices.items()}

        done: list[_Item] = []
        for item in batchable:
            item.portfolio = ledgers.portfolio(item.bot.portfolio_id)
            if item.portfolio is None:  # the bot's portfolio is not its owner's: the single path refuses it
                leftovers.append(item.ref)
                continue
            try:
                _decide(
                    item, ledgers=ledgers, quote=quote, now=now, preferences=preferences[item.plan.user_id],
                    instruments=instruments,
                )
            except NeedsReplay:
                leftovers.append(item.ref)
                continue
            counts[item.plan.status] += 1
            done.append(item)

        uow = UnitOfWork(pipe)
        _write(uow, ledgers, done)
        uow.flush()
    return BatchOutcome(counts=counts, leftovers=leftovers)


def _choices(rows) -> dict[str, dict[str, bool]]:
    by_kind: dict[str, dict[str, bool]] = {}
    for kind, channel, enabled in rows:
        by_kind.setdefault(kind, {})[channel] = enabled
    return by_kind


def _decide(item: _Item, *, ledgers: LedgerBatch, quote, now: datetime, preferences, instruments) -> None:
    """What executing this plan does, in memory (the rows are handed to the unit of work by `_write`)."""
    plan, bot, instrument = item.plan, item.bot, item.instrument
    plan.executed_at = now
    lag = (now - item.signal_closed_at).total_seconds()
    if lag > settings.TRADING_SIGNAL_MAX_LAG_SECONDS:
        plan.status, plan.reason = PlanStatus.SKIPPED, f"Not executed: the signal was {int(lag)}s old (stale)."
        return
    if bot.status != BotStatus.ENABLED:
        plan.status, plan.reason = PlanStatus.SKIPPED, "The bot was paused before it could act."
        return
    owner = get_user_model()(pk=plan.user_id, email=item.owner_email)
    open_orders = item.open_orders.instances()
    adapter = item.adapter
    quantity, available, held = plan.quantity, None, None
    if plan.side == OrderSide.BUY:
        reserved = adapter.reserved(
            [o for o in open_orders if o.side == OrderSide.BUY and instruments[o.instrument_id].quote == instrument.quote],
            side=OrderSide.BUY,
        )
        available = ledgers.cash(portfolio=item.portfolio, currency=instrument.quote) - reserved
        quantity = adapter.buy_quantity_within(
            wanted=quantity, price=quote.ask or quote.price, available=available,
            precision=instrument.quantity_precision,
        )
    else:
        reserved = adapter.reserved(
            [o for o in open_orders if o.side == OrderSide.SELL and o.instrument_id == instrument.pk],
            side=OrderSide.SELL,
        )
        held = ledgers.holding(portfolio=item.portfolio, instrument=instrument) - reserved
    try:
        if quantity <= 0:
            raise DomainError(INSUFFICIENT_FOR_PLAN)
        check = order_validate(
            user=owner, portfolio=item.portfolio, connection=item.connection, symbol=instrument.symbol,
            side=plan.side, type=OrderType.MARKET, quantity=quantity, quote=quote, available=available, held=held,
            instrument=instrument,
        )
        order = Order(
            id=plan_order_id(plan.pk), user_id=plan.user_id, connection=item.connection,
            portfolio=item.portfolio, instrument=instrument, bot=bot, source=OrderSource.BOT, side=plan.side,
            type=OrderType.MARKET, quantity=check.quantity,
        )
        update = adapter.place_order(
            OrderRequest(
                client_order_id=order.client_order_id, symbol=instrument.symbol, side=plan.side,
                type=OrderType.MARKET, quantity=check.quantity,
            ),
            quote=quote, instrument=instrument,
        )
        [reported] = update.fills
        ledger.fill_record_in(
            ledgers, portfolio=item.portfolio, owner_email=item.owner_email,
            fill=ledger.fill_entry(order=order, fill=reported),
        )
    except DomainError as error:
        plan.status, plan.reason = PlanStatus.SKIPPED, str(error)[:300]
        item.notification, item.deliveries = notification_build(
            user=owner, **plan_skipped_notice(plan=plan, bot_name=bot.name, error=error),
            choices=preferences.get(NOTIFY_BLOCKED, {}),
        )
        return
    item.fill = Fill(
        user_id=plan.user_id, order=order, fill_id=reported.fill_id, quantity=reported.quantity, price=reported.price,
        fee=reported.fee, fee_currency=reported.fee_currency, executed_at=reported.executed_at,
    )
    order.filled_quantity = reported.quantity
    order.average_price = reported.price
    if reported.fee_currency == instrument.quote:
        order.fees_paid = reported.fee
    order.exchange_order_id = update.exchange_order_id
    order_transition(order, OrderStatus.FILLED, reason=update.reason)
    bot_fill_account(bot, side=plan.side, fill=item.fill, quote=instrument.quote)
    plan.status, plan.order, plan.quantity = PlanStatus.EXECUTED, order, quantity
    item.order = order
    item.audit = audit_entry(
        action="trading.order_placed", user=None, user_id=plan.user_id, target=order,
        after=order_summary(order),
    )
    item.notification, item.deliveries = notification_build(
        user=owner, kind=NOTIFY_FILLED, message=order_filled_message(order, bot_name=bot.name),
        link=FILLED_LINK, dedup_key=f"order-filled:{order.pk}",
        choices=preferences.get(NOTIFY_FILLED, {}),
    )


def _write(uow: UnitOfWork, ledgers: LedgerBatch, items: list[_Item]) -> None:
    """Hand every row of the decided plans to the unit of work, each plan's as its owner's, and the effects
    after the commit (the toasts, one `orders_filled` event, one live push of the portfolios)."""
    ledgers.prepare()
    for item in items:
        user_id = item.plan.user_id
        if item.order is not None:
            uow.insert(item.order, user_id=user_id)
            uow.insert(item.fill, user_id=user_id)
            ledgers.queue(uow, item.portfolio)
            uow.update(item.bot, BOT_FILL_FIELDS, user_id=user_id)
            uow.audit(item.audit)
            uow.emit("orders_filled", orders_filled_send, order_filled_payload(item.order))
            uow.emit("portfolios_push", _portfolios_push, (item.portfolio.pk, item.portfolio.user_id))
        if item.notification is not None:
            uow.notify(item.notification, item.deliveries)
        uow.update(item.plan, PLAN_FIELDS, user_id=user_id)


def _portfolios_push(portfolios: list[tuple[int, int]]) -> None:
    ledger.portfolios_push(portfolios=sorted(set(portfolios)))


_BLOCKED_SQL = (
    "SELECT p.signal_id, p.bot_id, p.side, p.reason, b.name, "  # noqa: S608 - model columns, values bound
    "EXISTS (SELECT 1 FROM core_notification n WHERE n.user_id = p.user_id "
    "AND n.dedup_key = 'blocked:' || p.signal_id || ':' || p.bot_id), "
    f"{model_select(BlockedExecution, 'x')} "
    "FROM trading_executionplan p "
    "JOIN trading_bot b ON b.id = p.bot_id "
    "LEFT JOIN trading_blockedexecution x ON x.signal_id = p.signal_id AND x.bot_id = p.bot_id "
    "WHERE p.id = %s"
)


def blocked_notify_batch(refs: list[tuple[int, int]]) -> int:
    """`services.blocked_notify` for a chunk: each plan read and its notification written as its owner."""
    told = 0
    payloads: list[dict] = []
    built: list[tuple[Notification, list[NotificationDelivery]]] = []
    with transaction.atomic():
        pipe = TenantPipeline()
        reads = [(ref, pipe.execute(_BLOCKED_SQL, [ref[0]], user_id=ref[1])) for ref in refs]
        choices = {
            user_id: pipe.execute(
                "SELECT kind, channel, enabled FROM core_notificationpreference WHERE user_id = %s AND kind = %s",
                [user_id, NOTIFY_BLOCKED], user_id=user_id,
            )
            for user_id in {user_id for _, user_id in refs}
        }
        pipe.close()  # act as nobody while building (see paper_plans_execute)
        preferences = {user_id: _choices(pending.rows()).get(NOTIFY_BLOCKED, {}) for user_id, pending in choices.items()}
        for (_, user_id), pending in reads:
            rows = pending.rows()
            if not rows:
                continue
            signal_id, bot_id, side, reason, bot_name, already_told = rows[0][:6]
            told += 1
            if rows[0][6] is not None:  # the gatekeeper's record (LEFT JOIN)
                payloads.append(blocked_payload(instance_from_row(BlockedExecution, rows[0][6:])))
            if already_told:
                continue
            notification, deliveries = notification_build(
                user=get_user_model()(pk=user_id), kind=NOTIFY_BLOCKED,
                message=blocked_message(bot_name=bot_name, side=side, reason=reason),
                link=BLOCKED_LINK, dedup_key=f"blocked:{signal_id}:{bot_id}", choices=preferences[user_id],
            )
            built.append((notification, deliveries))
        uow = UnitOfWork(pipe)
        for notification, deliveries in built:
            uow.notify(notification, deliveries)
        for payload in payloads:
            uow.emit("executions_blocked", executions_blocked_send, payload)
        uow.flush()
    return told
