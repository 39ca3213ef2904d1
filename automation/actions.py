"""A rule's actions: validated when the rule is saved, carried out (or described, in a dry run) by a run.

Stored as a list of dicts (kind + settings). Text fields may use the trigger event's variables
(`{{ticker}}`, `{{price}}` ...), filled in when the run acts. Every action goes through the owning app's
services with every check they make (orders: trading's order_place with its validation and balance
checks; bots: bot_set_status; watchlists: watchlist_add; messages: core's notification service and
channel-post registry).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import Http404

from automation.choices import NOTIFICATION_KIND, ActionKind, ActionStatus
from automation.outgoing import WebhookRefused, url_check
from automation.templating import has_placeholder, render
from core.errors import DomainError
from core.money import decimal_parse, plain
from core.notifications import notify
from marketdata.selectors import instrument_get, instrument_list, quote_latest_map
from portfolios.selectors import portfolio_get, watchlist_get
from portfolios.services import watchlist_add
from trading.bots.selectors import bot_get
from trading.bots.services import bot_set_status
from trading.choices import BotStatus, OrderSide, OrderSource, OrderStatus, OrderType
from trading.connections.selectors import connection_get
from trading.orders.services import order_place

ORDER_NAMESPACE = uuid.UUID("5d0c7f1e-8a43-4c4e-9b7e-2f1a6c0d9e11")
QUANTITY = {"max_digits": 32, "decimal_places": 16}
MAX_TEXT = 1000
# Actions whose effect leaves the database: recorded as sending before the call, never repeated after a crash.
EXTERNAL_ACTIONS = frozenset({ActionKind.DISCORD_POST})


@dataclass
class Outcome:
    status: str
    summary: str
    detail: str = ""
    order: Any = None
    order_value: Decimal | None = None


def run_order_id(*, run_id: int, position: int) -> uuid.UUID:
    """The client order id of a run's order action: the same on every retry, so one order at most."""
    return uuid.uuid5(ORDER_NAMESPACE, f"automation-run:{run_id}:{position}")


# --- Validation -----------------------------------------------------------------------------------------


def _owned(getter, *, user, pk, field: str, what: str):
    try:
        return getter(user=user, pk=pk)
    except (Http404, DomainError):
        raise DomainError(f"Choose one of your {what}.", field=field) from None


def _text(raw: dict, key: str, *, field: str, label: str, required: bool = True) -> str:
    value = str(raw.get(key) or "").strip()
    if required and not value:
        raise DomainError(f"Enter {label}.", field=field)
    if len(value) > MAX_TEXT:
        raise DomainError(f"Keep {label} under {MAX_TEXT} characters.", field=field)
    return value


