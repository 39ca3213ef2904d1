"""Read-only views for support staff. Money moves only through the services (FIFO, audit, live push)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from portfolios.models import CashBalance, Lot, Portfolio, Position, Snapshot, Transaction, Watchlist


@admin.register(Portfolio)
class PortfolioAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "kind", "base_currency", "allow_short", "created_at"]
    list_filter = ["kind", "base_currency"]
    search_fields = ["name", "user__email"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "executed_at",
        "portfolio",
        "kind",
        "instrument",
        "currency",
        "quantity",
        "price",
        "fee",
        "fee_currency",
        "realized_pnl",
        "source",
        "external_id",
    ]
    list_filter = ["kind", "source"]
    search_fields = ["external_id", "portfolio__name", "user__email"]
    date_hierarchy = "executed_at"
    list_select_related = ["portfolio", "instrument"]


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "portfolio",
        "instrument",
        "quantity",
        "cost_basis",
        "realized_pnl",
        "fees_paid",
        "updated_at",
    ]
    search_fields = ["portfolio__name", "user__email", "instrument__symbol"]
    list_select_related = ["portfolio", "instrument"]


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["position", "opened_at", "quantity", "quantity_open", "cost_open", "closed_at"]
    list_select_related = ["position__instrument"]


@admin.register(CashBalance)
class CashBalanceAdmin(ReadOnlyAdmin):
    list_display = ["portfolio", "currency", "amount"]
    list_select_related = ["portfolio"]


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["portfolio", "date", "value", "net_flow", "taken_at"]
    date_hierarchy = "date"
    list_select_related = ["portfolio"]


@admin.register(Watchlist)
class WatchlistAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "created_at"]
