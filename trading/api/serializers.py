"""Serializers of the trading API. Input serializers check shapes and types only; the services decide
(a DomainError from them becomes a 400 with the field it names)."""

from __future__ import annotations

from rest_framework import serializers

from core.api import DB_ID_MAX, StrictCharField
from trading.choices import (
    BotStatus,
    ConnectionStatus,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    PlanStatus,
    Regime,
    SignalAction,
    Timeframe,
    Venue,
)
from trading.decisions.strategies import STRATEGIES
from trading.forms import KEY_MAX_LENGTH

QUANTITY = {"max_digits": 28, "decimal_places": 12}
AMOUNT = {"max_digits": 32, "decimal_places": 12}
RATE = {"max_digits": 8, "decimal_places": 6}
SYMBOL_HELP = 'A listed pair, "BTC/USDT" or "BTC-USDT".'
PARAM_MAX = 10**6


# --- orders ---------------------------------------------------------------------------------------------------


class OrderOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="Also the client order id sent to the venue.")
    symbol = serializers.CharField(source="instrument.symbol")
    side = serializers.ChoiceField(choices=OrderSide.choices)
    type = serializers.ChoiceField(choices=OrderType.choices)
    quantity = serializers.DecimalField(**QUANTITY)
    price = serializers.DecimalField(**QUANTITY, allow_null=True)
    stop_price = serializers.DecimalField(**QUANTITY, allow_null=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    status_reason = serializers.CharField()
    filled_quantity = serializers.DecimalField(**QUANTITY)
    average_price = serializers.DecimalField(**QUANTITY, allow_null=True)
    fees_paid = serializers.DecimalField(**AMOUNT)
    source = serializers.ChoiceField(choices=OrderSource.choices)
    playbook_tag = serializers.CharField(help_text="The trader's playbook tag; empty when none.")
    connection = serializers.IntegerField(source="connection_id")
    portfolio = serializers.IntegerField(source="portfolio_id")
    bot = serializers.IntegerField(source="bot_id", allow_null=True)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class OrderInput(serializers.Serializer):
    connection = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    portfolio = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    symbol = StrictCharField(max_length=32, help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=OrderSide.choices)
    type = serializers.ChoiceField(choices=OrderType.choices)
    quantity = serializers.DecimalField(**QUANTITY, min_value=0)
    price = serializers.DecimalField(
        **QUANTITY,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Limit price: limit and stop-limit orders.",
    )
    stop_price = serializers.DecimalField(
        **QUANTITY,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Trigger price: stop and take-profit orders.",
    )


class OrderPlaceInput(OrderInput):
    client_order_id = serializers.UUIDField(required=False, help_text="Send your own to make retries safe.")
    playbook_tag = StrictCharField(
        required=False, allow_blank=True, max_length=40,
        help_text="The setup this order follows (letters, digits, spaces, . _ -); the strategy tracker groups by it.",
    )


class OrderCheckOutput(serializers.Serializer):
    symbol = serializers.CharField(source="instrument.symbol")
    quantity = serializers.DecimalField(**QUANTITY)
    price = serializers.DecimalField(**QUANTITY, allow_null=True)
    stop_price = serializers.DecimalField(**QUANTITY, allow_null=True)
    reference_price = serializers.DecimalField(**QUANTITY, help_text="The price the checks valued it at.")
    notional = serializers.DecimalField(**AMOUNT, help_text="Quantity times the reference price.")
    quote_currency = serializers.CharField(source="instrument.quote")


class OrderFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    symbol = StrictCharField(required=False, max_length=32, help_text=SYMBOL_HELP)
    side = serializers.ChoiceField(choices=OrderSide.choices, required=False)
    source = serializers.ChoiceField(choices=OrderSource.choices, required=False)
    open = serializers.BooleanField(
        required=False, default=False, help_text="Only new, open and partially filled orders."
    )
    since = serializers.DateTimeField(required=False, help_text="Created at or after.")
    until = serializers.DateTimeField(required=False, help_text="Created before.")


class FillOutput(serializers.Serializer):
    fill_id = serializers.CharField()
    quantity = serializers.DecimalField(**QUANTITY)
    price = serializers.DecimalField(**QUANTITY)
    fee = serializers.DecimalField(**AMOUNT)
    fee_currency = serializers.CharField()
    executed_at = serializers.DateTimeField()


# --- exchange connections -------------------------------------------------------------------------------------


class ConnectionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    venue = serializers.ChoiceField(choices=Venue.choices)
    sandbox = serializers.BooleanField()
    key_last_four = serializers.CharField(
        help_text="The API key's last four characters; the key is never shown."
    )
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)
    ip_restricted = serializers.BooleanField(allow_null=True)
    maker_fee = serializers.DecimalField(**RATE, allow_null=True)
    taker_fee = serializers.DecimalField(**RATE, allow_null=True)
    validated_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ConnectionInput(serializers.Serializer):
    label = StrictCharField(max_length=80)
    venue = serializers.ChoiceField(choices=Venue.choices)
    sandbox = serializers.BooleanField(required=False, default=False)
    api_key = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=KEY_MAX_LENGTH,
        write_only=True,
        help_text="Stored encrypted; only its last four are shown again.",
    )
    api_secret = StrictCharField(
        required=False, allow_blank=True, default="", max_length=KEY_MAX_LENGTH, write_only=True
    )
    passphrase = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=KEY_MAX_LENGTH,
        write_only=True,
        help_text="OKX, KuCoin and Coinbase keys have one.",
    )
    confirmed_no_withdrawal = serializers.BooleanField(
        required=False, default=False, help_text="Needed for venues that do not report a key's permissions."
    )


