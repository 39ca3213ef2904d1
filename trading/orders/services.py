"""Writes of orders: place, submit to a venue, apply what a venue reports, cancel, match resting orders.

Every venue is reached through its adapter (trading.exchanges). Where the venue's order book is our own
database (the paper exchange: `places_in_transaction`), an order is placed and matched in the transaction
that writes it; orders for a real venue are written as `new` and submitted by the `trading.order_submit`
task after commit, so a crash never leaves an order at the venue that Nexus does not know.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import structlog
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from core.api_events import api_events_send
from core.audit import audit_entry, audit_record
from core.batch import Pending, TenantPipeline
from core.errors import DomainError
from core.jobs import task_enqueue
from core.money import ZERO, plain
from core.notifications import notification_build
from core.rls import tenant
from core.unit_of_work import UnitOfWork
from trading import ledger
from trading.bots.services import BOT_FILL_FIELDS, bot_fill_account
from trading.choices import (
    OPEN_ORDER_STATUSES,
    ORDER_TRANSITIONS,
    TERMINAL_ORDER_STATUSES,
    OrderSide,
    OrderSource,
    OrderStatus,
)
from trading.common import playbook_tag_clean, request_actor
from trading.events import orders_filled
from trading.exchanges.base import (
    ExchangeFill,
    ExchangeOrder,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderRequest,
    OrderStatusUnknown,
)
from trading.exchanges.registry import adapter_class, adapter_for
from trading.ledger import NeedsReplay
from trading.models import Bot, ExchangeConnection, Fill, Order
from trading.orders.live import orders_push
from trading.orders.validation import order_validate

logger = structlog.get_logger(__name__)

NOTIFY_FILLED = "trading.order_filled"
FILLED_LINK = "/trading/orders/history/"
RESTING_STATUSES = [OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED]


class IllegalOrderTransition(DomainError):
    """The order state machine refuses the move (e.g. cancelling a filled order)."""


def order_transition(order: Order, status: str, *, reason: str = "") -> None:
    """Move `order` to `status` through the state machine; the caller saves."""
    if status == order.status and status != OrderStatus.PARTIALLY_FILLED:
        return
    if status not in ORDER_TRANSITIONS[order.status]:
        raise IllegalOrderTransition(
            f"An order that is {order.get_status_display().lower()} cannot become "
            f"{OrderStatus(status).label.lower()}."
        )
    order.status = status
    if reason:
        order.status_reason = reason[:300]
    if status in TERMINAL_ORDER_STATUSES:
        order.closed_at = timezone.now()


def order_summary(order: Order) -> dict:
    """What the audit log keeps about an order."""
    return {
        "symbol": order.instrument.symbol,
        "side": order.side,
        "type": order.type,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "status": order.status,
        "filled_quantity": order.filled_quantity,
        "source": order.source,
        "playbook_tag": order.playbook_tag,
    }


@transaction.atomic
def order_place(
    *,
    user,
    portfolio,
    connection: ExchangeConnection,
    symbol: str,
    side: str,
    type: str,
    quantity,
    price=None,
    stop_price=None,
    source: str = OrderSource.MANUAL,
    bot: Bot | None = None,
    order_id: uuid.UUID | None = None,
    quote=None,
    available: Decimal | None = None,
    playbook_tag: str = "",
    request: HttpRequest | None = None,
) -> Order:
    """Validate and place an order. `playbook_tag` names the trader's own setup a manual or API order follows
    (the strategy tracker groups by it); bots' orders have none. On a venue that places in our transaction (paper) it is matched at once;
    orders for a real venue are submitted by a Celery task after commit (so a crash can never leave an
    untracked order)."""
    check = order_validate(
        user=user, portfolio=portfolio, connection=connection, symbol=symbol, side=side, type=type,
        quantity=quantity, price=price, stop_price=stop_price, quote=quote, available=available,
    )
    tag = playbook_tag_clean(playbook_tag) if source != OrderSource.BOT else ""
    order = Order(
        id=order_id or uuid.uuid4(),
        user=user,
        connection=connection,
        portfolio=portfolio,
        instrument=check.instrument,
        bot=bot,
        source=source,
        playbook_tag=tag,
        side=side,
        type=type,
        quantity=check.quantity,
        price=check.price,
        stop_price=check.stop_price,
    )
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        # The same client order id again (a retried request or job): the first order stands.
        existing = Order.objects.filter(pk=order.pk, user=user).first()
        if existing is None:
            raise DomainError("That client order id is already in use.", field="client_order_id") from None
        return existing
    adapter_type = adapter_class(connection.venue)
    if adapter_type.places_in_transaction:
        try:
            update = adapter_type.for_connection(connection, portfolio=portfolio).place_order(
                OrderRequest(
                    client_order_id=order.client_order_id, symbol=check.instrument.symbol, side=side, type=type,
                    quantity=check.quantity, price=check.price, stop_price=check.stop_price,
                ),
                quote=quote, instrument=check.instrument,
            )
        except ExchangeRejected as error:
            raise DomainError(str(error)) from error
        if check.stop_price is not None and update.status == OrderStatus.FILLED:
            order.triggered_at = timezone.now()
        order_apply_exchange(order=order, update=update, audit=False)
    else:
        submit = [str(order.pk), user.pk]
        transaction.on_commit(lambda: task_enqueue("trading.order_submit", args=submit))
        _push_orders_after_commit(user.pk)
        _order_state_after_commit(order)
    # One audit row for the placement, with the state the venue left the order in (a paper market order
    # is already filled here).
    audit_record(
        action="trading.order_placed", user=user, actor=request_actor(request, user), target=order,
        after=order_summary(order), request=request,
    )
    return order


def order_submit(*, order_id) -> Order:
    """Send an order written as `new` to its venue (tenant context of its owner). Safe to run again at any
    point:

    - the client order id is our order's UUID, so the venue cannot create a second order for it;
    - after an attempt whose answer was lost (timeout, crash), the order is first fetched by client order id
      and only placed again if the venue does not have it.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self", "connection")).select_related("connection", "instrument").get(pk=order_id)
        if order.status != OrderStatus.NEW:
            return order
        adapter = adapter_for(order.connection)
        if order.submit_attempts:
            try:
                update = adapter.fetch_order(
                    client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
                    symbol=order.instrument.symbol,
                )
            except ExchangeRejected:
                update = None  # the venue never got it: placing again is safe
            if update is not None:
                order_apply_exchange(order=order, update=update)
                return order
        order.submit_attempts += 1
        order.save(update_fields=["submit_attempts", "updated_at"])
    # The attempt is counted (committed) before the venue is called, so a crash mid-call is seen next time.
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self", "connection")).select_related("connection", "instrument").get(pk=order_id)
        try:
            update = adapter.place_order(
                OrderRequest(
                    client_order_id=order.client_order_id, symbol=order.instrument.symbol, side=order.side,
                    type=order.type, quantity=order.quantity, price=order.price, stop_price=order.stop_price,
                )
            )
        except ExchangeRejected as error:
            order_transition(order, OrderStatus.REJECTED, reason=str(error))
            order.save()
            _push_orders_after_commit(order.user_id)
            _order_state_after_commit(order)
            return order
        except OrderStatusUnknown:
            update = adapter.fetch_order(
                client_order_id=order.client_order_id, exchange_order_id="", symbol=order.instrument.symbol
            )
        order_apply_exchange(order=order, update=update)
    return order


