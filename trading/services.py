"""Writes of the trading domain: connections, orders and fills, bots, signals and the execution fan-out.

Every function that writes several rows is one database transaction; callers run inside the user's
tenant context (request middleware, `core.rls.tenant`) except the two named cross-tenant steps of the
fan-out (planning, paper matching), which enter `core.rls.system_context` themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainError
from core.rls import system_context, tenant
from trading import ledger
from trading.choices import (
    OPEN_ORDER_STATUSES,
    ORDER_TRANSITIONS,
    ORDER_TYPES_WITH_PRICE,
    ORDER_TYPES_WITH_TRIGGER,
    TERMINAL_ORDER_STATUSES,
    VENUES_WITH_PASSPHRASE,
    BotStatus,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    PlanStatus,
    SignalAction,
    SignalStatus,
    Timeframe,
    Venue,
)
from trading.crypto import secret_encrypt
from trading.exchanges import (
    ExchangeOrder,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderRequest,
    OrderStatusUnknown,
    adapter_for,
)
from trading.exchanges.paper import PaperQuote, paper_match
from trading.models import (
    BlockedExecution,
    Bot,
    ExchangeConnection,
    ExecutionPlan,
    Fill,
    Order,
    RegimeReading,
    Signal,
)
from trading.regime import REGIME_TIMEFRAME, RegimeParams, regime_classify
from trading.strategies import strategy_decide, strategy_get, strategy_params_clean

logger = structlog.get_logger(__name__)

ZERO = Decimal("0")
PLAN_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-4d8e-9a43-5b0f5f0c7e21")
TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}
NOTIFY_FILLED = "trading.order_filled"
NOTIFY_BLOCKED = "trading.execution_blocked"
FILLED_LINK = "/trading/orders/history/"
BLOCKED_LINK = "/trading/blocked/"


class IllegalOrderTransition(DomainError):
    """The order state machine refuses the move (e.g. cancelling a filled order)."""


# --- plan limits: the one place trading asks billing ------------------------------------------------------


def trading_entitlement_check(*, user, feature: str, increment: int = 1) -> None:
    """Raise PlanLimitExceeded (a DomainError) when `user`'s plan does not allow one more `feature`.

    Features: "exchange_connections" (real venues; the paper exchange is free) and "bots". Billing answers,
    using the counters registered in TradingConfig.ready() (receivers.billing_counters_register).
    """
    from billing.services import entitlement_check

    entitlement_check(user=user, feature=feature, increment=increment)


# --- exchange connections -----------------------------------------------------------------------------------


def _last_four(value: str) -> str:
    return value[-4:] if len(value) >= 4 else ""


@transaction.atomic
def connection_create(
    *,
    user,
    label: str,
    venue: str,
    api_key: str = "",
    api_secret: str = "",
    passphrase: str = "",
    sandbox: bool = False,
    confirmed_no_withdrawal: bool = False,
    request: HttpRequest | None = None,
) -> ExchangeConnection:
    """Validate the key with the venue, refuse withdrawal rights, store the secrets encrypted, audit."""
    label = (label or "").strip()
    if not label:
        raise DomainError("Give the connection a name.", field="label")
    if venue not in Venue.values:
        raise DomainError("Choose a supported venue.", field="venue")
    if ExchangeConnection.objects.filter(user=user, label=label).exists():
        raise DomainError("You already have a connection with that name.", field="label")
    if venue != Venue.PAPER:
        trading_entitlement_check(user=user, feature="exchange_connections")
    connection = ExchangeConnection(user=user, label=label, venue=venue, sandbox=sandbox)
    if venue != Venue.PAPER:
        api_key, api_secret, passphrase = api_key.strip(), api_secret.strip(), passphrase.strip()
        if not api_key or not api_secret:
            raise DomainError("Enter the API key and its secret.", field="api_key")
        if venue in VENUES_WITH_PASSPHRASE and not passphrase:
            raise DomainError("This venue's API keys come with a passphrase; enter it too.", field="passphrase")
        from trading.exchanges.ccxt_adapter import CcxtAdapter

        adapter = CcxtAdapter(venue=venue, api_key=api_key, secret=api_secret, passphrase=passphrase, sandbox=sandbox)
        try:
            permissions = adapter.validate_credentials()
            fees = adapter.fee_schedule(symbol="")
        except (ExchangeRejected, ExchangeUnavailable, OrderStatusUnknown) as error:
            raise DomainError(f"The venue did not accept this key: {error}", field="api_key") from error
        if permissions.can_withdraw:
            raise DomainError(
                "This key can withdraw funds. Nexus never needs that: create a key with trading and reading "
                "permissions only, and restrict it to Nexus's IP address.",
                field="api_key",
            )
        if not permissions.can_trade:
            raise DomainError("This key cannot trade. Enable spot trading on the key.", field="api_key")
        if permissions.ip_restricted is None and not confirmed_no_withdrawal:
            raise DomainError(
                "This venue does not report key permissions. Confirm the key has no withdrawal permission.",
                field="confirmed_no_withdrawal",
            )
        connection.api_key_encrypted = secret_encrypt(api_key)
        connection.api_secret_encrypted = secret_encrypt(api_secret)
        connection.passphrase_encrypted = secret_encrypt(passphrase) if passphrase else ""
        connection.key_last_four = _last_four(api_key)
        connection.can_withdraw = permissions.can_withdraw
        connection.ip_restricted = permissions.ip_restricted
        connection.maker_fee, connection.taker_fee = fees.maker, fees.taker
    else:
        fees = adapter_for(connection).fee_schedule(symbol="")
        connection.maker_fee, connection.taker_fee = fees.maker, fees.taker
        connection.ip_restricted = True
    connection.validated_at = timezone.now()
    connection.save()
    audit_record(
        action="trading.connection_created",
        user=user,
        actor=_actor(request, user),
        target=connection,
        after=_connection_summary(connection),
        request=request,
    )
    return connection


def _connection_summary(connection: ExchangeConnection) -> dict:
    """What the audit log keeps about a connection: never a secret, only the key's last four characters."""
    return {
        "label": connection.label,
        "venue": connection.venue,
        "sandbox": connection.sandbox,
        "key_last_four": connection.key_last_four,
        "status": connection.status,
        "taker_fee": connection.taker_fee,
    }


