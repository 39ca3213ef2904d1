"""Staff views of trading data (the admin runs in the system context for staff, see core.rls)."""

from django.contrib import admin

from trading.models import (
    BlockedExecution,
    Bot,
    ExchangeConnection,
    ExecutionPlan,
    Fill,
    Order,
    RegimeReading,
    ReplayRun,
    Signal,
)


@admin.register(ExchangeConnection)
class ExchangeConnectionAdmin(admin.ModelAdmin):
    list_display = ["label", "user", "venue", "sandbox", "key_last_four", "taker_fee", "status", "created_at"]
    list_filter = ["venue", "status"]
    # The encrypted secrets are never shown, not even to staff.
    exclude = ["api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"]
    readonly_fields = ["user", "venue", "key_last_four", "can_withdraw", "ip_restricted", "maker_fee", "taker_fee",
                       "validated_at"]


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    readonly_fields = ["fill_id", "quantity", "price", "fee", "fee_currency", "executed_at"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "instrument", "side", "type", "quantity", "status", "source", "playbook_tag",
                    "created_at"]
    list_filter = ["status", "type", "side", "source"]
    search_fields = ["id", "exchange_order_id", "user__email"]
    inlines = [FillInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "instrument", "strategy", "params_key", "timeframe", "status", "position_quantity"]
    list_filter = ["strategy", "status", "timeframe"]


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ["candle_open_time", "instrument", "strategy", "params_key", "timeframe", "action", "regime", "status"]
    list_filter = ["action", "regime", "status", "strategy"]


@admin.register(ExecutionPlan)
class ExecutionPlanAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "bot", "signal", "side", "quantity", "status", "reason"]
    list_filter = ["status", "side"]


@admin.register(BlockedExecution)
class BlockedExecutionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "bot", "signal", "side", "regime", "reason"]
    list_filter = ["regime", "side"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RegimeReading)
class RegimeReadingAdmin(admin.ModelAdmin):
    list_display = ["as_of", "instrument", "timeframe", "regime", "sma_slope_pct", "adx"]
    list_filter = ["regime", "instrument"]


@admin.register(ReplayRun)
class ReplayRunAdmin(admin.ModelAdmin):
    """Strategy-tracker simulations: read only (their fills are simulated, never orders)."""

    list_display = ["name", "user", "instrument", "strategy", "params_key", "timeframe", "status", "decisions",
                    "blocked", "created_at"]
    list_filter = ["status", "strategy", "source"]
    search_fields = ["name", "user__email"]
    exclude = ["daily_closes"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