ORDER_APPLY_FIELDS = [
    "status", "status_reason", "closed_at", "filled_quantity", "average_price", "fees_paid", "exchange_order_id",
    "triggered_at", "updated_at",
]


def order_apply_exchange(*, order: Order, update: ExchangeOrder, audit: bool = True, push: bool = True) -> Order:
    """Apply what the venue reports: new fills (each once) into the portfolio, then the order's state.

    Written by one `core.unit_of_work.UnitOfWork` as the order's owner, as a bot's plan is: each new fill is
    claimed first (ON CONFLICT DO NOTHING, so a fill reported twice at the same moment is recorded by one
    writer), read in the same round trip as the portfolio's ledger (`LedgerBatch`) and the bot; then the
    order, the ledger rows, the bot, the audit row and the notification go in one statement, and the
    toasts, the `orders_filled` event and the live pushes run after the commit."""
    with tenant(order.user_id):
        user_id = order.user_id
        fills = list(update.fills)
        known = {fill.fill_id: fill for fill in Fill.objects.filter(order=order)}
        known_quantity = sum((f.quantity for f in known.values()), ZERO)
        reported_quantity = sum((f.quantity for f in fills), ZERO)
        if update.filled_quantity > max(known_quantity, reported_quantity) and update.average_price is not None:
            # The venue reported a cumulative fill without trade details: record the difference, named by the
            # cumulative quantity so the same report applied twice names the same fill.
            delta = update.filled_quantity - max(known_quantity, reported_quantity)
            fills.append(
                ExchangeFill(
                    fill_id=f"{update.exchange_order_id or order.pk}:cum:{update.filled_quantity.normalize()}",
                    quantity=delta, price=update.average_price, fee=ZERO, fee_currency=order.instrument.quote,
                    executed_at=timezone.now(),
                )
            )
        uow = UnitOfWork(TenantPipeline(within_tenant=True))  # acts as the owner only, on this transaction
        pipe = uow.pipe
        claims: list[tuple[ExchangeFill, Fill, Pending]] = []
        claimed_quantity = order.filled_quantity
        for fill in fills:
            if fill.fill_id in known:
                continue
            if claimed_quantity + fill.quantity > order.quantity:
                logger.warning("trading.fill_exceeds_order", order=str(order.pk), fill=fill.fill_id)
                continue
            stored = Fill(
                user_id=user_id, order=order, fill_id=fill.fill_id, quantity=fill.quantity, price=fill.price,
                fee=fill.fee, fee_currency=fill.fee_currency, executed_at=fill.executed_at,
            )
            claims.append((fill, stored, uow.claim(stored, user_id=user_id, unique_fields=["order", "fill_id"])))
            claimed_quantity += fill.quantity
        ledgers = ledger.ledger_batch(pipe)
        bot_read: Pending | None = None
        if claims:
            ledgers.load(portfolio_id=order.portfolio_id, user_id=user_id, instrument=order.instrument)
            if order.bot_id:
                bot_read = pipe.select(Bot, "id = %s FOR UPDATE", [order.bot_id], user_id=user_id)
        choices: Pending | None = None
        if update.status == OrderStatus.FILLED and order.status != OrderStatus.FILLED:
            choices = pipe.execute(
                "SELECT channel, enabled, EXISTS (SELECT 1 FROM core_notification WHERE user_id = %s AND dedup_key = %s) "
                "FROM (SELECT NULL) AS one LEFT JOIN core_notificationpreference ON user_id = %s AND kind = %s",
                [user_id, _filled_dedup_key(order), user_id, NOTIFY_FILLED], user_id=user_id,
            )
        pipe.sync()

        portfolio = None
        bot = bot_read.instance() if bot_read is not None else None
        new_fills: list[Fill] = []
        replays: list[ledger.FillEntry] = []
        batched = False
        for fill, stored, claim in claims:
            pk = claim.scalar()
            if pk is None:
                continue  # reported twice at the same moment: the other writer recorded it
            stored.pk = pk
            known[fill.fill_id] = stored
            new_fills.append(stored)
            if portfolio is None:
                portfolio = ledgers.portfolio(order.portfolio_id)
                if portfolio is None:
                    raise DomainError("That portfolio is not yours.")
            entry = ledger.fill_entry(order=order, fill=fill)
            if replays:
                replays.append(entry)  # after a replay, every later fill in its order
            else:
                try:
                    ledger.fill_record_in(ledgers, portfolio=portfolio, owner_email=order.user.email, fill=entry)
                    batched = True
                except NeedsReplay:
                    replays.append(entry)  # dated before the portfolio's latest transaction: after the flush
            cost = order.average_price * order.filled_quantity if order.average_price else ZERO
            order.filled_quantity += fill.quantity
            order.average_price = (cost + fill.price * fill.quantity) / order.filled_quantity
            if fill.fee_currency == order.instrument.quote:
                order.fees_paid += fill.fee
            if bot is not None:
                bot_fill_account(bot, side=order.side, fill=stored, quote=order.instrument.quote)
        status = update.status
        if status == OrderStatus.OPEN and order.filled_quantity > 0:
            status = OrderStatus.PARTIALLY_FILLED
        if status == OrderStatus.FILLED and order.filled_quantity < order.quantity:
            status = OrderStatus.PARTIALLY_FILLED
        if update.exchange_order_id:
            order.exchange_order_id = update.exchange_order_id
        previous = order.status
        if status != previous or new_fills:
            order_transition(order, status, reason=update.reason)

        ledgers.prepare()
        uow.update(order, ORDER_APPLY_FIELDS, user_id=user_id)
        if portfolio is not None:
            ledgers.queue(uow, portfolio)
            if batched:
                uow.emit("portfolios_push", _portfolios_push, (portfolio.pk, user_id))
        if bot is not None and new_fills:
            uow.update(bot, BOT_FILL_FIELDS, user_id=user_id)
        if audit and order.status != previous:
            uow.audit(audit_entry(
                action=f"trading.order_{order.status}", user=order.user, actor_label="exchange", target=order,
                before={"status": previous}, after=order_summary(order),
            ))
        if order.status == OrderStatus.FILLED and previous != OrderStatus.FILLED:
            _order_filled_effects(uow, order, choices)
        elif order.status != previous or new_fills:
            uow.emit("orders_state", api_events_send, _order_api_event(order))
        if push and (previous in OPEN_ORDER_STATUSES - {OrderStatus.NEW} or order.status in OPEN_ORDER_STATUSES):
            # Only orders that are (or were) on the open-orders table change it.
            uow.emit("orders_push", _orders_push, user_id)
        uow.flush()
        for entry in replays:
            ledger.fill_record(user=order.user, portfolio=portfolio, fill=entry)
    return order


