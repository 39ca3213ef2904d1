"""Exchange connections, orders and fills, bots, signals, execution plans and blocked executions.

Every table holding a user's data has `user_id` and row-level security (see the migrations). Signals and
regime readings are market-wide (no user) and shared by every bot with the same settings.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TenantModel
from core.money import ZERO, Precision
from trading.choices import (
    BotStatus,
    ConnectionStatus,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    PlanStatus,
    Regime,
    ReplaySource,
    ReplayStatus,
    SignalAction,
    SignalStatus,
    Timeframe,
    Venue,
)

QUANTITY: Precision = {"max_digits": 28, "decimal_places": 12}
PRICE: Precision = {"max_digits": 28, "decimal_places": 12}
AMOUNT: Precision = {"max_digits": 32, "decimal_places": 12}
RATE: Precision = {"max_digits": 8, "decimal_places": 6}


class ExchangeConnection(TenantModel):
    """A trader's account on a venue. Secrets are Fernet tokens (trading.crypto), never plaintext."""

    label = models.CharField(max_length=80)
    venue = models.CharField(max_length=32, choices=Venue.choices)
    sandbox = models.BooleanField(default=False, help_text="Use the venue's testnet / sandbox.")
    api_key_encrypted = models.TextField(blank=True)
    api_secret_encrypted = models.TextField(blank=True)
    passphrase_encrypted = models.TextField(blank=True)
    key_last_four = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE)
    can_withdraw = models.BooleanField(default=False)
    ip_restricted = models.BooleanField(null=True, blank=True)
    maker_fee = models.DecimalField(**RATE, null=True, blank=True)
    taker_fee = models.DecimalField(**RATE, null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "label"], name="trading_connection_unique_label")]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_venue_display()})"

    @property
    def masked_key(self) -> str:
        return f"••••{self.key_last_four}" if self.key_last_four else "—"


class Bot(TenantModel):
    """Runs one strategy on one pair for one portfolio; every bot with the same settings shares one signal."""

    name = models.CharField(max_length=80)
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(ExchangeConnection, on_delete=models.PROTECT, related_name="bots")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    params_key = models.CharField(max_length=64, help_text="Canonical form of params: bots sharing it share signals.")
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices, default=Timeframe.M1)
    allocation = models.DecimalField(**AMOUNT, help_text="Quote currency spent per buy.")
    max_position = models.DecimalField(**QUANTITY, help_text="Most base units the bot may hold.")
    daily_loss_limit = models.DecimalField(**AMOUNT, help_text="Buys stop for the UTC day past this realized loss.")
    status = models.CharField(max_length=16, choices=BotStatus.choices, default=BotStatus.ENABLED)
    # What the bot holds and has made, maintained with each of its fills (same transaction).
    position_quantity = models.DecimalField(**QUANTITY, default=ZERO)
    position_cost = models.DecimalField(**AMOUNT, default=ZERO)
    realized_pnl = models.DecimalField(**AMOUNT, default=ZERO)
    pnl_day = models.DateField(null=True, blank=True)
    realized_pnl_day = models.DecimalField(**AMOUNT, default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["instrument", "strategy", "params_key", "timeframe", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="trading_bot_unique_name"),
            models.CheckConstraint(condition=Q(allocation__gt=0), name="trading_bot_allocation_positive"),
            models.CheckConstraint(condition=Q(max_position__gt=0), name="trading_bot_max_position_positive"),
            models.CheckConstraint(condition=Q(daily_loss_limit__gte=0), name="trading_bot_loss_limit_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class RegimeReading(models.Model):
    """The gatekeeper's classification of a pair at one candle close (market-wide, no user)."""

    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.CASCADE, related_name="+")
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    as_of = models.DateTimeField()
    regime = models.CharField(max_length=16, choices=Regime.choices)
    sma_slope_pct = models.DecimalField(max_digits=12, decimal_places=6)
    adx = models.DecimalField(max_digits=12, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "timeframe", "as_of"], name="trading_regime_once_per_close")
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.regime} @ {self.as_of:%Y-%m-%d %H:%M}"


class Signal(models.Model):
    """One decision per (strategy, params, pair, timeframe) per candle close, shared by every bot."""

    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    params_key = models.CharField(max_length=64)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    candle_open_time = models.DateTimeField()
    closed_at = models.DateTimeField(
        help_text="Wall-clock time the feed reported the deciding candle closed; staleness is measured from here."
    )
    action = models.CharField(max_length=8, choices=SignalAction.choices)
    price = models.DecimalField(**PRICE)
    regime = models.CharField(max_length=16, choices=Regime.choices)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=SignalStatus.choices, default=SignalStatus.HOLD)
    created_at = models.DateTimeField(auto_now_add=True)
    planned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-candle_open_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "strategy", "params_key", "timeframe", "candle_open_time"],
                name="trading_signal_one_decision_per_candle",
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.instrument_id} {self.action} @ {self.candle_open_time:%Y-%m-%d %H:%M}"


class ExecutionPlan(TenantModel):
    """What one bot should do about one signal. Unique per (signal, bot): a retried fan-out adds nothing."""

    # No indexes of their own: (signal, status), the unique (signal, bot) and (bot, -created_at) lead with them.
    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="plans", db_index=False)
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="plans", db_index=False)
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    quantity = models.DecimalField(**QUANTITY, default=ZERO)
    reference_price = models.DecimalField(**PRICE)
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    order = models.OneToOneField("Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="plan")
    created_at = models.DateTimeField(auto_now_add=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["signal", "status"]), models.Index(fields=["bot", "-created_at"])]
        constraints = [models.UniqueConstraint(fields=["signal", "bot"], name="trading_plan_once_per_signal_bot")]