@transaction.atomic
def connection_delete(*, user, connection: ExchangeConnection, request: HttpRequest | None = None) -> None:
    if connection.user_id != user.pk:
        raise DomainError("That connection is not yours.")
    if connection.bots.exists():
        raise DomainError("Bots use this connection; delete or move them first.")
    if connection.orders.filter(status__in=OPEN_ORDER_STATUSES).exists():
        raise DomainError("This connection has open orders; cancel them first.")
    before = _connection_summary(connection)
    if connection.orders.exists():
        # Order history must survive: keep the row, wipe the secrets, disable it.
        connection.api_key_encrypted = connection.api_secret_encrypted = connection.passphrase_encrypted = ""
        connection.status = "disabled"
        connection.save()
        action = "trading.connection_disabled"
    else:
        connection.delete()
        action = "trading.connection_deleted"
    audit_record(action=action, user=user, actor=_actor(request, user), before=before, request=request)


def connection_keys_rotate(*, stdout=None) -> int:
    """Re-encrypt every stored exchange secret with the newest master key (cross-tenant, audited)."""
    from trading.crypto import secret_rotate

    rotated = 0
    with system_context(reason="rotate exchange key encryption"):
        connections = list(ExchangeConnection.objects.select_for_update().exclude(api_key_encrypted=""))
        for connection in connections:
            connection.api_key_encrypted = secret_rotate(connection.api_key_encrypted)
            connection.api_secret_encrypted = secret_rotate(connection.api_secret_encrypted)
            connection.passphrase_encrypted = secret_rotate(connection.passphrase_encrypted)
            connection.save(update_fields=["api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"])
            audit_record(
                action="trading.connection_keys_rotated",
                user=connection.user,
                actor_label="manage.py rotate_exchange_keys",
                target=connection,
                after={"key_last_four": connection.key_last_four},
            )
            rotated += 1
    if stdout is not None:
        stdout.write(f"Re-encrypted the keys of {rotated} exchange connection(s).")
    return rotated


# --- orders --------------------------------------------------------------------------------------------------