def order_filled_message(order: Order, *, bot_name: str | None = None) -> str:
    assert order.average_price is not None  # a filled order has an average price
    verb = "Bought" if order.side == OrderSide.BUY else "Sold"
    who = f"Bot {bot_name}: " if bot_name else ""
    return (
        f"{who}{verb} {plain(order.filled_quantity)} {order.instrument.base} at "
        f"{order.average_price.quantize(Decimal(1).scaleb(-order.instrument.price_precision))} {order.instrument.quote}."
    )


def order_filled_payload(order: Order) -> dict:
    """One entry of the `orders_filled` event (trading.events)."""
    return {
        "order_id": str(order.pk), "user_id": order.user_id, "symbol": order.instrument.symbol,
        "side": order.side, "quantity": order.filled_quantity, "price": order.average_price,
    }


def orders_filled_send(payloads: list[dict]) -> None:
    if payloads:
        orders_filled.send_robust(sender=Order, fills=payloads)
        api_events_send([event for payload in payloads for event in _fill_api_events(payload)])


def _fill_api_events(payload: dict) -> list[tuple[int, str, dict]]:
    """The programs' socket: a `fill` and the order's new state (core.api_events)."""
    fill = {k: v for k, v in payload.items() if k != "user_id"}
    order = {"order_id": payload["order_id"], "symbol": payload["symbol"], "side": payload["side"], "status": "filled",
             "filled_quantity": payload["quantity"], "average_price": payload["price"]}
    return [(payload["user_id"], "fills", fill), (payload["user_id"], "orders", order)]


