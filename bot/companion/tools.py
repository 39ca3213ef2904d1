"""The companion's tools: what a model may look up or propose, run as the asking user.

Each tool calls the same selectors and services the pages use, inside `tenant(user.pk)`, and returns a
JSON-able dict whose figures are strings formatted as the pages format them (the dashboard's quantity,
money, signed money and percent filters), so the companion states the same numbers the member sees on
the dashboard. A tool never raises for bad input: it returns {"error": "..."} saying what was wrong.

Writes (alert_create, alert_pause, bot_pause, bot_resume) have `confirm=True`: during a question only
their `preview` runs (it checks the request and says what would happen); `tool_execute` does the write
after the member confirms (service.companion_confirm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.http import Http404

from alerts import selectors as alert_selectors
from alerts import services as alert_services
from alerts.choices import AlertKind, AlertState
from alerts.models import THRESHOLD
from bot.companion.indicators import INDICATORS, indicator_lookup
from core.errors import DomainError
from core.money import decimal_parse
from core.rls import tenant
from marketdata.selectors import (
    TIMEFRAMES,
    candle_list,
    canonical_symbol,
    instrument_get,
    instrument_list,
    quote_latest_map,
)
from portfolios.choices import Period
from portfolios.selectors import portfolio_history, portfolio_list, portfolio_valuation
from portfolios.templatetags.portfolio_format import money, pct, quantity, signed_money
from portfolios.templatetags.portfolio_format import price as price_format
from trading.bots.selectors import bot_get, bot_list
from trading.bots.services import bot_set_status
from trading.choices import BotStatus
from trading.decisions.selectors import regime_latest_map
from trading.orders.selectors import order_list

LIST_LIMIT = 20
LOOKBACK_MAX = 500
PERIOD_ALIASES = {
    "1d": "1D", "day": "1D", "today": "1D", "daily": "1D",
    "1w": "1W", "week": "1W", "weekly": "1W", "7d": "1W",
    "1m": "1M", "month": "1M", "monthly": "1M", "30d": "1M",
    "ytd": "YTD", "year to date": "YTD",
    "1y": "1Y", "year": "1Y", "12m": "1Y",
    "all": "ALL", "all time": "ALL", "since inception": "ALL", "max": "ALL",
}  # fmt: skip


class ToolInputError(DomainError):
    """The model (or the member) asked a tool for something it cannot do; the message says why."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[..., dict[str, Any]]
    label: Callable[[dict[str, Any]], str]
    confirm: bool = False
    preview: Callable[..., dict[str, Any]] | None = None

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


# --- helpers ------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else None


def _one_decimal_places(value: Decimal | None, places: int) -> str | None:
    if value is None:
        return None
    return f"{Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


def _text(value: Any, *, name: str, max_length: int = 64) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > max_length:
        raise ToolInputError(f"{name} is at most {max_length} characters.")
    return text


def _instrument(symbol: Any):
    """A pair from "BTC/USDT", "btc-usdt" or a base asset alone ("BTC": its first listed pair)."""
    text = _text(symbol, name="pair", max_length=32)
    if not text:
        raise ToolInputError("Name a pair, such as BTC/USDT.")
    if "/" not in canonical_symbol(text):
        base = canonical_symbol(text)
        match = next((i for i in instrument_list() if i.base == base), None)
        if match is not None:
            return match
    return instrument_get(symbol=text)


def _portfolio(user, name: Any = None):
    portfolios = list(portfolio_list(user=user))
    if not portfolios:
        raise ToolInputError("You have no portfolio yet; create one on the dashboard.")
    wanted = _text(name, name="portfolio", max_length=80)
    if not wanted:
        return portfolios[0]  # the dashboard's default
    for portfolio in portfolios:
        if portfolio.name.lower() == wanted.lower():
            return portfolio
    names = ", ".join(p.name for p in portfolios)
    raise ToolInputError(f"No portfolio named {wanted!r}. Your portfolios: {names}.")