def _actor(request: HttpRequest | None, user):
    if request is not None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        return request.user
    return None


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


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _decimal(value, *, field: str, label: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise DomainError(f"{label} must be a number.", field=field) from None
    if not number.is_finite() or number <= 0:
        raise DomainError(f"{label} must be greater than zero.", field=field)
    return number


@dataclass(frozen=True)
class OrderCheck:
    instrument: object
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    reference_price: Decimal
    notional: Decimal


def order_validate(
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
    quote=None,
    available: Decimal | None = None,
    held: Decimal | None = None,
    instrument=None,
) -> OrderCheck:
    """Everything the ticket checks before submitting: fields, precision, minimum notional, balance.

    Callers that already know them pass the instrument, the quote and what is available to buy with
    (`available`) or to sell (`held`); the checks then read nothing from the database.
    """
    from marketdata.selectors import instrument_get, quote_latest_map

    if connection.user_id != user.pk or portfolio.user_id != user.pk:
        raise DomainError("Choose one of your own connections and portfolios.")
    if connection.status != "active":
        raise DomainError("This exchange connection is disabled.", field="connection")
    if connection.is_paper != ledger.is_paper_portfolio(portfolio):
        raise DomainError(
            "Paper connections trade paper portfolios, real exchanges trade your other portfolios.", field="portfolio"
        )
    if side not in OrderSide.values:
        raise DomainError("Choose buy or sell.", field="side")
    if type not in OrderType.values:
        raise DomainError("Choose an order type.", field="type")
    if instrument is None or instrument.symbol != symbol:
        instrument = instrument_get(symbol=symbol)
    if not instrument.active:
        raise DomainError(f"{instrument.symbol} is not tradable right now.", field="symbol")
    quantity = _decimal(quantity, field="quantity", label="Quantity")
    if quantity is None:
        raise DomainError("Enter a quantity.", field="quantity")
    price = _decimal(price, field="price", label="Limit price")
    stop_price = _decimal(stop_price, field="stop_price", label="Trigger price")
    if type in ORDER_TYPES_WITH_PRICE and price is None:
        raise DomainError("A limit order needs a limit price.", field="price")
    if type not in ORDER_TYPES_WITH_PRICE:
        price = None
    if type in ORDER_TYPES_WITH_TRIGGER and stop_price is None:
        raise DomainError("This order type needs a trigger price.", field="stop_price")
    if type not in ORDER_TYPES_WITH_TRIGGER:
        stop_price = None
    if _places(quantity) > instrument.quantity_precision:
        raise DomainError(
            f"{instrument.symbol} quantities allow at most {instrument.quantity_precision} decimal places.",
            field="quantity",
        )
    for value, field in ((price, "price"), (stop_price, "stop_price")):
        if value is not None and _places(value) > instrument.price_precision:
            raise DomainError(
                f"{instrument.symbol} prices allow at most {instrument.price_precision} decimal places.", field=field
            )
    if quote is None and price is None and stop_price is None:
        quote = quote_latest_map(symbols=[instrument.symbol]).get(instrument.symbol)
        if quote is None:
            raise DomainError(f"There is no price for {instrument.symbol} yet.", field="symbol")
    reference = price or stop_price or quote.price
    notional = quantity * reference
    if notional < instrument.min_notional:
        raise DomainError(
            f"The order is worth {notional.quantize(Decimal('0.01'))} {instrument.quote}; "
            f"{instrument.symbol} needs at least {_plain(instrument.min_notional)} {instrument.quote}.",
            field="quantity",
        )
    fee_rate = connection.taker_fee or ZERO
    if side == OrderSide.BUY:
        slippage = Decimal(settings.TRADING_PAPER_SLIPPAGE_RATE) if type != OrderType.LIMIT else ZERO
        needed = notional * (1 + fee_rate + slippage)
        if available is None:
            available = available_balance(
                user=user, portfolio=portfolio, connection=connection, currency=instrument.quote
            )
        if needed > available:
            raise DomainError(
                f"Insufficient balance: this order needs about {needed.quantize(Decimal('0.01'))} {instrument.quote}, "
                f"{available.quantize(Decimal('0.01'))} {instrument.quote} is available.",
                field="quantity",
            )
    else:
        if held is None:
            held = available_holding(user=user, portfolio=portfolio, connection=connection, instrument=instrument)
        if quantity > held:
            raise DomainError(
                f"Insufficient balance: you can sell at most {_plain(held)} {instrument.base}.",
                field="quantity",
            )
    return OrderCheck(
        instrument=instrument,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        reference_price=reference,
        notional=notional,
    )


def _reserved(*, portfolio, connection, side: str, instrument=None, quote_currency: str | None = None) -> Decimal:
    """What the portfolio's open orders on this side already hold back (quote for buys, base for sells)."""
    orders = Order.objects.filter(
        portfolio=portfolio, connection=connection, side=side, status__in=OPEN_ORDER_STATUSES
    )
    if instrument is not None:
        orders = orders.filter(instrument=instrument)
    if quote_currency is not None:
        orders = orders.filter(instrument__quote=quote_currency)
    return reserved_total(orders, side=side, fee_rate=connection.taker_fee or ZERO)


def reserved_total(orders: Iterable[Order], *, side: str, fee_rate: Decimal) -> Decimal:
    """The quote (buys, with the taker fee) or base units (sells) that open `orders` of one side hold back."""
    total = ZERO
    for order in orders:
        remaining = order.quantity - order.filled_quantity
        if side == OrderSide.BUY:
            total += remaining * (order.price or order.stop_price or order.average_price or ZERO) * (1 + fee_rate)
        else:
            total += remaining
    return total


def available_balance(*, user, portfolio, connection: ExchangeConnection, currency: str) -> Decimal:
    if connection.is_paper:
        cash = ledger.cash(portfolio=portfolio, currency=currency)
        return cash - _reserved(portfolio=portfolio, connection=connection, side=OrderSide.BUY, quote_currency=currency)
    try:
        balances = adapter_for(connection).balances()
    except (ExchangeUnavailable, OrderStatusUnknown) as error:
        raise DomainError(f"Could not read your balance from {connection.get_venue_display()}: {error}") from error
    balance = balances.get(currency)
    return balance.free if balance else ZERO


def available_holding(*, user, portfolio, connection: ExchangeConnection, instrument) -> Decimal:
    if connection.is_paper:
        held = ledger.holding(portfolio=portfolio, instrument=instrument)
        return held - _reserved(portfolio=portfolio, connection=connection, side=OrderSide.SELL, instrument=instrument)
    try:
        balances = adapter_for(connection).balances()
    except (ExchangeUnavailable, OrderStatusUnknown) as error:
        raise DomainError(f"Could not read your balance from {connection.get_venue_display()}: {error}") from error
    balance = balances.get(instrument.base)
    return balance.free if balance else ZERO


def _order_summary(order: Order) -> dict:
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
    """Validate and place an order. Paper orders are matched at once in this transaction; orders for a real
    venue are submitted by a Celery task after commit (so a crash can never leave an untracked order)."""
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
    if connection.is_paper:
        request_ = OrderRequest(
            client_order_id=order.client_order_id, symbol=check.instrument.symbol, side=side, type=type,
            quantity=check.quantity, price=check.price, stop_price=check.stop_price,
        )
        if quote is not None:
            update, triggered = paper_match(
                client_order_id=order.client_order_id, side=side, order_type=type, quantity=check.quantity,
                limit_price=check.price, stop_price=check.stop_price, already_triggered=False,
                quote=PaperQuote(price=quote.price, bid=quote.bid, ask=quote.ask),
                quote_currency=check.instrument.quote, price_precision=check.instrument.price_precision,
                at=timezone.now(),
            )
        else:
            try:
                update = adapter_for(connection, portfolio=portfolio).place_order(request_)
            except ExchangeRejected as error:
                raise DomainError(str(error)) from error
            triggered = check.stop_price is None or update.status == OrderStatus.FILLED
        if triggered and check.stop_price is not None:
            order.triggered_at = timezone.now()
        order_apply_exchange(order=order, update=update, audit=False)
    else:
        order_id_ = order.pk
        transaction.on_commit(lambda: _enqueue_submit(order_id_, user.pk))
        _push_orders_after_commit(user.pk)
    # One audit row for the placement, with the state the venue left the order in (a paper market order
    # is already filled here).
    audit_record(
        action="trading.order_placed", user=user, actor=_actor(request, user), target=order,
        after=_order_summary(order), request=request,
    )
    return order


def _enqueue_submit(order_id, user_id: int) -> None:
    from trading.tasks import order_submit_task

    order_submit_task.delay(str(order_id), user_id)


def order_submit(*, order_id) -> Order:
    """Send a real-venue order (tenant context of its owner). Safe to run again at any point:

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


def order_apply_exchange(*, order: Order, update: ExchangeOrder, audit: bool = True) -> Order:
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
            from trading.exchanges import ExchangeFill

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
                _bot_apply_fill(bot_id=order.bot_id, side=order.side, fill=stored, quote=order.instrument.quote)
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
                before={"status": previous}, after=_order_summary(order),
            )
        if order.status == OrderStatus.FILLED and previous != OrderStatus.FILLED:
            _order_filled_effects(order)
        if previous in OPEN_ORDER_STATUSES - {OrderStatus.NEW} or order.status in OPEN_ORDER_STATUSES:
            # Only orders that are (or were) on the open-orders table change it.
            _push_orders_after_commit(order.user_id)
    return order


def order_filled_message(order: Order, *, bot_name: str | None = None) -> str:
    verb = "Bought" if order.side == OrderSide.BUY else "Sold"
    who = f"Bot {bot_name}: " if bot_name else ""
    return (
        f"{who}{verb} {_plain(order.filled_quantity)} {order.instrument.base} at "
        f"{order.average_price.quantize(Decimal(1).scaleb(-order.instrument.price_precision))} {order.instrument.quote}."
    )


def order_filled_payload(order: Order) -> dict:
    """One entry of the `orders_filled` signal (trading.signals)."""
    return {
        "order_id": str(order.pk), "user_id": order.user_id, "symbol": order.instrument.symbol,
        "side": order.side, "quantity": order.filled_quantity, "price": order.average_price,
    }


def orders_filled_send(payloads: list[dict]) -> None:
    from trading.signals import orders_filled

    if payloads:
        orders_filled.send_robust(sender=Order, fills=payloads)


def _order_filled_effects(order: Order) -> None:
    message = order_filled_message(order, bot_name=order.bot.name if order.bot_id else None)
    _notify(user=order.user, kind=NOTIFY_FILLED, message=message, link=FILLED_LINK,
            dedup_key=f"order-filled:{order.pk}")
    payloads = [order_filled_payload(order)]
    transaction.on_commit(lambda: orders_filled_send(payloads))


def _notify(*, user, kind: str, message: str, link: str, dedup_key: str) -> None:
    from core.notifications import notify

    notify(user=user, kind=kind, message=message, link=link, dedup_key=dedup_key)


BOT_FILL_FIELDS = ["position_quantity", "position_cost", "realized_pnl", "realized_pnl_day", "pnl_day", "updated_at"]


def _bot_apply_fill(*, bot_id: int, side: str, fill: Fill, quote: str) -> None:
    bot = Bot.objects.select_for_update().get(pk=bot_id)
    bot_fill_account(bot, side=side, fill=fill, quote=quote)
    bot.save(update_fields=BOT_FILL_FIELDS)


def bot_fill_account(bot: Bot, *, side: str, fill: Fill, quote: str) -> None:
    """Move the bot's own position, cost and realized P&L (today's too) by one fill; the caller saves."""
    today = timezone.now().date()
    if bot.pnl_day != today:
        bot.pnl_day, bot.realized_pnl_day = today, ZERO
    fee_in_quote = fill.fee if fill.fee_currency == quote else ZERO
    if side == OrderSide.BUY:
        bot.position_quantity += fill.quantity
        bot.position_cost += fill.quantity * fill.price + fee_in_quote
    else:
        average = bot.position_cost / bot.position_quantity if bot.position_quantity > 0 else fill.price
        sold = min(fill.quantity, bot.position_quantity)
        realized = fill.quantity * fill.price - fee_in_quote - average * sold
        bot.position_cost -= average * sold
        bot.position_quantity -= sold
        bot.realized_pnl += realized
        bot.realized_pnl_day += realized


@transaction.atomic
def order_cancel(*, user, order: Order, request: HttpRequest | None = None) -> Order:
    order = Order.objects.select_for_update(of=("self", "connection")).select_related("connection", "instrument").get(pk=order.pk)
    if order.user_id != user.pk:
        raise DomainError("That order is not yours.")
    if order.status not in OPEN_ORDER_STATUSES:
        raise IllegalOrderTransition(f"This order is already {order.get_status_display().lower()}.")
    previous = order.status
    if order.connection.is_paper or (order.status == OrderStatus.NEW and not order.submit_attempts):
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
        order_apply_exchange(order=order, update=update)
    audit_record(
        action="trading.order_cancelled", user=user, actor=_actor(request, user), target=order,
        before={"status": previous}, after=_order_summary(order), request=request,
    )
    _push_orders_after_commit(user.pk)
    return order


def _push_orders_after_commit(user_id: int) -> None:
    from trading.live import orders_push

    transaction.on_commit(lambda: orders_push(user_id=user_id))


# --- paper matching (cross-tenant lookup, per-tenant fills) --------------------------------------------------


def paper_resting_matches(*, symbol: str, price: Decimal) -> list[tuple[str, int]]:
    """(order id, user id) of resting paper orders this price may fill or trigger. Cross-tenant, read-only."""
    stop_types = [OrderType.STOP_MARKET, OrderType.STOP_LIMIT]
    waiting = Q(triggered_at__isnull=True)
    crosses = (
        Q(type=OrderType.LIMIT, side=OrderSide.BUY, price__gte=price)
        | Q(type=OrderType.LIMIT, side=OrderSide.SELL, price__lte=price)
        | (waiting & Q(type__in=stop_types, side=OrderSide.BUY, stop_price__lte=price))
        | (waiting & Q(type__in=stop_types, side=OrderSide.SELL, stop_price__gte=price))
        | (waiting & Q(type=OrderType.TAKE_PROFIT, side=OrderSide.BUY, stop_price__gte=price))
        | (waiting & Q(type=OrderType.TAKE_PROFIT, side=OrderSide.SELL, stop_price__lte=price))
        | Q(type=OrderType.STOP_LIMIT, triggered_at__isnull=False, side=OrderSide.BUY, price__gte=price)
        | Q(type=OrderType.STOP_LIMIT, triggered_at__isnull=False, side=OrderSide.SELL, price__lte=price)
    )
    with system_context(reason=f"paper exchange: match resting orders on {symbol}"):
        rows = Order.objects.filter(
            crosses,
            status__in=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED],
            instrument__symbol=symbol,
            connection__venue=Venue.PAPER,
        ).values_list("pk", "user_id")
        return [(str(pk), user_id) for pk, user_id in rows]


def paper_order_match(*, order_id: str, user_id: int, price: Decimal) -> Order | None:
    """Match one resting paper order against a traded price, in its owner's tenant context."""
    with tenant(user_id):
        order = (
            Order.objects.select_for_update(of=("self", "connection", "portfolio"))
            .select_related("instrument", "connection", "portfolio", "user")
            .defer("user__password")
            .filter(pk=order_id, status__in=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED])
            .first()
        )
        if order is None or not order.connection.is_paper:
            return None
        update, triggered = paper_match(
            client_order_id=order.client_order_id, side=order.side, order_type=order.type,
            quantity=order.remaining_quantity, limit_price=order.price, stop_price=order.stop_price,
            already_triggered=order.triggered_at is not None,
            resting_limit=order.type == OrderType.LIMIT or order.triggered_at is not None,
            quote=PaperQuote(price=price),
            quote_currency=order.instrument.quote, price_precision=order.instrument.price_precision,
            at=timezone.now(),
        )
        if triggered and order.triggered_at is None and order.stop_price is not None:
            order.triggered_at = timezone.now()
            order.save(update_fields=["triggered_at", "updated_at"])
        if update.status == OrderStatus.FILLED:
            try:
                with transaction.atomic():
                    return order_apply_exchange(order=order, update=update)
            except DomainError as error:
                # The portfolio no longer holds what the order needs (e.g. sold elsewhere): reject, don't retry.
                order_transition(order, OrderStatus.EXPIRED, reason=str(error))
                order.save()
                _push_orders_after_commit(order.user_id)
        return order