def _order_api_event(order: Order) -> tuple[int, str, dict]:
    """The programs' socket: an order's new state other than filled (placed on a venue, open, partially
    filled, cancelled, rejected, expired); a fill sends `_fill_api_events` instead."""
    return (order.user_id, "orders", {
        "order_id": str(order.pk), "symbol": order.instrument.symbol, "side": order.side, "status": order.status,
        "filled_quantity": order.filled_quantity, "average_price": order.average_price,
        "reason": order.status_reason,
    })


def _order_state_after_commit(order: Order) -> None:
    event = _order_api_event(order)
    transaction.on_commit(lambda: api_events_send([event]))


def _filled_dedup_key(order: Order) -> str:
    return f"order-filled:{order.pk}"


def _order_filled_effects(uow: UnitOfWork, order: Order, choices: Pending | None) -> None:
    """The filled order's notification (once per order) and its `orders_filled` entry, through `uow`."""
    rows = choices.rows() if choices is not None else []
    already_told = bool(rows and rows[0][2])
    if not already_told:
        message = order_filled_message(order, bot_name=order.bot.name if order.bot is not None else None)
        uow.notify(*notification_build(
            user=order.user, kind=NOTIFY_FILLED, message=message, link=FILLED_LINK,
            dedup_key=_filled_dedup_key(order),
            choices={channel: enabled for channel, enabled, _ in rows if channel is not None},
        ))
    uow.emit("orders_filled", orders_filled_send, order_filled_payload(order))


