"""Serializers of the markets API (market data is reference data: the same for every trader)."""

from __future__ import annotations

from rest_framework import serializers

from core.api import FlatListSerializer
from marketdata.selectors import CANDLE_LIMIT_MAX, TIMEFRAMES

PRICE = {"max_digits": 20, "decimal_places": 8}
VOLUME = {"max_digits": 28, "decimal_places": 8}


class InstrumentOutput(serializers.Serializer):
    symbol = serializers.CharField(help_text="Unified symbol, e.g. BTC/USDT.")
    slug = serializers.CharField(help_text="The symbol in paths: BTC-USDT.")
    base = serializers.CharField()
    quote = serializers.CharField()
    venue = serializers.CharField()
    price_precision = serializers.IntegerField(help_text="Decimal places of a price.")
    quantity_precision = serializers.IntegerField(help_text="Decimal places of a quantity.")
    min_notional = serializers.DecimalField(
        **PRICE, help_text="The smallest order value, in the quote currency."
    )
    active = serializers.BooleanField()
    stale_after_seconds = serializers.IntegerField(help_text="Silence after which a quote is stale.")


class QuoteOutput(serializers.Serializer):
    symbol = serializers.CharField()
    price = serializers.DecimalField(**PRICE)
    bid = serializers.DecimalField(**PRICE, allow_null=True)
    ask = serializers.DecimalField(**PRICE, allow_null=True)
    change_pct = serializers.DecimalField(
        max_digits=20, decimal_places=2, allow_null=True, help_text="Change over 24 hours, in percent."
    )
    open_24h = serializers.DecimalField(**PRICE, allow_null=True)
    volume_24h = serializers.DecimalField(**VOLUME, allow_null=True)
    updated_at = serializers.DateTimeField()
    stale = serializers.BooleanField(
        help_text="Silent for longer than the pair's threshold: do not trade on it."
    )

    class Meta:
        list_serializer_class = FlatListSerializer


class QuoteFilter(serializers.Serializer):
    symbols = serializers.CharField(
        required=False,
        max_length=2000,
        help_text='Comma-separated pairs ("BTC/USDT,ETH-USDT"); every listed pair when omitted.',
    )


class CandleOutput(serializers.Serializer):
    open_time = serializers.DateTimeField()
    open = serializers.DecimalField(**PRICE)
    high = serializers.DecimalField(**PRICE)
    low = serializers.DecimalField(**PRICE)
    close = serializers.DecimalField(**PRICE)
    volume = serializers.DecimalField(**VOLUME)

    class Meta:
        list_serializer_class = FlatListSerializer


class CandleFilter(serializers.Serializer):
    interval = serializers.ChoiceField(
        choices=list(TIMEFRAMES),
        default="1m",
        help_text="Bar length; longer bars are built from the one-minute ones (UTC).",
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=CANDLE_LIMIT_MAX,
        default=500,
        help_text="The newest this many bars of the range.",
    )
    start = serializers.DateTimeField(required=False, help_text="Bars opening at or after (ISO 8601).")
    end = serializers.DateTimeField(required=False, help_text="Bars opening before (ISO 8601).")

    def validate(self, attrs):
        if "start" in attrs and "end" in attrs and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"start": ["The range's start must be before its end."]})
        return attrs
