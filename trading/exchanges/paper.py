"""The built-in paper exchange: fills against the live quote from the market feed.

- market orders fill at once at the quote (ask for buys, bid for sells, else the last price) moved
  against the trader by `TRADING_PAPER_SLIPPAGE_RATE`;
- limit orders fill at their limit price when the market crosses it (at once if already marketable);
- stop-market and take-profit orders wait for their trigger and then fill like a market order at the
  triggering price; stop-limit orders become a limit order when triggered;
- the fee is `TRADING_PAPER_FEE_RATE` (0.10% by default) of the notional, in the quote currency.

Paper balances are the paper portfolio's own cash and positions (portfolios app), so a fill moves them
exactly as a real fill would. Resting orders are matched by `paper_match_tick` from the tick receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.conf import settings
from django.utils import timezone

from trading.choices import OrderSide, OrderStatus, OrderType
from trading.exchanges.base import (
    Balance,
    ExchangeFill,
    ExchangeOrder,
    ExchangeRejected,
    FeeSchedule,
    KeyPermissions,
    MarketRules,
    OrderRequest,
)

FEE_QUANTUM = Decimal("0.00000001")


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


class PaperAdapter:
    venue = "paper"
    is_paper = True

    def __init__(self, *, connection, portfolio=None) -> None:
        self.connection = connection
        self.portfolio = portfolio

    def validate_credentials(self) -> KeyPermissions:
        return KeyPermissions(can_trade=True, can_withdraw=False, ip_restricted=True)

    def _quote(self, symbol: str) -> PaperQuote | None:
        """The live quote, or None when there is none or it is stale."""
        from marketdata.selectors import quote_latest_map

        snapshot = quote_latest_map(symbols=[symbol]).get(symbol)
        if snapshot is None or snapshot.stale:
            return None
        return PaperQuote(price=snapshot.price, bid=snapshot.bid, ask=snapshot.ask)

    def _instrument(self, symbol: str):
        from marketdata.selectors import instrument_get

        return instrument_get(symbol=symbol)

    def balances(self) -> dict[str, Balance]:
        from trading.selectors import paper_balances

        return paper_balances(portfolio=self.portfolio)

    def place_order(self, request: OrderRequest) -> ExchangeOrder:
        instrument = self._instrument(request.symbol)
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

    def cancel_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        return ExchangeOrder(
            client_order_id=client_order_id,
            exchange_order_id=exchange_order_id or f"paper-{client_order_id}",
            status=OrderStatus.CANCELLED,
        )

    def fetch_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        from trading.models import Order

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
        from trading.selectors import order_list

        orders = order_list(user=self.connection.user, open_only=True).filter(connection=self.connection)
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
        instrument = self._instrument(symbol)
        return MarketRules(
            symbol=instrument.symbol,
            price_precision=instrument.price_precision,
            quantity_precision=instrument.quantity_precision,
            min_notional=instrument.min_notional,
        )