def action_clean(*, user, raw: dict, prefix: str = "action") -> dict:
    kind = raw.get("kind")
    if kind not in ActionKind.values:
        raise DomainError("Choose what the action does.", field=f"{prefix}_kind")
    if kind == ActionKind.NOTIFY:
        return {"kind": kind, "message": _text(raw, "message", field=f"{prefix}_message", label="a message")}
    if kind == ActionKind.PLACE_ORDER:
        connection = _owned(connection_get, user=user, pk=raw.get("connection_id"), field=f"{prefix}_connection",
                            what="exchange connections")
        portfolio = _owned(portfolio_get, user=user, pk=raw.get("portfolio_id"), field=f"{prefix}_portfolio",
                           what="portfolios")
        symbol = _text(raw, "symbol", field=f"{prefix}_symbol", label="a market, e.g. BTC/USDT or {{ticker}}")
        if not has_placeholder(symbol):
            symbol = instrument_get(symbol=symbol).symbol
        side = _text(raw, "side", field=f"{prefix}_side", label="buy, sell or a variable such as {{action}}").lower()
        if not has_placeholder(side) and side not in OrderSide.values:
            raise DomainError("The side is buy, sell or a variable such as {{action}}.", field=f"{prefix}_side")
        order_type = raw.get("order_type") or OrderType.MARKET
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise DomainError("Rules place market or limit orders.", field=f"{prefix}_order_type")
        quantity = _text(raw, "quantity", field=f"{prefix}_quantity", label="a quantity")
        if not has_placeholder(quantity) and decimal_parse(
            quantity, field=f"{prefix}_quantity", label="a quantity", **QUANTITY
        ) <= 0:
                raise DomainError("The quantity must be greater than zero.", field=f"{prefix}_quantity")
        price = _text(raw, "price", field=f"{prefix}_price", label="a limit price", required=order_type == OrderType.LIMIT)
        if price and not has_placeholder(price):
            decimal_parse(price, field=f"{prefix}_price", label="a price", **QUANTITY)
        return {
            "kind": kind, "connection_id": connection.pk, "portfolio_id": portfolio.pk, "symbol": symbol,
            "side": side, "order_type": order_type, "quantity": quantity, "price": price if order_type == "limit" else "",
        }
    if kind in (ActionKind.PAUSE_BOT, ActionKind.RESUME_BOT):
        bot = _owned(bot_get, user=user, pk=raw.get("bot_id"), field=f"{prefix}_bot", what="bots")
        return {"kind": kind, "bot_id": bot.pk}
    if kind == ActionKind.WATCHLIST_ADD:
        watchlist = _owned(watchlist_get, user=user, pk=raw.get("watchlist_id"), field=f"{prefix}_watchlist",
                           what="watchlists")
        symbol = _text(raw, "symbol", field=f"{prefix}_symbol", label="a market, e.g. ETH/USDT or {{ticker}}")
        if not has_placeholder(symbol):
            symbol = instrument_get(symbol=symbol).symbol
        return {"kind": kind, "watchlist_id": watchlist.pk, "symbol": symbol}
    if kind == ActionKind.DISCORD_POST:
        channel_id = _text(raw, "channel_id", field=f"{prefix}_channel_id", label="a Discord channel id")
        if not channel_id.isdigit() or len(channel_id) > 25:
            raise DomainError("A Discord channel id is a number (Copy Channel ID in Discord).", field=f"{prefix}_channel_id")
        return {"kind": kind, "channel_id": channel_id,
                "message": _text(raw, "message", field=f"{prefix}_message", label="a message")}
    url = _text(raw, "url", field=f"{prefix}_url", label="a URL")
    try:
        url_check(url)
    except WebhookRefused as exc:
        raise DomainError(str(exc), field=f"{prefix}_url") from None
    return {"kind": kind, "url": url, "message": _text(raw, "message", field=f"{prefix}_message", label="a message",
                                                        required=False)}


def action_describe(action: dict) -> str:
    kind = action["kind"]
    if kind == ActionKind.NOTIFY:
        return f"Notify: {action['message']}"
    if kind == ActionKind.PLACE_ORDER:
        at = f" at {action['price']}" if action.get("price") else " at market"
        return f"{action['side'].capitalize()} {action['quantity']} {action['symbol']}{at}"
    if kind in (ActionKind.PAUSE_BOT, ActionKind.RESUME_BOT):
        return f"{'Pause' if kind == ActionKind.PAUSE_BOT else 'Resume'} bot #{action['bot_id']}"
    if kind == ActionKind.WATCHLIST_ADD:
        return f"Add {action['symbol']} to watchlist #{action['watchlist_id']}"
    if kind == ActionKind.DISCORD_POST:
        return f"Post to Discord channel {action['channel_id']}: {action['message']}"
    return f"POST to {action['url']}"


# --- Acting ---------------------------------------------------------------------------------------------


def _instrument(symbol: str):
    """A listed instrument for "BTC/USDT", "BTC-USDT" or TradingView's "BTCUSDT" (and "BINANCE:BTCUSDT")."""
    symbol = symbol.strip().split(":")[-1]
    try:
        return instrument_get(symbol=symbol)
    except DomainError:
        squashed = symbol.upper().replace("/", "").replace("-", "")
        for instrument in instrument_list():
            if instrument.symbol.replace("/", "") == squashed:
                return instrument
        raise


@dataclass(frozen=True)
class OrderPlan:
    connection: object
    portfolio: object
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None
    estimate: Decimal

    def describe(self) -> str:
        at = f"limit {plain(self.price)}" if self.price is not None else "market"
        return (
            f"{self.side.capitalize()} {plain(self.quantity)} {self.symbol} ({at}) on {self.connection.label}, "
            f"about {plain(self.estimate.quantize(Decimal('0.01')))}"
        )