# --- bots ------------------------------------------------------------------------------------------------------


def _positive(value, *, field: str, label: str) -> Decimal:
    number = _decimal(value, field=field, label=label)
    if number is None:
        raise DomainError(f"Enter the {label.lower()}.", field=field)
    return number


@transaction.atomic
def bot_create(
    *,
    user,
    name: str,
    portfolio,
    connection: ExchangeConnection,
    symbol: str,
    strategy: str,
    params: dict | None = None,
    timeframe: str = Timeframe.M1,
    allocation,
    max_position,
    daily_loss_limit,
    request: HttpRequest | None = None,
) -> Bot:
    from marketdata.selectors import instrument_get

    name = (name or "").strip()
    if not name:
        raise DomainError("Give the bot a name.", field="name")
    if Bot.objects.filter(user=user, name=name).exists():
        raise DomainError("You already have a bot with that name.", field="name")
    if connection.user_id != user.pk or portfolio.user_id != user.pk:
        raise DomainError("Choose one of your own connections and portfolios.")
    if connection.is_paper != ledger.is_paper_portfolio(portfolio):
        raise DomainError(
            "Paper connections trade paper portfolios, real exchanges trade your other portfolios.", field="portfolio"
        )
    _fee_check(connection)
    if timeframe not in Timeframe.values:
        raise DomainError("Choose a timeframe.", field="timeframe")
    instrument = instrument_get(symbol=symbol)
    cleaned, params_key = strategy_params_clean(strategy, params)
    allocation = _positive(allocation, field="allocation", label="Per-trade allocation")
    max_position = _positive(max_position, field="max_position", label="Maximum position")
    loss_limit = _decimal(daily_loss_limit, field="daily_loss_limit", label="Daily loss limit")
    if loss_limit is None:
        raise DomainError("Enter the daily loss limit.", field="daily_loss_limit")
    if allocation < instrument.min_notional:
        raise DomainError(
            f"Each trade must be worth at least {_plain(instrument.min_notional)} {instrument.quote} "
            f"on {instrument.symbol}.", field="allocation",
        )
    trading_entitlement_check(user=user, feature="bots")
    bot = Bot.objects.create(
        user=user, name=name, portfolio=portfolio, connection=connection, instrument=instrument, strategy=strategy,
        params=cleaned, params_key=params_key, timeframe=timeframe, allocation=allocation,
        max_position=max_position, daily_loss_limit=loss_limit,
    )
    audit_record(action="trading.bot_created", user=user, actor=_actor(request, user), target=bot,
                 after=_bot_summary(bot), request=request)
    return bot