def _period(value: Any) -> str:
    text = _text(value, name="period", max_length=20) or "1D"
    if text.upper() in Period.values:
        return text.upper()
    period = PERIOD_ALIASES.get(text.lower())
    if period is None:
        raise ToolInputError(f"Period must be one of {', '.join(Period.values)}.")
    return period


def _int(value: Any, *, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise ToolInputError(f"{name} must be a whole number.") from None
    if not low <= number <= high:
        raise ToolInputError(f"{name} must be between {low} and {high}.")
    return number


# --- reads --------------------------------------------------------------------------------------------


def _position_row(line, base_currency: str) -> dict[str, Any]:
    return {
        "symbol": line.symbol,
        "quantity": quantity(line.quantity),
        "average_cost": price_format(line.average_cost, ""),
        "price": price_format(line.price, ""),
        "price_source": line.price_source,
        "change_24h_pct": pct(line.change_pct) if line.change_pct is not None else None,
        "value": money(line.value_base, base_currency) if line.value_base is not None else None,
        "value_currency": base_currency,
        "unrealized_pnl": signed_money(line.unrealized_pnl, line.quote)
        if line.unrealized_pnl is not None
        else None,
        "unrealized_pct": pct(line.unrealized_pct) if line.unrealized_pct is not None else None,
        "realized_pnl": signed_money(line.realized_pnl, line.quote),
        "pnl_currency": line.quote,
        "weight_pct": f"{line.weight_pct}%" if line.weight_pct is not None else None,
    }


def portfolio_summary(*, user, portfolio: str | None = None) -> dict[str, Any]:
    chosen = _portfolio(user, portfolio)
    valuation = portfolio_valuation(portfolio=chosen)
    day = portfolio_history(portfolio=chosen, valuation=valuation, periods=[Period.DAY]).day
    base = valuation.base_currency
    return {
        "portfolio": chosen.name,
        "base_currency": base,
        "total_value": money(valuation.total, base),
        "positions_value": money(valuation.positions_value, base),
        "cash_value": money(valuation.cash_value, base),
        "unrealized_pnl": signed_money(valuation.unrealized_pnl, base),
        "realized_pnl": signed_money(valuation.realized_pnl, base),
        "today_gain": signed_money(day.gain, base),
        "today_return_pct": pct(day.total_return_pct) if day.total_return_pct is not None else None,
        "open_positions": len(valuation.lines),
        "positions": [_position_row(line, base) for line in valuation.lines],
        "cash": [{"currency": c.currency, "amount": money(c.amount, c.currency)} for c in valuation.cash],
        "unpriced": valuation.unpriced,
        "as_of": _when(valuation.at),
    }


def position(*, user, symbol: str, portfolio: str | None = None) -> dict[str, Any]:
    chosen = _portfolio(user, portfolio)
    wanted = canonical_symbol(_text(symbol, name="symbol", max_length=32))
    if not wanted:
        raise ToolInputError("Name the position's symbol, such as BTC or BTC/USDT.")
    valuation = portfolio_valuation(portfolio=chosen)
    for line in valuation.lines:
        if line.symbol == wanted or line.base == wanted:
            return {"portfolio": chosen.name, "open": True, **_position_row(line, valuation.base_currency)}
    instrument = _instrument(wanted)  # unknown symbols get the "Unknown instrument" error
    return {
        "portfolio": chosen.name,
        "symbol": instrument.symbol,
        "open": False,
        "note": f"No open {instrument.symbol} position in {chosen.name}.",
    }


def price(*, user, pair: str) -> dict[str, Any]:
    instrument = _instrument(pair)
    quote = quote_latest_map(symbols=[instrument.symbol]).get(instrument.symbol)
    if quote is None:
        return {
            "pair": instrument.symbol,
            "price": None,
            "note": "No price received from the market feed yet.",
        }
    places = instrument.price_precision
    return {
        "pair": instrument.symbol,
        "price": price_format(quote.price, places),
        "currency": instrument.quote,
        "change_24h_pct": pct(quote.change_pct) if quote.change_pct is not None else None,
        "bid": price_format(quote.bid, places) if quote.bid is not None else None,
        "ask": price_format(quote.ask, places) if quote.ask is not None else None,
        "volume_24h": quantity(quote.volume_24h) if quote.volume_24h is not None else None,
        "updated_at": _when(quote.updated_at),
        "stale": quote.stale,
    }


def candles_summary(
    *, user, pair: str, interval: str = "1h", lookback: int | str | None = 24
) -> dict[str, Any]:
    instrument = _instrument(pair)
    interval = _text(interval, name="interval", max_length=8) or "1h"
    if interval not in TIMEFRAMES:
        raise ToolInputError(f"Interval must be one of {', '.join(TIMEFRAMES)}.")
    bars_wanted = _int(lookback, name="lookback", default=24, low=1, high=LOOKBACK_MAX)
    bars = candle_list(symbol=instrument.symbol, timeframe=interval, limit=bars_wanted)
    if not bars:
        return {"pair": instrument.symbol, "interval": interval, "bars": 0, "note": "No candles stored yet."}
    places = instrument.price_precision
    first, last = bars[0], bars[-1]
    high = max(b.high for b in bars)
    low = min(b.low for b in bars)
    change = (last.close - first.open) * 100 / first.open if first.open else None
    return {
        "pair": instrument.symbol,
        "interval": interval,
        "bars": len(bars),
        "from": _when(first.open_time),
        "to": _when(last.open_time),
        "open": price_format(first.open, places),
        "close": price_format(last.close, places),
        "high": price_format(high, places),
        "low": price_format(low, places),
        "change_pct": pct(change.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        if change is not None
        else None,
        "volume": quantity(sum((b.volume for b in bars), Decimal(0))),
        "direction": "up" if last.close > first.open else ("down" if last.close < first.open else "flat"),
    }


def regime(*, user, pair: str) -> dict[str, Any]:
    instrument = _instrument(pair)
    reading = regime_latest_map().get(instrument.symbol)
    if reading is None:
        return {"pair": instrument.symbol, "regime": None, "note": "Not classified yet."}
    return {
        "pair": instrument.symbol,
        "regime": reading.get_regime_display(),
        "timeframe": reading.timeframe,
        "sma_slope_pct": f"{_one_decimal_places(reading.sma_slope_pct, 2)}%",
        "adx": _one_decimal_places(reading.adx, 1),
        "as_of": _when(reading.as_of),
    }


def performance(*, user, period: str = "1D", portfolio: str | None = None) -> dict[str, Any]:
    chosen = _portfolio(user, portfolio)
    period = _period(period)
    valuation = portfolio_valuation(portfolio=chosen)
    figure = portfolio_history(portfolio=chosen, valuation=valuation, periods=[period]).performance[0]
    base = valuation.base_currency

    def percent(value):
        return pct(value) if value is not None else None

    return {
        "portfolio": chosen.name,
        "period": period,
        "period_label": Period(period).label,
        "from": figure.start.isoformat() if figure.start else "the first transaction",
        "start_value": money(figure.start_value, base),
        "end_value": money(figure.end_value, base),
        "net_deposits": signed_money(figure.net_flow, base),
        "gain": signed_money(figure.gain, base),
        "currency": base,
        "return_pct": percent(figure.total_return_pct),
        "time_weighted_return_pct": percent(figure.twr_pct),
        "max_drawdown_pct": percent(figure.max_drawdown_pct),
        "volatility_pct": f"{figure.volatility_pct}%" if figure.volatility_pct is not None else None,
    }


def alerts_list(*, user, state: str | None = None) -> dict[str, Any]:
    state = _text(state, name="state", max_length=16).lower() or None
    if state and state not in AlertState.values:
        raise ToolInputError(f"State must be one of {', '.join(AlertState.values)}.")
    alerts = list(alert_selectors.alert_list(user=user, state=state).select_related("portfolio")[:LIST_LIMIT])
    return {
        "count": len(alerts),
        "alerts": [
            {
                "id": alert.pk,
                "summary": alert.summary,
                "state": alert.get_state_display(),
                "repeat": alert.repeat,
                "fired_count": alert.fired_count,
                "last_fired_at": _when(alert.last_fired_at),
            }
            for alert in alerts
        ],
    }


def bots_list(*, user) -> dict[str, Any]:
    bots = list(bot_list(user=user).order_by("name")[:LIST_LIMIT])
    return {
        "count": len(bots),
        "bots": [
            {
                "id": bot.pk,
                "name": bot.name,
                "pair": bot.instrument.symbol,
                "strategy": bot.strategy,
                "timeframe": bot.timeframe,
                "status": bot.get_status_display(),
                "position_quantity": quantity(bot.position_quantity),
                "realized_pnl": signed_money(bot.realized_pnl, bot.instrument.quote),
                "pnl_currency": bot.instrument.quote,
            }
            for bot in bots
        ],
    }


def recent_orders(*, user, scope: str = "recent", limit: int | str | None = 10) -> dict[str, Any]:
    scope = (_text(scope, name="scope", max_length=10) or "recent").lower()
    if scope not in ("open", "recent"):
        raise ToolInputError("Scope must be open or recent.")
    count = _int(limit, name="limit", default=10, low=1, high=LIST_LIMIT)
    orders = list(order_list(user=user, open_only=scope == "open")[:count])
    return {
        "scope": scope,
        "count": len(orders),
        "orders": [
            {
                "pair": order.instrument.symbol,
                "side": order.get_side_display(),
                "type": order.get_type_display(),
                "quantity": quantity(order.quantity),
                "price": price_format(order.price, "") if order.price is not None else None,
                "status": order.get_status_display(),
                "filled_quantity": quantity(order.filled_quantity),
                "average_price": price_format(order.average_price, "") if order.average_price else None,
                "bot": order.bot.name if order.bot is not None else None,
                "created_at": _when(order.created_at),
            }
            for order in orders
        ],
    }


def indicator_explain(*, user, name: str) -> dict[str, Any]:
    entry = indicator_lookup(_text(name, name="name", max_length=60))
    if entry is None:
        known = ", ".join(sorted(i.name for i in INDICATORS))
        raise ToolInputError(f"I have no definition for {name!r}. I can explain: {known}.")
    return {"name": entry.name, "definition": entry.text}


# --- writes (proposed, then confirmed) ---------------------------------------------------------------

_DIRECTIONS: dict[str, str] = {
    "above": AlertKind.PRICE_ABOVE,
    "below": AlertKind.PRICE_BELOW,
    "cross": AlertKind.PRICE_CROSS,
    "crosses": AlertKind.PRICE_CROSS,
}
_VERBS: dict[str, str] = {
    AlertKind.PRICE_ABOVE: "rises above",
    AlertKind.PRICE_BELOW: "falls below",
    AlertKind.PRICE_CROSS: "crosses",
}


def _alert_request(*, pair: Any, direction: Any, level: Any) -> tuple[Any, str, Decimal]:
    instrument = _instrument(pair)
    kind = _DIRECTIONS.get(_text(direction, name="direction", max_length=10).lower())
    if kind is None:
        raise ToolInputError("Direction must be above, below or cross.")
    threshold = decimal_parse(
        str(level) if level is not None else None, field="level", label="Level", sign="positive", **THRESHOLD
    )
    return instrument, kind, threshold


def alert_create_preview(*, user, pair: str, direction: str, level) -> dict[str, Any]:
    instrument, kind, threshold = _alert_request(pair=pair, direction=direction, level=level)
    shown = price_format(threshold, instrument.price_precision)
    return {
        "summary": f"Create a price alert: {instrument.symbol} {_VERBS[kind]} {shown}",
        "pair": instrument.symbol,
        "level": shown,
        "awaiting_confirmation": True,
        "arguments": {"pair": instrument.symbol, "direction": kind.split("_")[1], "level": str(threshold)},
    }


def alert_create(*, user, pair: str, direction: str, level) -> dict[str, Any]:
    instrument, kind, threshold = _alert_request(pair=pair, direction=direction, level=level)
    alert = alert_services.alert_create(user=user, kind=kind, symbol=instrument.symbol, threshold=threshold)
    return {"done": f"alert armed: {alert.summary}", "alert_id": alert.pk}


def _alert_target(*, user, alert_id: Any = None, pair: Any = None):
    if alert_id not in (None, ""):
        number = _int(alert_id, name="alert_id", default=0, low=1, high=2**62)
        return alert_selectors.alert_get(user=user, alert_id=number)
    if pair in (None, ""):
        raise ToolInputError("Say which alert: its id (from the alert list) or its pair.")
    instrument = _instrument(pair)
    armed = list(
        alert_selectors.alert_list(user=user, state=AlertState.ARMED).filter(instrument=instrument)[
            :LIST_LIMIT
        ]
    )
    if not armed:
        raise ToolInputError(f"You have no armed alert on {instrument.symbol}.")
    if len(armed) > 1:
        choices = "; ".join(f"#{a.pk} {a.summary}" for a in armed)
        raise ToolInputError(
            f"You have several armed alerts on {instrument.symbol}: {choices}. Say which one."
        )
    return armed[0]


def alert_pause_preview(*, user, alert_id=None, pair=None) -> dict[str, Any]:
    alert = _alert_target(user=user, alert_id=alert_id, pair=pair)
    if alert.state == AlertState.DISABLED:
        raise ToolInputError(f"Alert #{alert.pk} ({alert.summary}) is already paused.")
    return {
        "summary": f"Pause alert #{alert.pk}: {alert.summary}",
        "alert_id": alert.pk,
        "awaiting_confirmation": True,
        "arguments": {"alert_id": alert.pk},
    }


def alert_pause(*, user, alert_id=None, pair=None) -> dict[str, Any]:
    alert = _alert_target(user=user, alert_id=alert_id, pair=pair)
    alert = alert_services.alert_pause(user=user, alert=alert)
    return {"done": f"alert #{alert.pk} paused ({alert.summary})", "alert_id": alert.pk}


def _bot_target(*, user, bot_id: Any = None, name: Any = None):
    if bot_id not in (None, ""):
        return bot_get(user=user, pk=bot_id)
    wanted = _text(name, name="name", max_length=80)
    if not wanted:
        raise ToolInputError("Say which bot: its name or id (from the bot list).")
    matches = [b for b in bot_list(user=user) if b.name.lower() == wanted.lower()]
    if not matches:
        matches = [b for b in bot_list(user=user) if wanted.lower() in b.name.lower()]
    if len(matches) != 1:
        names = ", ".join(b.name for b in bot_list(user=user)) or "none"
        raise ToolInputError(f"No single bot matches {wanted!r}. Your bots: {names}.")
    return matches[0]


def _bot_preview(*, user, bot_id, name, status: str) -> dict[str, Any]:
    bot = _bot_target(user=user, bot_id=bot_id, name=name)
    verb = "Pause" if status == BotStatus.PAUSED else "Resume"
    if bot.status == status:
        raise ToolInputError(f"{bot.name} is already {bot.get_status_display().lower()}.")
    return {
        "summary": f"{verb} the bot {bot.name} ({bot.instrument.symbol}, {bot.strategy})",
        "bot": bot.name,
        "awaiting_confirmation": True,
        "arguments": {"bot_id": bot.pk},
    }


def _bot_set(*, user, bot_id, name, status: str) -> dict[str, Any]:
    bot = _bot_target(user=user, bot_id=bot_id, name=name)
    bot = bot_set_status(user=user, bot=bot, status=status)
    return {"done": f"{bot.name} is {bot.get_status_display().lower()}", "bot_id": bot.pk}


def bot_pause_preview(*, user, bot_id=None, name=None):
    return _bot_preview(user=user, bot_id=bot_id, name=name, status=BotStatus.PAUSED)


def bot_pause(*, user, bot_id=None, name=None):
    return _bot_set(user=user, bot_id=bot_id, name=name, status=BotStatus.PAUSED)


def bot_resume_preview(*, user, bot_id=None, name=None):
    return _bot_preview(user=user, bot_id=bot_id, name=name, status=BotStatus.ENABLED)


def bot_resume(*, user, bot_id=None, name=None):
    return _bot_set(user=user, bot_id=bot_id, name=name, status=BotStatus.ENABLED)


# --- the registry -------------------------------------------------------------------------------------


def _schema(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties or {},
        "required": required or [],
        "additionalProperties": False,
    }


_PAIR = {"type": "string", "description": "A pair such as BTC/USDT, or a base asset such as BTC."}
_PORTFOLIO = {"type": "string", "description": "Portfolio name; omit for the default portfolio."}
_BOT = {
    "bot_id": {"type": "integer", "description": "The bot's id from bots_list."},
    "name": {"type": "string", "description": "The bot's name."},
}


def _pair_of(args: dict[str, Any]) -> str:
    return str(args.get("pair") or args.get("symbol") or "").upper()[:32]


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in [
        Tool("portfolio_summary", "The member's portfolio: total value, cash, P&L, today's change, positions.",
             _schema({"portfolio": _PORTFOLIO}), portfolio_summary, lambda a: "Reading your portfolio"),
        Tool("position", "One open position: quantity, average cost, price, value, unrealized and realized P&L.",
             _schema({"symbol": {"type": "string", "description": "BTC or BTC/USDT"}, "portfolio": _PORTFOLIO},
                     ["symbol"]),
             position, lambda a: f"Looking up your {_pair_of(a)} position"),
        Tool("price", "The latest price of a pair, its 24-hour change, bid, ask and volume.",
             _schema({"pair": _PAIR}, ["pair"]), price, lambda a: f"Checking the {_pair_of(a)} price"),
        Tool("candles_summary", "Open, high, low, close, change and volume of a pair over recent candles.",
             _schema({"pair": _PAIR,
                      "interval": {"type": "string", "enum": list(TIMEFRAMES), "description": "Candle size."},
                      "lookback": {"type": "integer", "minimum": 1, "maximum": LOOKBACK_MAX,
                                   "description": "How many candles."}}, ["pair"]),
             candles_summary, lambda a: f"Reading {_pair_of(a)} candles"),
        Tool("regime", "The regime gatekeeper's latest reading of a pair (bullish, bearish, sideways; SMA slope, ADX).",
             _schema({"pair": _PAIR}, ["pair"]), regime, lambda a: f"Reading the {_pair_of(a)} regime"),
        Tool("performance", "Portfolio performance over a period: gain, return, time-weighted return, drawdown.",
             _schema({"period": {"type": "string", "enum": list(Period.values)}, "portfolio": _PORTFOLIO}),
             performance, lambda a: f"Computing performance ({a.get('period') or '1D'})"),
        Tool("alerts_list", "The member's alerts with their state.",
             _schema({"state": {"type": "string", "enum": list(AlertState.values)}}),
             alerts_list, lambda a: "Listing your alerts"),
        Tool("alert_create", "Propose a price alert; the member confirms before it is created.",
             _schema({"pair": _PAIR, "direction": {"type": "string", "enum": ["above", "below", "cross"]},
                      "level": {"type": "string", "description": "Price level, e.g. 70000"}},
                     ["pair", "direction", "level"]),
             alert_create, lambda a: f"Preparing a {_pair_of(a)} alert", confirm=True, preview=alert_create_preview),
        Tool("alert_pause", "Propose pausing one alert (by id, or by pair when it has one armed alert).",
             _schema({"alert_id": {"type": "integer"}, "pair": _PAIR}),
             alert_pause, lambda a: "Preparing to pause an alert", confirm=True, preview=alert_pause_preview),
        Tool("bots_list", "The member's trading bots: pair, strategy, status, position and realized P&L.",
             _schema(), bots_list, lambda a: "Listing your bots"),
        Tool("bot_pause", "Propose pausing a bot; the member confirms first.", _schema(_BOT),
             bot_pause, lambda a: "Preparing to pause a bot", confirm=True, preview=bot_pause_preview),
        Tool("bot_resume", "Propose resuming a paused bot; the member confirms first.", _schema(_BOT),
             bot_resume, lambda a: "Preparing to resume a bot", confirm=True, preview=bot_resume_preview),
        Tool("recent_orders", "The member's open orders or most recent orders.",
             _schema({"scope": {"type": "string", "enum": ["open", "recent"]},
                      "limit": {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT}}),
             recent_orders, lambda a: f"Listing your {a.get('scope') or 'recent'} orders"),
        Tool("indicator_explain", "What a trading indicator or metric means (RSI, MACD, ADX, drawdown...).",
             _schema({"name": {"type": "string"}}, ["name"]), indicator_explain,
             lambda a: f"Looking up {str(a.get('name') or 'an indicator')[:40]}"),
    ]
}  # fmt: skip


def tool_specs() -> list[dict[str, Any]]:
    """Every tool in the Chat Completions function format."""
    return [tool.spec() for tool in TOOLS.values()]


def tool_label(name: str, arguments: dict[str, Any]) -> str:
    tool = TOOLS.get(name)
    if tool is None:
        return f"Unknown tool {name[:40]}"
    try:
        return tool.label(arguments if isinstance(arguments, dict) else {})
    except Exception:
        return name


def _call(*, user, function: Callable[..., dict[str, Any]], tool: Tool, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        return {"error": "Tool arguments must be an object."}
    allowed = set(tool.parameters["properties"])
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        return {"error": f"{tool.name} takes no argument {', '.join(unknown)}."}
    missing = [name for name in tool.parameters["required"] if arguments.get(name) in (None, "")]
    if missing:
        return {"error": f"{tool.name} needs {', '.join(missing)}."}
    try:
        with tenant(user.pk):
            return function(user=user, **arguments)
    except (DomainError, Http404) as exc:
        return {"error": str(exc)}


def tool_run(*, user, name: str, arguments: Any) -> dict[str, Any]:
    """Run a read tool as `user`. Confirm-first tools only preview here."""
    tool = TOOLS.get(name)
    if tool is None:
        return {"error": f"There is no tool named {name[:40]!r}."}
    if tool.confirm:
        return tool_preview(user=user, name=name, arguments=arguments)
    return _call(user=user, function=tool.run, tool=tool, arguments=arguments)


def tool_preview(*, user, name: str, arguments: Any) -> dict[str, Any]:
    """Check a proposed write; {"summary": ..., "arguments": <normalised>} or {"error": ...}."""
    tool = TOOLS.get(name)
    if tool is None or tool.preview is None:
        return {"error": f"There is no change named {name[:40]!r}."}
    return _call(user=user, function=tool.preview, tool=tool, arguments=arguments)


def tool_execute(*, user, name: str, arguments: Any) -> dict[str, Any]:
    """Do a confirmed write; {"done": ...} or {"error": ...}."""
    tool = TOOLS.get(name)
    if tool is None or not tool.confirm:
        return {"error": f"There is no change named {name[:40]!r}."}
    return _call(user=user, function=tool.run, tool=tool, arguments=arguments)
