from django.contrib import admin

from billing.models import (
    CheckoutSession,
    Invoice,
    MeterReport,
    StripePrice,
    Subscription,
    UsageRecord,
    WebhookEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Billing rows come from Stripe and our services; staff look, they do not edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("user", "plan", "status", "trial_end", "payment_failed_at", "downgraded_at", "updated_at")
    list_filter = ("plan", "status")
    search_fields = ("user__email", "stripe_customer_id", "stripe_subscription_id")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "user", "status", "total", "currency", "created_at")
    list_filter = ("status",)
    search_fields = ("stripe_id", "number", "user__email")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_id",
        "type",
        "event_created",
        "received_at",
        "processed_at",
        "outcome",
        "attempts",
    )
    list_filter = ("type",)
    search_fields = ("stripe_id", "stripe_customer_id")


@admin.register(MeterReport)
class MeterReportAdmin(ReadOnlyAdmin):
    list_display = ("identifier", "user", "value", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status",)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("user", "feature", "quantity", "occurred_at", "billable", "meter_report")
    list_filter = ("feature", "billable")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "plan", "status", "stripe_session_id", "created_at", "completed_at")
    list_filter = ("status", "plan")


@admin.register(StripePrice)
class StripePriceAdmin(ReadOnlyAdmin):
    list_display = ("lookup_key", "stripe_price_id", "plan", "active", "livemode", "synced_at")
    list_filter = ("plan", "active", "livemode")