def _fee_check(connection: ExchangeConnection) -> None:
    """Fee validation: bots trade often, so a venue charging more than the configured maximum is refused."""
    limit = Decimal(settings.TRADING_BOT_MAX_TAKER_FEE)
    if connection.taker_fee is None:
        raise DomainError("This connection's fees are unknown; re-validate it before running bots.", field="connection")
    if connection.taker_fee > limit:
        raise DomainError(
            f"{connection.label} charges a {connection.taker_fee * 100:.3f}% taker fee; bots need "
            f"{limit * 100:.3f}% or less.", field="connection",
        )


def _bot_summary(bot: Bot) -> dict:
    return {
        "name": bot.name, "symbol": bot.instrument.symbol, "strategy": bot.strategy, "params": bot.params,
        "timeframe": bot.timeframe, "allocation": bot.allocation, "max_position": bot.max_position,
        "daily_loss_limit": bot.daily_loss_limit, "status": bot.status,
    }


@transaction.atomic
def bot_set_status(*, user, bot: Bot, status: str, request: HttpRequest | None = None) -> Bot:
    if bot.user_id != user.pk:
        raise DomainError("That bot is not yours.")
    if status not in BotStatus.values:
        raise DomainError("Choose running or paused.", field="status")
    if status == BotStatus.ENABLED:
        _fee_check(bot.connection)
    previous = bot.status
    bot.status = status
    bot.save(update_fields=["status", "updated_at"])
    audit_record(action="trading.bot_status_changed", user=user, actor=_actor(request, user), target=bot,
                 before={"status": previous}, after={"status": status}, request=request)
    return bot


@transaction.atomic
def bot_delete(*, user, bot: Bot, request: HttpRequest | None = None) -> None:
    if bot.user_id != user.pk:
        raise DomainError("That bot is not yours.")
    before = _bot_summary(bot)
    bot.delete()
    audit_record(action="trading.bot_deleted", user=user, actor=_actor(request, user), before=before, request=request)


# --- signal engine ---------------------------------------------------------------------------------------------


def _timeframe_closes(timeframe: str, candle_open_time) -> bool:
    """Does the one-minute candle opening at `candle_open_time` close a `timeframe` bar?"""
    close = candle_open_time + timedelta(minutes=1)
    return int(close.timestamp()) % TIMEFRAME_SECONDS[timeframe] == 0