def _orders_push(user_ids: list[int]) -> None:
    for user_id in sorted(set(user_ids)):
        orders_push(user_id=user_id)


def _portfolios_push(portfolios: list[tuple[int, int]]) -> None:
    ledger.portfolios_push(portfolios=sorted(set(portfolios)))


@transaction.atomic
def order_cancel(*, user, order: Order, request: HttpRequest | None = None) -> Order:
    order = Order.objects.select_for_update(of=("self", "connection")).select_related("connection", "instrument").get(pk=order.pk)
    if order.user_id != user.pk:
        raise DomainError("That order is not yours.")
    if order.status not in OPEN_ORDER_STATUSES:
        raise IllegalOrderTransition(f"This order is already {order.get_status_display().lower()}.")
    previous = order.status
    if order.status == OrderStatus.NEW and not order.submit_attempts:
        # Never sent to the venue: cancelling it is ours alone.
        order_transition(order, OrderStatus.CANCELLED, reason="Cancelled by you.")
        order.save()
        _order_state_after_commit(order)
    else:
        try:
            update = adapter_for(order.connection).cancel_order(
                client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
                symbol=order.instrument.symbol,
            )
        except (ExchangeRejected, ExchangeUnavailable, OrderStatusUnknown) as error:
            raise DomainError(f"The venue did not cancel the order: {error}") from error
        # The cancel has its audit row below; the venue's report gets one of its own only when it says
        # something else (the order filled before the cancel reached it).
        order_apply_exchange(order=order, update=update, audit=update.status != OrderStatus.CANCELLED, push=False)
    audit_record(
        action="trading.order_cancelled", user=user, actor=request_actor(request, user), target=order,
        before={"status": previous}, after=order_summary(order), request=request,
    )
    _push_orders_after_commit(user.pk)
    return order


def _push_orders_after_commit(user_id: int) -> None:
    transaction.on_commit(lambda: orders_push(user_id=user_id))


# --- resting orders on venues that match in our database (cross-tenant lookup, per-tenant fills) ---------


def order_match_resting(*, order_id: str, user_id: int, price: Decimal) -> Order | None:
    """Match one resting order against a traded price, in its owner's tenant context; None when the order is
    no longer resting or its venue matches its own orders."""
    with tenant(user_id):
        order = (
            Order.objects.select_for_update(of=("self", "connection", "portfolio"))
            .select_related("instrument", "connection", "portfolio", "user")
            .defer("user__password")
            .filter(pk=order_id, status__in=RESTING_STATUSES)
            .first()
        )
        if order is None:
            return None
        match = adapter_for(order.connection, portfolio=order.portfolio).resting_match(order=order, price=price)
        if match is None:
            return None
        if match.triggered and order.triggered_at is None and order.stop_price is not None:
            order.triggered_at = timezone.now()
            order.save(update_fields=["triggered_at", "updated_at"])
        if match.update.status == OrderStatus.FILLED:
            try:
                with transaction.atomic():
                    return order_apply_exchange(order=order, update=match.update)
            except DomainError as error:
                # The portfolio no longer holds what the order needs (e.g. sold elsewhere): reject, don't retry.
                order_transition(order, OrderStatus.EXPIRED, reason=str(error))
                order.save()
                _push_orders_after_commit(order.user_id)
        return order
