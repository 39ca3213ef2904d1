"""Choices and constants of the trading domain."""

from __future__ import annotations

from django.db import models


class Venue(models.TextChoices):
    PAPER = "paper", "Paper (simulated, built in)"
    BINANCE = "binance", "Binance"
    BINANCEUS = "binanceus", "Binance.US"
    KRAKEN = "kraken", "Kraken"
    COINBASE = "coinbase", "Coinbase Advanced"
    OKX = "okx", "OKX"
    BYBIT = "bybit", "Bybit"
    KUCOIN = "kucoin", "KuCoin"


# Venues whose API keys come with a third credential.
VENUES_WITH_PASSPHRASE = frozenset({Venue.OKX, Venue.KUCOIN, Venue.COINBASE})


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class OrderSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP_MARKET = "stop_market", "Stop market"
    STOP_LIMIT = "stop_limit", "Stop limit"
    TAKE_PROFIT = "take_profit", "Take profit"


ORDER_TYPES_WITH_PRICE = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
ORDER_TYPES_WITH_TRIGGER = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT})


class OrderStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


OPEN_ORDER_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

# The order state machine: from -> the states it may move to. Anything else is refused.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.NEW: frozenset(
        {
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.OPEN: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class OrderSource(models.TextChoices):
    MANUAL = "manual", "Order ticket"
    API = "api", "API"
    BOT = "bot", "Bot"
    AUTOMATION = "automation", "Automation rule"


class BotStatus(models.TextChoices):
    ENABLED = "enabled", "Running"
    PAUSED = "paused", "Paused"


class Regime(models.TextChoices):
    BULLISH = "bullish", "Bullish"
    BEARISH = "bearish", "Bearish"
    SIDEWAYS = "sideways", "Sideways"


class SignalAction(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    HOLD = "hold", "Hold"


class SignalStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    STALE = "stale", "Rejected as stale"
    HOLD = "hold", "Nothing to do"


class PlanStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    EXECUTED = "executed", "Executed"
    BLOCKED = "blocked", "Blocked by the regime gatekeeper"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class Timeframe(models.TextChoices):
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    D1 = "1d", "1 day"


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReplaySource(models.TextChoices):
    RECORDING = "recording", "The recorded market data (March 2023)"
    STORED = "stored", "Stored candles in a date range"
