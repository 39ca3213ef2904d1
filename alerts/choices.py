"""Alert kinds and states, and which notification kind each alert kind is delivered as."""

from __future__ import annotations

from django.db import models


class AlertKind(models.TextChoices):
    PRICE_ABOVE = "price_above", "Price rises above"
    PRICE_BELOW = "price_below", "Price falls below"
    PRICE_CROSS = "price_cross", "Price crosses"
    PERCENT_MOVE = "percent_move", "Percent move over a window"
    PORTFOLIO_ABOVE = "portfolio_above", "Portfolio value rises above"
    PORTFOLIO_BELOW = "portfolio_below", "Portfolio value falls below"
    POSITION_PNL_ABOVE = "position_pnl_above", "Position P&L rises above"
    POSITION_PNL_BELOW = "position_pnl_below", "Position P&L falls below"
    ORDER_FILLED = "order_filled", "Order filled"
    BOT_BLOCKED = "bot_blocked", "Bot blocked by the regime gatekeeper"
    EXCHANGE_DEGRADED = "exchange_degraded", "Exchange connection degraded"


class AlertState(models.TextChoices):
    ARMED = "armed", "Armed"
    TRIGGERED = "triggered", "Triggered"
    EXPIRED = "expired", "Expired"
    DISABLED = "disabled", "Disabled"


class PnlUnit(models.TextChoices):
    ABSOLUTE = "absolute", "Amount (quote currency)"
    PERCENT = "percent", "Percent of cost"


PRICE_KINDS = frozenset({AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.PRICE_CROSS})
# Evaluated in the tick pipeline from the in-memory crossing index (alerts/evaluator.py).
TICK_KINDS = PRICE_KINDS | {AlertKind.PERCENT_MOVE}
PORTFOLIO_KINDS = frozenset({AlertKind.PORTFOLIO_ABOVE, AlertKind.PORTFOLIO_BELOW})
POSITION_KINDS = frozenset({AlertKind.POSITION_PNL_ABOVE, AlertKind.POSITION_PNL_BELOW})
EVENT_KINDS = frozenset({AlertKind.ORDER_FILLED, AlertKind.BOT_BLOCKED, AlertKind.EXCHANGE_DEGRADED})
SYMBOL_KINDS = TICK_KINDS | POSITION_KINDS
UP_KINDS = frozenset({AlertKind.PRICE_ABOVE, AlertKind.PORTFOLIO_ABOVE, AlertKind.POSITION_PNL_ABOVE})
DOWN_KINDS = frozenset({AlertKind.PRICE_BELOW, AlertKind.PORTFOLIO_BELOW, AlertKind.POSITION_PNL_BELOW})

# Percent-move windows a trader can choose, in minutes.
WINDOW_CHOICES = [(5, "5 minutes"), (15, "15 minutes"), (60, "1 hour"), (240, "4 hours"), (1440, "24 hours")]
WINDOW_LABELS = dict(WINDOW_CHOICES)

# One notification kind per family, so preferences ("email me price alerts, not order fills") stay short:
# name -> (label, alert kinds, channels on by default or None for every channel's default).
# Trading already shows every fill and every blocked execution in-app (trading.* kinds), so the event
# alerts a trader sets up default to the channels that reach them elsewhere.
OUT_OF_APP = frozenset({"email", "discord"})
NOTIFICATION_KINDS: dict[str, tuple[str, frozenset[str], frozenset[str] | None]] = {
    "alert.price": ("Price alerts", PRICE_KINDS, None),
    "alert.percent_move": ("Percent-move alerts", frozenset({AlertKind.PERCENT_MOVE}), None),
    "alert.portfolio": ("Portfolio value alerts", PORTFOLIO_KINDS, None),
    "alert.position": ("Position P&L alerts", POSITION_KINDS, None),
    "alert.order_filled": ("Order filled alerts", frozenset({AlertKind.ORDER_FILLED}), OUT_OF_APP),
    "alert.bot_blocked": ("Bot blocked alerts", frozenset({AlertKind.BOT_BLOCKED}), OUT_OF_APP),
    "alert.exchange_degraded": ("Exchange degraded alerts", frozenset({AlertKind.EXCHANGE_DEGRADED}), None),
}


def notification_kind(kind: str) -> str:
    for name, (_, kinds, _) in NOTIFICATION_KINDS.items():
        if kind in kinds:
            return name
    raise ValueError(f"no notification kind for alert kind {kind!r}")


def directions_for(kind: str, threshold) -> tuple[str, ...]:
    """Which way a value must cross the threshold ("up", "down") for this kind of alert to fire."""
    from alerts.crossing import DOWN, UP

    if kind in UP_KINDS:
        return (UP,)
    if kind in DOWN_KINDS:
        return (DOWN,)
    if kind == AlertKind.PRICE_CROSS:
        return (UP, DOWN)
    if kind == AlertKind.PERCENT_MOVE:
        return (UP,) if threshold > 0 else (DOWN,)
    return ()