def regime_current(*, instrument, as_of=None) -> RegimeReading:
    """Classify the pair now from its hourly candles, storing one reading per hourly bar."""
    from marketdata.selectors import candle_list

    params = RegimeParams()
    candles = candle_list(symbol=instrument.symbol, timeframe=REGIME_TIMEFRAME, limit=params.candles_needed)
    result = regime_classify(candles, params)
    as_of = candles[-1].open_time if candles else (as_of or timezone.now())
    reading, _ = RegimeReading.objects.get_or_create(
        instrument=instrument, timeframe=REGIME_TIMEFRAME, as_of=as_of,
        defaults={"regime": result.regime, "sma_slope_pct": result.sma_slope_pct, "adx": result.adx},
    )
    if reading.regime != result.regime:
        # The hourly bar was still forming when it was last classified.
        reading.regime, reading.sma_slope_pct, reading.adx = result.regime, result.sma_slope_pct, result.adx
        reading.save(update_fields=["regime", "sma_slope_pct", "adx"])
    return reading


def signals_compute(*, symbol: str, candle_open_time, published_at=None) -> list[Signal]:
    """On a one-minute candle close: one decision per distinct (strategy, params, timeframe) of enabled bots
    on this pair whose bar just closed. Returns the signals that call for action (already planned or not).

    `published_at` is the wall-clock time the feed reported the close (the replay feed's market time is in
    the past); a signal's staleness is measured from it."""
    from marketdata.selectors import candle_list, instrument_get

    instrument = instrument_get(symbol=symbol)
    with system_context(reason=f"signal engine: which bot settings trade {symbol}"):
        settings_in_use = {
            (strategy, params_key, timeframe): params
            for strategy, params_key, timeframe, params in Bot.objects.filter(
                instrument=instrument, status=BotStatus.ENABLED
            ).values_list("strategy", "params_key", "timeframe", "params")
        }
    due = {key: params for key, params in settings_in_use.items() if _timeframe_closes(key[2], candle_open_time)}
    if not due:
        return []
    closed_at = published_at or timezone.now()
    # Signals and regime readings are shared reference rows, written by the signal engine only.
    with system_context(reason=f"signal engine: decisions on {symbol}"):
        regime = regime_current(instrument=instrument)
        actionable = []
        for (strategy_key, params_key, timeframe), params in sorted(due.items()):
            strategy = strategy_get(strategy_key)
            candles = candle_list(symbol=symbol, timeframe=timeframe, limit=strategy.candles_needed(params) + 1)
            decision = strategy_decide(strategy_key, candles, params)
            signal, created = Signal.objects.get_or_create(
                instrument=instrument, strategy=strategy_key, params_key=params_key, timeframe=timeframe,
                candle_open_time=candles[-1].open_time if candles else candle_open_time,
                defaults={
                    "params": params, "closed_at": closed_at, "action": decision.action,
                    "price": candles[-1].close if candles else ZERO, "regime": regime.regime,
                    "reason": decision.reason[:300],
                    "status": SignalStatus.HOLD if decision.action == SignalAction.HOLD else SignalStatus.PLANNED,
                },
            )
            if signal.action != SignalAction.HOLD:
                actionable.append(signal)
                if created:
                    signal_id = signal.pk
                    transaction.on_commit(lambda signal_id=signal_id: _enqueue_fan_out(signal_id))
        return actionable


def _enqueue_fan_out(signal_id: int) -> None:
    from trading.tasks import signal_fan_out_task

    signal_fan_out_task.delay(signal_id)


# --- execution fan-out ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    signal_id: int
    stale: bool
    planned: int
    pending: list[tuple[int, int]]
    blocked: list[tuple[int, int]]


