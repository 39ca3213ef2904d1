"""The built-in paper exchange: fills against the live quote from the market feed.

- market orders fill at once at the quote (ask for buys, bid for sells, else the last price) moved
  against the trader by `TRADING_PAPER_SLIPPAGE_RATE`;
- limit orders fill at their limit price when the market crosses it (at once if already marketable);
- stop-market and take-profit orders wait for their trigger and then fill like a market order at the
  triggering price; stop-limit orders become a limit order when triggered;
- the fee is `TRADING_PAPER_FEE_RATE` (0.10% by default) of the notional, in the quote currency.

Paper balances are the paper portfolio's own cash and positions (portfolios app), so a fill moves them
exactly as a real fill would; open orders hold back what they may still need. The exchange's order book is
trading's own order table: orders are placed in the transaction that writes them, and resting ones are
matched against the feed's prices (`resting_orders_crossed` finds them across tenants, `resting_match`
decides each as its owner; trading.orders.services applies the outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.money import ZERO
from core.rls import system_context
from marketdata.selectors import instrument_get, quote_latest_map
from trading import ledger
from trading.choices import OPEN_ORDER_STATUSES, OrderSide, OrderStatus, OrderType, Venue
from trading.common import quantize_down
from trading.exchanges.base import (
    Balance,
    Credentials,
    ExchangeFill,
    ExchangeOrder,
    ExchangeRejected,
    FeeSchedule,
    KeyPermissions,
    MarketRules,
    OrderRequest,
    RestingMatch,
)
from trading.models import Order

FEE_QUANTUM = Decimal("0.00000001")
RESTING_STATUSES = [OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED]


@dataclass(frozen=True)
class PaperQuote:
    price: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None


def _fee_rate() -> Decimal:
    return Decimal(settings.TRADING_PAPER_FEE_RATE)


def _market_price(side: str, quote: PaperQuote, *, price_precision: int) -> Decimal:
    slippage = Decimal(settings.TRADING_PAPER_SLIPPAGE_RATE)
    if side == OrderSide.BUY:
        price = (quote.ask or quote.price) * (1 + slippage)
    else:
        price = (quote.bid or quote.price) * (1 - slippage)
    # Rounded to the tick against the trader, like the slippage itself.
    rounding = ROUND_UP if side == OrderSide.BUY else ROUND_DOWN
    return price.quantize(Decimal(1).scaleb(-price_precision), rounding=rounding)


def market_fill(
    *, side: str, price: Decimal, quantity: Decimal, price_precision: int, quote_currency: str, at: datetime,
    client_order_id: str,
) -> ExchangeFill:
    """How the paper exchange fills a market order when all it knows is a last price (no bid or ask): the
    same slippage, tick rounding and fee as a live paper fill. The replay's execution sink."""
    fill_price = _market_price(side, PaperQuote(price=price), price_precision=price_precision)
    [fill] = _filled(client_order_id, quantity, fill_price, quote_currency, at).fills
    return fill


def _triggered(order_type: str, side: str, stop_price: Decimal, price: Decimal) -> bool:
    # A stop guards against the market moving against the trader; a take-profit fires when it moved for them.
    if order_type in {OrderType.STOP_MARKET, OrderType.STOP_LIMIT}:
        return price >= stop_price if side == OrderSide.BUY else price <= stop_price
    if order_type == OrderType.TAKE_PROFIT:
        return price <= stop_price if side == OrderSide.BUY else price >= stop_price
    return True


def _limit_crossed(side: str, limit: Decimal, price: Decimal) -> bool:
    return price <= limit if side == OrderSide.BUY else price >= limit


def _filled(client_order_id: str, quantity: Decimal, price: Decimal, quote_currency: str, at: datetime) -> ExchangeOrder:
    fee = (quantity * price * _fee_rate()).quantize(FEE_QUANTUM)
    fill = ExchangeFill(
        fill_id=f"paper:{client_order_id}",
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=quote_currency,
        executed_at=at,
    )
    return ExchangeOrder(
        client_order_id=client_order_id,
        exchange_order_id=f"paper-{client_order_id}",
        status=OrderStatus.FILLED,
        filled_quantity=quantity,
        average_price=price,
        fills=(fill,),
    )


