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

from core.audit import audit_record
from core.errors import DomainError
from core.jobs import task_enqueue
from core.notifications import notify
from core.rls import tenant
from trading import ledger
from trading.bots.services import bot_apply_fill
from trading.choices import (
    OPEN_ORDER_STATUSES,
    ORDER_TRANSITIONS,
    TERMINAL_ORDER_STATUSES,
    OrderSide,
    OrderSource,
    OrderStatus,
)
from trading.common import ZERO, plain, request_actor
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
    request: HttpRequest | None = None,
) -> Order:
    """Validate and place an order. On a venue that places in our transaction (paper) it is matched at once;
    orders for a real venue are submitted by a Celery task after commit (so a crash can never leave an
    untracked order)."""
    check = order_validate(
        user=user, portfolio=portfolio, connection=connection, symbol=symbol, side=side, type=type,
        quantity=quantity, price=price, stop_price=stop_price, quote=quote, available=available,
    )
    order = Order(
        id=order_id or uuid.uuid4(),
        user=user,
        connection=connection,
        portfolio=portfolio,
        instrument=check.instrument,
        bot=bot,
        source=source,
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
            return order
        except OrderStatusUnknown:
            update = adapter.fetch_order(
                client_order_id=order.client_order_id, exchange_order_id="", symbol=order.instrument.symbol
            )
        order_apply_exchange(order=order, update=update)
    return order


def order_apply_exchange(*, order: Order, update: ExchangeOrder, audit: bool = True, push: bool = True) -> Order:
    """Apply what the venue reports: new fills (each once) into the portfolio, then the order's state."""
    with transaction.atomic():
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
        new_fills = []
        for fill in fills:
            if fill.fill_id in known:
                continue
            if order.filled_quantity + fill.quantity > order.quantity:
                logger.warning("trading.fill_exceeds_order", order=str(order.pk), fill=fill.fill_id)
                continue
            try:
                with transaction.atomic():
                    stored = Fill.objects.create(
                        user_id=order.user_id, order=order, fill_id=fill.fill_id, quantity=fill.quantity,
                        price=fill.price, fee=fill.fee, fee_currency=fill.fee_currency, executed_at=fill.executed_at,
                    )
            except IntegrityError:
                continue  # reported twice at the same moment: the other writer recorded it
            known[fill.fill_id] = stored
            new_fills.append(stored)
            ledger.fill_record(
                user=order.user, portfolio=order.portfolio, fill=ledger.fill_entry(order=order, fill=fill)
            )
            cost = order.average_price * order.filled_quantity if order.average_price else ZERO
            order.filled_quantity += fill.quantity
            order.average_price = (cost + fill.price * fill.quantity) / order.filled_quantity
            if fill.fee_currency == order.instrument.quote:
                order.fees_paid += fill.fee
            if order.bot_id:
                bot_apply_fill(bot_id=order.bot_id, side=order.side, fill=stored, quote=order.instrument.quote)
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
        order.save()
        if audit and order.status != previous:
            audit_record(
                action=f"trading.order_{order.status}", user=order.user, actor_label="exchange", target=order,
                before={"status": previous}, after=order_summary(order),
            )
        if order.status == OrderStatus.FILLED and previous != OrderStatus.FILLED:
            _order_filled_effects(order)
        if push and (previous in OPEN_ORDER_STATUSES - {OrderStatus.NEW} or order.status in OPEN_ORDER_STATUSES):
            # Only orders that are (or were) on the open-orders table change it.
            _push_orders_after_commit(order.user_id)
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


def _order_filled_effects(order: Order) -> None:
    message = order_filled_message(order, bot_name=order.bot.name if order.bot is not None else None)
    notify(user=order.user, kind=NOTIFY_FILLED, message=message, link=FILLED_LINK,
           dedup_key=f"order-filled:{order.pk}")
    payloads = [order_filled_payload(order)]
    transaction.on_commit(lambda: orders_filled_send(payloads))


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