class BlockedExecution(TenantModel):
    """An execution the regime gatekeeper stopped: shown on the bot page, the log page and in admin."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="blocked_executions")
    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    regime = models.CharField(max_length=16, choices=Regime.choices)
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [models.UniqueConstraint(fields=["signal", "bot"], name="trading_blocked_once_per_signal_bot")]


class Order(TenantModel):
    """An order and its place in the state machine (choices.ORDER_TRANSITIONS).

    The primary key is the client order id sent to the venue, so a retried submission cannot create a
    second order there.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: (user, status, -created_at) leads with it (one index fewer to write per order).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    connection = models.ForeignKey(ExchangeConnection, on_delete=models.PROTECT, related_name="orders")
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.PROTECT, related_name="+")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    bot = models.ForeignKey(Bot, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders")
    source = models.CharField(max_length=16, choices=OrderSource.choices, default=OrderSource.MANUAL)
    playbook_tag = models.CharField(
        max_length=40, blank=True, default="",
        help_text="The trader's own playbook setup this manual order follows; the strategy tracker groups by it.",
    )
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    type = models.CharField(max_length=16, choices=OrderType.choices)
    quantity = models.DecimalField(**QUANTITY)
    price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Limit price.")
    stop_price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Trigger price.")
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.NEW)
    filled_quantity = models.DecimalField(**QUANTITY, default=ZERO)
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    fees_paid = models.DecimalField(**AMOUNT, default=ZERO)
    exchange_order_id = models.CharField(max_length=128, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    triggered_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "status", "-created_at"]),
            models.Index(
                fields=["instrument", "status"],
                name="trading_order_resting_idx",
                condition=Q(status__in=["open", "partially_filled"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trading_order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__lte=models.F("quantity")), name="trading_order_not_overfilled"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_side_display()} {self.quantity} {self.instrument} ({self.get_status_display()})"

    @property
    def client_order_id(self) -> str:
        return str(self.id)

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


class Fill(TenantModel):
    """One execution of an order. Unique per (order, fill id): a fill reported twice is stored once."""

    # No index of its own: the unique (order, fill_id) leads with it (one index fewer to write per fill).
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills", db_index=False)
    fill_id = models.CharField(max_length=128)
    quantity = models.DecimalField(**QUANTITY)
    price = models.DecimalField(**PRICE)
    fee = models.DecimalField(**AMOUNT, default=ZERO)
    fee_currency = models.CharField(max_length=16, blank=True)
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["executed_at", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "fill_id"], name="trading_fill_once")]


class ReplayRun(TenantModel):
    """A simulation: what a bot's settings would have done over recorded candles, run by the live strategy and
    gatekeeper code (trading/tracker/replay.py). Never an order: its fills are `ReplayFill` rows."""

    name = models.CharField(max_length=120)
    bot = models.ForeignKey(Bot, on_delete=models.SET_NULL, null=True, blank=True, related_name="replays")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    strategy = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    params_key = models.CharField(max_length=64)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    allocation = models.DecimalField(**AMOUNT)
    max_position = models.DecimalField(**QUANTITY)
    daily_loss_limit = models.DecimalField(**AMOUNT)
    fee_rate = models.DecimalField(**RATE)
    slippage_rate = models.DecimalField(**RATE)
    source = models.CharField(max_length=16, choices=ReplaySource.choices, default=ReplaySource.RECORDING)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED)
    candles_total = models.PositiveIntegerField(default=0)
    candles_done = models.PositiveIntegerField(default=0)
    decisions = models.PositiveIntegerField(default=0, help_text="Buy and sell decisions of the strategy.")
    blocked = models.PositiveIntegerField(default=0, help_text="Decisions the regime gatekeeper blocked.")
    error = models.CharField(max_length=300, blank=True)
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    mark_price = models.DecimalField(**PRICE, null=True, blank=True, help_text="The last close replayed.")
    daily_closes = models.JSONField(default=dict, blank=True, help_text="Close of each UTC day replayed.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(allocation__gt=0), name="trading_replay_allocation_positive"),
            models.CheckConstraint(condition=Q(max_position__gt=0), name="trading_replay_max_position_positive"),
        ]

    def __str__(self) -> str:
        return f"Simulation: {self.name}"

    @property
    def progress_pct(self) -> int:
        return int(self.candles_done * 100 / self.candles_total) if self.candles_total else 0

    @property
    def finished(self) -> bool:
        return self.status in (ReplayStatus.DONE, ReplayStatus.FAILED)


class ReplayFill(TenantModel):
    """One simulated fill of a replay: at the deciding candle's close moved by the paper exchange's slippage,
    with its fee. Fed to the same journal and statistics as real fills."""

    run = models.ForeignKey(ReplayRun, on_delete=models.CASCADE, related_name="fills", db_index=False)
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    quantity = models.DecimalField(**QUANTITY)
    price = models.DecimalField(**PRICE)
    fee = models.DecimalField(**AMOUNT, default=ZERO)
    executed_at = models.DateTimeField()
    regime = models.CharField(max_length=16, choices=Regime.choices)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["executed_at", "id"]
        indexes = [models.Index(fields=["run", "executed_at"])]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="trading_replayfill_quantity_positive")]
