"""Admin for alerts and for the notification service's tables (core.models), whose UI lives in this app.

Staff see every tenant's rows (the admin runs in system_context); failed deliveries are listed with
their error so support can act on them.
"""

from django.contrib import admin

from alerts.models import Alert, AlertFiring
from core.models import Notification, NotificationDelivery, NotificationPreference


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


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    extra = 0
    fields = ["channel", "status", "attempts", "last_error", "sent_at", "updated_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "message", "read_at"]
    list_filter = ["kind"]
    search_fields = ["user__email", "message", "dedup_key"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    list_display = ["updated_at", "user", "channel", "status", "attempts", "last_error", "notification"]
    list_filter = ["status", "channel"]
    search_fields = ["user__email", "last_error"]
    raw_id_fields = ["user", "notification"]
    readonly_fields = [
        "user",
        "notification",
        "channel",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
        "sent_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "channel", "enabled"]
    list_filter = ["channel", "enabled"]
    search_fields = ["user__email", "kind"]
    raw_id_fields = ["user"]
