"""What an order ticket checks before anything is written: fields, precision, minimum notional, balance."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from core.errors import DomainError
from core.money import ZERO, plain
from marketdata.selectors import instrument_get, quote_latest_map
from trading.choices import ORDER_TYPES_WITH_PRICE, ORDER_TYPES_WITH_TRIGGER, OrderSide, OrderType
from trading.common import decimal_input, places
from trading.connections.selectors import connection_trades_portfolio
from trading.exchanges.base import ExchangeUnavailable, OrderStatusUnknown
from trading.exchanges.registry import adapter_for
from trading.models import ExchangeConnection

if TYPE_CHECKING:
    from marketdata.models import Instrument


@dataclass(frozen=True)
class OrderCheck:
    instrument: Instrument
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
    if connection.user_id != user.pk or portfolio.user_id != user.pk:
        raise DomainError("Choose one of your own connections and portfolios.")
    if connection.status != "active":
        raise DomainError("This exchange connection is disabled.", field="connection")
    if not connection_trades_portfolio(connection=connection, portfolio=portfolio):
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
    quantity = decimal_input(quantity, field="quantity", label="Quantity")
    if quantity is None:
        raise DomainError("Enter a quantity.", field="quantity")
    price = decimal_input(price, field="price", label="Limit price")
    stop_price = decimal_input(stop_price, field="stop_price", label="Trigger price")
    if type in ORDER_TYPES_WITH_PRICE and price is None:
        raise DomainError("A limit order needs a limit price.", field="price")
    if type not in ORDER_TYPES_WITH_PRICE:
        price = None
    if type in ORDER_TYPES_WITH_TRIGGER and stop_price is None:
        raise DomainError("This order type needs a trigger price.", field="stop_price")
    if type not in ORDER_TYPES_WITH_TRIGGER:
        stop_price = None
    if places(quantity) > instrument.quantity_precision:
        raise DomainError(
            f"{instrument.symbol} quantities allow at most {instrument.quantity_precision} decimal places.",
            field="quantity",
        )
    for value, field in ((price, "price"), (stop_price, "stop_price")):
        if value is not None and places(value) > instrument.price_precision:
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
            f"{instrument.symbol} needs at least {plain(instrument.min_notional)} {instrument.quote}.",
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
                f"Insufficient balance: you can sell at most {plain(held)} {instrument.base}.",
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


def _balance_error(connection: ExchangeConnection, error: Exception) -> DomainError:
    return DomainError(f"Could not read your balance from {connection.get_venue_display()}: {error}")


def available_balance(*, user, portfolio, connection: ExchangeConnection, currency: str) -> Decimal:
    """What a new buy on `connection` may spend of `currency` now."""
    try:
        return adapter_for(connection, portfolio=portfolio).spendable(currency=currency)
    except (ExchangeUnavailable, OrderStatusUnknown) as error:
        raise _balance_error(connection, error) from error


def available_holding(*, user, portfolio, connection: ExchangeConnection, instrument) -> Decimal:
    """How much of `instrument` a new sell on `connection` may sell now."""
    try:
        return adapter_for(connection, portfolio=portfolio).sellable(instrument=instrument)
    except (ExchangeUnavailable, OrderStatusUnknown) as error:
        raise _balance_error(connection, error) from error