def order_plan(*, user, action: dict, variables: dict) -> OrderPlan:
    connection = _owned(connection_get, user=user, pk=action["connection_id"], field="connection",
                        what="exchange connections")
    portfolio = _owned(portfolio_get, user=user, pk=action["portfolio_id"], field="portfolio", what="portfolios")
    instrument = _instrument(render(action["symbol"], variables))
    side = render(action["side"], variables).strip().lower()
    if side not in OrderSide.values:
        raise DomainError(f"The side must be buy or sell, not {side!r}.")
    quantity = decimal_parse(render(action["quantity"], variables), field="quantity", label="a quantity", **QUANTITY)
    if quantity <= 0:
        raise DomainError("The quantity must be greater than zero.")
    price = None
    if action.get("order_type") == OrderType.LIMIT:
        price = decimal_parse(render(action["price"], variables), field="price", label="a price", **QUANTITY)
        reference = price
    else:
        quote = quote_latest_map(symbols=[instrument.symbol]).get(instrument.symbol)
        if quote is None:
            raise DomainError(f"No price for {instrument.symbol} yet: the order's value cannot be checked.")
        reference = quote.price
    return OrderPlan(
        connection=connection, portfolio=portfolio, symbol=instrument.symbol, side=side,
        order_type=action.get("order_type") or OrderType.MARKET, quantity=quantity, price=price,
        estimate=quantity * reference,
    )


def order_act(*, user, plan: OrderPlan, order_id: uuid.UUID) -> Outcome:
    order = order_place(
        user=user, portfolio=plan.portfolio, connection=plan.connection, symbol=plan.symbol, side=plan.side,
        type=plan.order_type, quantity=plan.quantity, price=plan.price, source=OrderSource.AUTOMATION,
        order_id=order_id,
    )
    value = plan.estimate
    if order.filled_quantity and order.average_price:
        value = order.filled_quantity * order.average_price
    state = OrderStatus(order.status).label.lower()
    if order.status == OrderStatus.FILLED:
        verb = "Bought" if plan.side == OrderSide.BUY else "Sold"
        summary = f"{verb} {plain(order.filled_quantity)} {plan.symbol} at {plain(order.average_price)} ({state})"
    else:
        summary = f"Order {plan.side} {plain(plan.quantity)} {plan.symbol} placed ({state})"
    return Outcome(ActionStatus.SUCCEEDED, summary, order=order, order_value=value)


def simple_act(*, user, action: dict, variables: dict, dry_run: bool, dedup_key: str, link: str) -> Outcome:
    """Notify, pause/resume a bot, add to a watchlist: checked, then done (or described)."""
    kind = action["kind"]
    if kind == ActionKind.NOTIFY:
        message = render(action["message"], variables)
        if dry_run:
            return Outcome(ActionStatus.WOULD, f"Would notify: {message}")
        notify(user=user, kind=NOTIFICATION_KIND, message=message, link=link, dedup_key=dedup_key)
        return Outcome(ActionStatus.SUCCEEDED, f"Notified: {message}")
    if kind in (ActionKind.PAUSE_BOT, ActionKind.RESUME_BOT):
        bot = _owned(bot_get, user=user, pk=action["bot_id"], field="bot", what="bots")
        status = BotStatus.PAUSED if kind == ActionKind.PAUSE_BOT else BotStatus.ENABLED
        verb = "Pause" if kind == ActionKind.PAUSE_BOT else "Resume"
        if dry_run:
            return Outcome(ActionStatus.WOULD, f"Would {verb.lower()} bot {bot.name}")
        bot_set_status(user=user, bot=bot, status=status)
        return Outcome(ActionStatus.SUCCEEDED, f"{verb}d bot {bot.name}")
    if kind == ActionKind.WATCHLIST_ADD:
        watchlist = _owned(watchlist_get, user=user, pk=action["watchlist_id"], field="watchlist", what="watchlists")
        instrument = _instrument(render(action["symbol"], variables))
        if dry_run:
            return Outcome(ActionStatus.WOULD, f"Would add {instrument.symbol} to {watchlist.name}")
        watchlist_add(user=user, watchlist=watchlist, instrument=instrument)
        return Outcome(ActionStatus.SUCCEEDED, f"Added {instrument.symbol} to {watchlist.name}")
    raise ValueError(f"{kind} is not a simple action")
