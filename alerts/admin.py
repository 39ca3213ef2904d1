"""Admin for alerts and their firings. Staff see every tenant's rows (the admin runs in system_context)."""

from django.contrib import admin

from alerts.models import Alert, AlertFiring


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "kind",
        "instrument",
        "threshold",
        "window_minutes",
        "state",
        "repeat",
        "fired_count",
        "last_fired_at",
        "expires_at",
    ]
    list_filter = ["state", "kind", "repeat"]
    search_fields = ["user__email", "instrument__symbol", "note"]
    raw_id_fields = ["user"]
    readonly_fields = ["fired_count", "last_fired_at", "rearm_at", "last_value", "created_at", "updated_at"]


@admin.register(AlertFiring)
class AlertFiringAdmin(admin.ModelAdmin):
    list_display = ["fired_at", "user", "alert", "occurrence_key", "value", "message"]
    search_fields = ["user__email", "message", "occurrence_key"]
    date_hierarchy = "fired_at"
    raw_id_fields = ["user", "alert", "notification"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