def _quantize_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def signal_plan(*, signal_id: int, now=None) -> FanOut:
    """Turn one signal into one plan per eligible bot, in bulk, through the reviewed cross-tenant path.

    Idempotent: plans and blocked executions are unique per (signal, bot) and inserted with ON CONFLICT DO
    NOTHING, so planning the same signal again adds nothing and returns the plans still to execute.
    A signal older than TRADING_SIGNAL_MAX_LAG_SECONDS is rejected, not executed late.
    """
    now = now or timezone.now()
    with system_context(reason=f"fan-out planning for signal {signal_id}"):
        signal = Signal.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=signal_id)
        if signal.action == SignalAction.HOLD:
            return FanOut(signal_id=signal_id, stale=False, planned=0, pending=[], blocked=[])
        lag = (now - signal.closed_at).total_seconds()
        if signal.planned_at is None and lag > settings.TRADING_SIGNAL_MAX_LAG_SECONDS:
            signal.status = SignalStatus.STALE
            signal.reason = f"{signal.reason} — rejected: {int(lag)}s old, more than the allowed lag"[:300]
            signal.save(update_fields=["status", "reason"])
            logger.warning("trading.signal_stale", signal=signal_id, lag_seconds=int(lag))
            return FanOut(signal_id=signal_id, stale=True, planned=0, pending=[], blocked=[])
        if signal.status == SignalStatus.STALE:
            return FanOut(signal_id=signal_id, stale=True, planned=0, pending=[], blocked=[])
        strategy = strategy_get(signal.strategy)
        allowed = strategy.regimes_for(signal.action)
        blocked = signal.regime not in allowed
        instrument = signal.instrument
        max_fee = Decimal(settings.TRADING_BOT_MAX_TAKER_FEE)
        today = now.date()
        bots = (
            Bot.objects.filter(
                instrument=instrument, strategy=signal.strategy, params_key=signal.params_key,
                timeframe=signal.timeframe, status=BotStatus.ENABLED,
            )
            .exclude(plans__signal=signal)
            .select_related("connection")
        )
        plans, blocks = [], []
        side = OrderSide.BUY if signal.action == SignalAction.BUY else OrderSide.SELL
        for bot in bots.iterator(chunk_size=2000):
            plan = ExecutionPlan(
                user_id=bot.user_id, signal=signal, bot=bot, side=side, reference_price=signal.price,
            )
            if blocked:
                plan.status = PlanStatus.BLOCKED
                plan.reason = (
                    f"{strategy.label} does not {signal.action} in a {signal.regime} market "
                    f"(allowed: {', '.join(sorted(allowed))})."
                )
                blocks.append(BlockedExecution(
                    user_id=bot.user_id, bot=bot, signal=signal, side=side, regime=signal.regime, reason=plan.reason,
                ))
            elif bot.connection.taker_fee is None or bot.connection.taker_fee > max_fee:
                plan.status, plan.reason = PlanStatus.SKIPPED, "The venue's taker fee is above the maximum for bots."
            elif side == OrderSide.BUY:
                loss_today = -(bot.realized_pnl_day if bot.pnl_day == today else ZERO)
                room = bot.max_position - bot.position_quantity
                quantity = _quantize_down(
                    min(bot.allocation / signal.price, room), instrument.quantity_precision
                ) if room > 0 else ZERO
                if bot.daily_loss_limit and loss_today >= bot.daily_loss_limit:
                    plan.status, plan.reason = PlanStatus.SKIPPED, "Daily loss limit reached."
                elif quantity * signal.price < instrument.min_notional:
                    plan.status, plan.reason = PlanStatus.SKIPPED, "Maximum position reached."
                else:
                    plan.quantity = quantity
            else:
                quantity = _quantize_down(bot.position_quantity, instrument.quantity_precision)
                if quantity <= 0 or quantity * signal.price < instrument.min_notional:
                    plan.status, plan.reason = PlanStatus.SKIPPED, "Nothing to sell."
                else:
                    plan.quantity = quantity
            plans.append(plan)
        ExecutionPlan.objects.bulk_create(plans, batch_size=2000, ignore_conflicts=True)
        BlockedExecution.objects.bulk_create(blocks, batch_size=2000, ignore_conflicts=True)
        if signal.planned_at is None:
            signal.planned_at = now
            signal.save(update_fields=["planned_at"])
        pending = list(
            ExecutionPlan.objects.filter(signal=signal, status=PlanStatus.PENDING)
            .order_by("pk").values_list("pk", "user_id")
        )
        blocked_refs = list(
            ExecutionPlan.objects.filter(signal=signal, status=PlanStatus.BLOCKED)
            .order_by("pk").values_list("pk", "user_id")
        )
    logger.info("trading.signal_planned", signal=signal_id, new_plans=len(plans), pending=len(pending))
    return FanOut(signal_id=signal_id, stale=False, planned=len(plans), pending=pending, blocked=blocked_refs)


def plan_order_id(plan_id: int) -> uuid.UUID:
    """The client order id of a plan's order: derived from the plan, so any retry names the same order."""
    return uuid.uuid5(PLAN_NAMESPACE, f"plan:{plan_id}")


def plan_execute(*, plan_id: int, user_id: int, quote=None) -> str:
    """Execute one plan as its owner (tenant context). Returns the plan's final status.

    Safe to run any number of times: the plan row is locked and must still be pending, and the order's
    client order id is derived from the plan, in the same transaction as the plan's new status.
    """
    with tenant(user_id):
        plan = (
            ExecutionPlan.objects.select_for_update(of=("self",))
            .select_related("bot", "bot__connection", "bot__portfolio", "bot__instrument", "signal", "user")
            .defer("user__password")
            .filter(pk=plan_id)
            .first()
        )
        if plan is None or plan.status != PlanStatus.PENDING:
            return plan.status if plan else "missing"
        bot = plan.bot
        if quote is not None and quote.symbol != bot.instrument.symbol:
            quote = None  # another pair's quote: the exchange reads its own
        lag = (timezone.now() - plan.signal.closed_at).total_seconds()
        if lag > settings.TRADING_SIGNAL_MAX_LAG_SECONDS:
            plan.status, plan.reason = PlanStatus.SKIPPED, f"Not executed: the signal was {int(lag)}s old (stale)."
        elif bot.status != BotStatus.ENABLED:
            plan.status, plan.reason = PlanStatus.SKIPPED, "The bot was paused before it could act."
        else:
            quantity, available = plan.quantity, None
            if plan.side == OrderSide.BUY and bot.connection.is_paper:
                available = available_balance(
                    user=plan.user, portfolio=bot.portfolio, connection=bot.connection, currency=bot.instrument.quote
                )
                quantity = paper_buy_quantity(
                    wanted=quantity, price=(quote.ask or quote.price) if quote else plan.reference_price,
                    taker_fee=bot.connection.taker_fee, available=available,
                    precision=bot.instrument.quantity_precision,
                )
            try:
                if quantity <= 0:
                    raise DomainError(INSUFFICIENT_FOR_PLAN)
                with transaction.atomic():
                    order = order_place(
                        user=plan.user, portfolio=bot.portfolio, connection=bot.connection,
                        symbol=bot.instrument.symbol, side=plan.side, type=OrderType.MARKET, quantity=quantity,
                        source=OrderSource.BOT, bot=bot, order_id=plan_order_id(plan.pk), quote=quote,
                        available=available,
                    )
                plan.status, plan.order, plan.quantity = PlanStatus.EXECUTED, order, quantity
            except DomainError as error:
                plan.status, plan.reason = PlanStatus.SKIPPED, str(error)[:300]
                _notify(user=plan.user, **plan_skipped_notice(plan=plan, bot_name=bot.name, error=error))
        plan.executed_at = timezone.now()
        plan.save(update_fields=["status", "reason", "order", "quantity", "executed_at"])
        return plan.status


INSUFFICIENT_FOR_PLAN = "Insufficient balance for this trade."


