"""Admin for the audit log and the notification service's tables. Staff see every tenant's rows (the admin
runs in system_context); failed deliveries are listed with their error so support can act on them."""

from django.contrib import admin

from core.models import AuditLog, Notification, NotificationDelivery, NotificationPreference


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the product's own services (ledgers, audit, the feed): staff read, never edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "target_type", "target_id", "user", "ip_address"]
    list_filter = ["action"]
    search_fields = ["actor_label", "action", "target_id"]
    date_hierarchy = "created_at"


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