def paper_match(
    *,
    client_order_id: str,
    side: str,
    order_type: str,
    quantity: Decimal,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    already_triggered: bool,
    resting_limit: bool = False,
    quote: PaperQuote,
    quote_currency: str,
    price_precision: int,
    at: datetime,
) -> tuple[ExchangeOrder, bool]:
    """The matching engine for one order at one quote: (what the venue says now, whether it is triggered)."""
    triggered = already_triggered or stop_price is None or _triggered(order_type, side, stop_price, quote.price)
    resting = ExchangeOrder(
        client_order_id=client_order_id, exchange_order_id=f"paper-{client_order_id}", status=OrderStatus.OPEN
    )
    if not triggered:
        return resting, False
    if order_type in {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT}:
        if order_type == OrderType.MARKET:
            price = _market_price(side, quote, price_precision=price_precision)
        else:
            price = _market_price(side, PaperQuote(price=quote.price), price_precision=price_precision)
        return _filled(client_order_id, quantity, price, quote_currency, at), True
    touch = (quote.ask or quote.price) if side == OrderSide.BUY else (quote.bid or quote.price)
    if _limit_crossed(side, limit_price, touch):
        if resting_limit:
            # A resting limit order is filled at its own price when the market trades through it.
            price = limit_price
        else:
            # Marketable on arrival (or the moment its stop triggers): it takes the better touch.
            price = min(limit_price, touch) if side == OrderSide.BUY else max(limit_price, touch)
        return _filled(client_order_id, quantity, price, quote_currency, at), True
    return resting, True


def reserved_total(orders, *, side: str, fee_rate: Decimal) -> Decimal:
    """The quote (buys, with the taker fee) or base units (sells) that open `orders` of one side hold back."""
    total = ZERO
    for order in orders:
        remaining = order.quantity - order.filled_quantity
        if side == OrderSide.BUY:
            total += remaining * (order.price or order.stop_price or order.average_price or ZERO) * (1 + fee_rate)
        else:
            total += remaining
    return total


def resting_orders_crossed(*, symbol: str, price: Decimal) -> list[tuple[str, int]]:
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
            crosses, status__in=RESTING_STATUSES, instrument__symbol=symbol, connection__venue=Venue.PAPER,
        ).values_list("pk", "user_id")
        return [(str(pk), user_id) for pk, user_id in rows]


