"""The instrument registry is edited here; quotes and candles are the feed's and only shown."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from marketdata.models import Candle, Instrument, Quote


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "venue",
        "active",
        "price_precision",
        "quantity_precision",
        "min_notional",
        "stale_after_seconds",
    ]
    list_filter = ["active", "venue", "quote"]
    search_fields = ["symbol", "base", "quote"]


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = [
        "instrument",
        "price",
        "bid",
        "ask",
        "open_24h",
        "volume_24h",
        "source",
        "at",
        "updated_at",
    ]
    list_select_related = ["instrument"]


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ["instrument", "open_time", "open", "high", "low", "close", "volume"]
    list_filter = ["instrument"]
    date_hierarchy = "open_time"
    list_select_related = ["instrument"]