# --- bots -----------------------------------------------------------------------------------------------------


class StrategyParamOutput(serializers.Serializer):
    name = serializers.CharField()
    default = serializers.IntegerField()
    minimum = serializers.IntegerField()
    maximum = serializers.IntegerField()
    help = serializers.CharField()


class StrategyOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    params = StrategyParamOutput(many=True)
    buy_regimes = serializers.ListField(
        child=serializers.CharField(), help_text="The regimes it may buy in (bullish, bearish, sideways)."
    )


class BotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    symbol = serializers.CharField(source="instrument.symbol")
    strategy = serializers.CharField()
    params = serializers.DictField(child=serializers.IntegerField())
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    allocation = serializers.DecimalField(**AMOUNT)
    max_position = serializers.DecimalField(**QUANTITY)
    daily_loss_limit = serializers.DecimalField(**AMOUNT)
    status = serializers.ChoiceField(choices=BotStatus.choices)
    connection = serializers.IntegerField(source="connection_id")
    portfolio = serializers.IntegerField(source="portfolio_id")
    position_quantity = serializers.DecimalField(**QUANTITY)
    position_cost = serializers.DecimalField(**AMOUNT)
    realized_pnl = serializers.DecimalField(**AMOUNT)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _params_field(**kwargs):
    return serializers.DictField(
        child=serializers.IntegerField(min_value=-PARAM_MAX, max_value=PARAM_MAX),
        allow_empty=True,
        help_text="The strategy's parameters by name (see GET /api/v1/trading/strategies/); omitted ones "
        "take their defaults.",
        **kwargs,
    )


class BotInput(serializers.Serializer):
    name = StrictCharField(max_length=80)
    connection = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    portfolio = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    symbol = StrictCharField(max_length=32, help_text=SYMBOL_HELP)
    strategy = serializers.ChoiceField(choices=[(s.key, s.label) for s in STRATEGIES.values()])
    params = _params_field(required=False, default=dict)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, default=Timeframe.M1)
    allocation = serializers.DecimalField(
        **AMOUNT, min_value=0, help_text="Quote currency spent on each buy."
    )
    max_position = serializers.DecimalField(
        **QUANTITY, min_value=0, help_text="The most base units the bot may hold."
    )
    daily_loss_limit = serializers.DecimalField(
        **AMOUNT, min_value=0, help_text="Buys stop for the UTC day once realized losses reach this."
    )


class BotUpdateInput(serializers.Serializer):
    """Every field optional: what is sent changes, the rest stays."""

    name = StrictCharField(max_length=80, required=False)
    params = _params_field(required=False)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False)
    allocation = serializers.DecimalField(**AMOUNT, min_value=0, required=False)
    max_position = serializers.DecimalField(**QUANTITY, min_value=0, required=False)
    daily_loss_limit = serializers.DecimalField(**AMOUNT, min_value=0, required=False)


class BotFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=BotStatus.choices, required=False)
    symbol = StrictCharField(required=False, max_length=32, help_text=SYMBOL_HELP)


class SignalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField(source="instrument.symbol")
    action = serializers.ChoiceField(choices=SignalAction.choices)
    price = serializers.DecimalField(**QUANTITY)
    regime = serializers.ChoiceField(choices=Regime.choices)
    reason = serializers.CharField()
    candle_open_time = serializers.DateTimeField()


class PlanOutput(serializers.Serializer):
    id = serializers.IntegerField()
    bot = serializers.IntegerField(source="bot_id")
    side = serializers.ChoiceField(choices=OrderSide.choices)
    quantity = serializers.DecimalField(**QUANTITY)
    reference_price = serializers.DecimalField(**QUANTITY)
    status = serializers.ChoiceField(choices=PlanStatus.choices)
    reason = serializers.CharField()
    order = serializers.UUIDField(source="order_id", allow_null=True)
    signal_reason = serializers.CharField(source="signal.reason")
    created_at = serializers.DateTimeField()
    executed_at = serializers.DateTimeField(allow_null=True)


class PlanFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=PlanStatus.choices, required=False)


class BlockedExecutionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    bot = serializers.IntegerField(source="bot_id")
    bot_name = serializers.CharField(source="bot.name")
    symbol = serializers.CharField(source="signal.instrument.symbol")
    side = serializers.ChoiceField(choices=OrderSide.choices)
    regime = serializers.ChoiceField(choices=Regime.choices)
    reason = serializers.CharField()
    signal_price = serializers.DecimalField(**QUANTITY, source="signal.price")
    signal_candle_open_time = serializers.DateTimeField(source="signal.candle_open_time")
    created_at = serializers.DateTimeField()


class BlockedExecutionFilter(serializers.Serializer):
    bot = serializers.IntegerField(required=False, min_value=1, max_value=DB_ID_MAX)


# --- regime readings ------------------------------------------------------------------------------------------


class RegimeReadingOutput(serializers.Serializer):
    symbol = serializers.CharField(source="instrument.symbol")
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, help_text="The candles it was read from.")
    as_of = serializers.DateTimeField(help_text="The close of the candle it was read at.")
    regime = serializers.ChoiceField(choices=Regime.choices)
    sma_slope_pct = serializers.DecimalField(max_digits=12, decimal_places=6)
    adx = serializers.DecimalField(max_digits=12, decimal_places=6)


class RegimeFilter(serializers.Serializer):
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False)