class PaperAdapter:
    venue = Venue.PAPER
    needs_credentials = False
    counts_against_plan = False
    places_in_transaction = True
    can_batch = True

    def __init__(self, *, connection, portfolio=None) -> None:
        self.connection = connection
        self.portfolio = portfolio

    @classmethod
    def for_connection(cls, connection, *, portfolio=None, credentials: Credentials | None = None) -> PaperAdapter:
        return cls(connection=connection, portfolio=portfolio)

    @classmethod
    def trades_portfolio(cls, portfolio) -> bool:
        return ledger.is_paper_portfolio(portfolio)

    def validate_credentials(self) -> KeyPermissions:
        return KeyPermissions(can_trade=True, can_withdraw=False, ip_restricted=True)

    def _quote(self, symbol: str) -> PaperQuote | None:
        """The live quote, or None when there is none or it is stale."""
        snapshot = quote_latest_map(symbols=[symbol]).get(symbol)
        if snapshot is None or snapshot.stale:
            return None
        return PaperQuote(price=snapshot.price, bid=snapshot.bid, ask=snapshot.ask)

    def balances(self) -> dict[str, Balance]:
        balances = {
            currency: Balance(currency=currency, free=amount, used=ZERO)
            for currency, amount in ledger.cash_balances(portfolio=self.portfolio)
        }
        for base, quantity in ledger.holdings(portfolio=self.portfolio):
            balances[base] = Balance(currency=base, free=quantity, used=ZERO)
        return balances

    def _open_orders(self, *, side: str):
        return Order.objects.filter(
            portfolio=self.portfolio, connection=self.connection, side=side, status__in=OPEN_ORDER_STATUSES
        )

    def reserved(self, open_orders, *, side: str) -> Decimal:
        return reserved_total(open_orders, side=side, fee_rate=self.connection.taker_fee or ZERO)

    def spendable(self, *, currency: str) -> Decimal:
        cash = ledger.cash(portfolio=self.portfolio, currency=currency)
        return cash - self.reserved(self._open_orders(side=OrderSide.BUY).filter(instrument__quote=currency), side=OrderSide.BUY)

    def sellable(self, *, instrument) -> Decimal:
        held = ledger.holding(portfolio=self.portfolio, instrument=instrument)
        return held - self.reserved(self._open_orders(side=OrderSide.SELL).filter(instrument=instrument), side=OrderSide.SELL)

    def buy_quantity_within(self, *, wanted: Decimal, price: Decimal, available: Decimal, precision: int) -> Decimal:
        """The taker fee and the paper slippage are known here: the buy is cut to what `available` pays for."""
        fee = (self.connection.taker_fee or ZERO) + Decimal(settings.TRADING_PAPER_SLIPPAGE_RATE)
        return quantize_down(min(wanted, available / (price * (1 + fee))), precision)

    def place_order(self, request: OrderRequest, *, quote=None, instrument=None) -> ExchangeOrder:
        if instrument is None or instrument.symbol != request.symbol:
            instrument = instrument_get(symbol=request.symbol)
        if quote is not None:
            quote = PaperQuote(price=quote.price, bid=quote.bid, ask=quote.ask)
        else:
            quote = self._quote(request.symbol)
        if quote is None:
            if request.type == OrderType.MARKET:
                raise ExchangeRejected(
                    f"The {request.symbol} price is stale or missing; market orders wait until the feed is live again."
                )
            # Limit and stop orders rest; the next live tick matches them.
            return ExchangeOrder(
                client_order_id=request.client_order_id,
                exchange_order_id=f"paper-{request.client_order_id}",
                status=OrderStatus.OPEN,
            )
        result, _ = paper_match(
            client_order_id=request.client_order_id,
            side=request.side,
            order_type=request.type,
            quantity=request.quantity,
            limit_price=request.price,
            stop_price=request.stop_price,
            already_triggered=False,
            quote=quote,
            quote_currency=instrument.quote,
            price_precision=instrument.price_precision,
            at=timezone.now(),
        )
        return result

    def resting_match(self, *, order, price: Decimal) -> RestingMatch:
        update, triggered = paper_match(
            client_order_id=order.client_order_id, side=order.side, order_type=order.type,
            quantity=order.remaining_quantity, limit_price=order.price, stop_price=order.stop_price,
            already_triggered=order.triggered_at is not None,
            resting_limit=order.type == OrderType.LIMIT or order.triggered_at is not None,
            quote=PaperQuote(price=price),
            quote_currency=order.instrument.quote, price_precision=order.instrument.price_precision,
            at=timezone.now(),
        )
        return RestingMatch(update=update, triggered=triggered)

    def cancel_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        return ExchangeOrder(
            client_order_id=client_order_id,
            exchange_order_id=exchange_order_id or f"paper-{client_order_id}",
            status=OrderStatus.CANCELLED,
            reason="Cancelled by you.",
        )

    def fetch_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        order = Order.objects.filter(pk=client_order_id).first()
        if order is None:
            raise ExchangeRejected(f"The paper exchange has no order {client_order_id}.")
        return ExchangeOrder(
            client_order_id=client_order_id,
            exchange_order_id=order.exchange_order_id,
            status=order.status,
            filled_quantity=order.filled_quantity,
            average_price=order.average_price,
        )

    def open_orders(self, *, symbol: str | None = None) -> list[ExchangeOrder]:
        orders = Order.objects.filter(
            user_id=self.connection.user_id, connection=self.connection, status__in=OPEN_ORDER_STATUSES
        ).order_by("-created_at")
        if symbol:
            orders = orders.filter(instrument__symbol=symbol)
        return [
            ExchangeOrder(
                client_order_id=str(o.pk),
                exchange_order_id=o.exchange_order_id,
                status=o.status,
                filled_quantity=o.filled_quantity,
                average_price=o.average_price,
            )
            for o in orders
        ]

    def fee_schedule(self, *, symbol: str) -> FeeSchedule:
        return FeeSchedule(maker=_fee_rate(), taker=_fee_rate())

    def market_rules(self, *, symbol: str) -> MarketRules:
        instrument = instrument_get(symbol=symbol)
        return MarketRules(
            symbol=instrument.symbol,
            price_precision=instrument.price_precision,
            quantity_precision=instrument.quantity_precision,
            min_notional=instrument.min_notional,
        )