def paper_buy_quantity(*, wanted: Decimal, price: Decimal, taker_fee, available: Decimal, precision: int) -> Decimal:
    """A bot's paper buy at execution: its planned quantity, cut to what the cash available now pays for at
    `price` with the taker fee and the paper slippage (the balance may have changed since planning)."""
    fee = (taker_fee or ZERO) + Decimal(settings.TRADING_PAPER_SLIPPAGE_RATE)
    return _quantize_down(min(wanted, available / (price * (1 + fee))), precision)


def plan_skipped_notice(*, plan: ExecutionPlan, bot_name: str, error) -> dict:
    """What the trader is told when their bot's plan could not execute (kind, message, link, dedup key)."""
    return {
        "kind": NOTIFY_BLOCKED,
        "message": f"Bot {bot_name} did not {plan.side}: {error}",
        "link": f"/trading/bots/{plan.bot_id}/",
        "dedup_key": f"plan-skipped:{plan.pk}",
    }


def plans_execute(*, plans: Iterable[tuple[int, int]], symbol: str | None = None) -> dict[str, int]:
    """Execute a chunk of plans, each in its owner's tenant context; one quote read for the chunk.

    Paper plans go through the batch executor (trading.execution: one transaction, a few round trips);
    the rest, and all of them if the batch fails for a reason other than a database outage, one by one.
    """
    from trading.execution import paper_plans_execute

    quote = None
    if symbol:
        from marketdata.selectors import quote_latest_map

        quote = quote_latest_map(symbols=[symbol]).get(symbol)
        if quote is not None and quote.stale:
            quote = None
    refs = [(int(plan_id), int(user_id)) for plan_id, user_id in plans]
    counts: dict[str, int] = {}
    if quote is not None and refs:
        try:
            outcome = paper_plans_execute(refs, quote=quote)
        except (OperationalError, InterfaceError):
            raise  # the task retries the chunk: nothing of the batch was kept
        except Exception:
            logger.exception("trading.batch_failed", plans=len(refs))
        else:
            counts.update(outcome.counts)
            refs = outcome.leftovers
    for plan_id, user_id in refs:
        status = plan_execute(plan_id=plan_id, user_id=user_id, quote=quote)
        counts[status] = counts.get(status, 0) + 1
    return counts


def blocked_notify(*, plans: Iterable[tuple[int, int]]) -> int:
    """Tell each trader about their blocked executions (once per plan, by dedup key) and send the signal.

    In one batch (trading.execution), or one by one if the batch fails for a reason other than an outage.
    """
    from trading.execution import blocked_notify_batch

    refs = [(int(plan_id), int(user_id)) for plan_id, user_id in plans]
    if not refs:
        return 0
    try:
        return blocked_notify_batch(refs)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception("trading.blocked_batch_failed", plans=len(refs))
    return sum(_blocked_notify_one(plan_id=plan_id, user_id=user_id) for plan_id, user_id in refs)


def blocked_message(*, bot_name: str, side: str, reason: str) -> str:
    return f"Bot {bot_name}: {side} blocked by the regime gatekeeper. {reason}"


def blocked_payload(blocked: BlockedExecution) -> dict:
    """One entry of the `executions_blocked` signal (trading.signals)."""
    return {
        "blocked_id": blocked.pk, "user_id": blocked.user_id, "bot_id": blocked.bot_id,
        "signal_id": blocked.signal_id, "regime": blocked.regime, "reason": blocked.reason,
    }


def executions_blocked_send(payloads: list[dict]) -> None:
    from trading.signals import executions_blocked

    if payloads:
        executions_blocked.send_robust(sender=BlockedExecution, blocks=payloads)


def _blocked_notify_one(*, plan_id: int, user_id: int) -> int:
    with tenant(user_id):
        plan = ExecutionPlan.objects.select_related("bot", "user").defer("user__password").filter(pk=plan_id).first()
        if plan is None:
            return 0
        blocked = BlockedExecution.objects.filter(signal_id=plan.signal_id, bot_id=plan.bot_id).first()
        _notify(
            user=plan.user, kind=NOTIFY_BLOCKED,
            message=blocked_message(bot_name=plan.bot.name, side=plan.side, reason=plan.reason),
            link=BLOCKED_LINK, dedup_key=f"blocked:{plan.signal_id}:{plan.bot_id}",
        )
        if blocked is not None:
            payloads = [blocked_payload(blocked)]
            transaction.on_commit(lambda: executions_blocked_send(payloads))
    return 1


# --- the sweeper (Celery beat) ------------------------------------------------------------------------------

LOST_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Sweep:
    expired_plans: int
    requeued_plans: list[tuple[int, int, str]]
    resubmitted_orders: list[tuple[str, int]]


def trading_sweep(*, now=None) -> Sweep:
    """Find work whose queue message was lost (broker down at commit) and what went stale waiting.

    - pending plans of a signal older than TRADING_SIGNAL_MAX_LAG_SECONDS are skipped, never executed late;
    - pending plans older than a minute are handed to executors again (executing twice is harmless);
    - real-venue orders still `new` a minute after they were written are submitted again (the submit
      fetches before it places).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRADING_SIGNAL_MAX_LAG_SECONDS)
    with system_context(reason="trading sweep: stale plans, lost fan-out chunks, unsent orders"):
        expired = ExecutionPlan.objects.filter(status=PlanStatus.PENDING, signal__closed_at__lt=cutoff).update(
            status=PlanStatus.SKIPPED, reason="Not executed in time: the signal went stale.", executed_at=now
        )
        lost = list(
            ExecutionPlan.objects.filter(status=PlanStatus.PENDING, created_at__lt=now - LOST_AFTER)
            .order_by("pk")
            .values_list("pk", "user_id", "signal__instrument__symbol")
        )
        unsent = [
            (str(pk), user_id)
            for pk, user_id in Order.objects.filter(status=OrderStatus.NEW, updated_at__lt=now - LOST_AFTER)
            .exclude(connection__venue=Venue.PAPER)
            .values_list("pk", "user_id")
        ]
    return Sweep(expired_plans=expired, requeued_plans=lost, resubmitted_orders=unsent)
