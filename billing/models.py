"""Billing state per user (row-level security), our synced Stripe prices, and the webhook event store.

Stripe is the authority on subscriptions and invoices; these rows are what Nexus has learned from its
webhooks, applied in Stripe's order (see billing/webhooks.py), so entitlements never need a Stripe call.
Pages and entitlements read only the tenant tables and StripePrice (shared reference); WebhookEvent and
dj-stripe's tables are system-only (docs/billing.md, "Tables").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from billing.choices import (
    FAILING_STATUSES,
    LIVE_STATUSES,
    CheckoutStatus,
    InvoiceStatus,
    MeterReportStatus,
    PlanCode,
    SubscriptionStatus,
)
from core.models import TenantModel


class Subscription(TenantModel):
    """One row per user: their Stripe customer and current subscription, as the webhooks told us."""

    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # Bumped when Stripe deletes the customer, so the next customer gets a fresh idempotency key.
    customer_generation = models.PositiveIntegerField(default=0)
    customer_state_at = models.DateTimeField(
        null=True, blank=True, help_text="Stripe time of the customer state applied."
    )
    has_payment_method = models.BooleanField(default=False)

    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    subscription_created_at = models.DateTimeField(null=True, blank=True)
    plan = models.CharField(max_length=20, choices=PlanCode.choices, default=PlanCode.FREE)
    status = models.CharField(
        max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.NONE
    )
    # The Stripe event time (and status rank for same-second ties) of the subscription state applied:
    # an older state arriving later is recognised and skipped.
    state_at = models.DateTimeField(null=True, blank=True)
    state_rank = models.PositiveSmallIntegerField(default=0)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at = models.DateTimeField(null=True, blank=True, help_text="When a cancelled subscription ends.")

    # Payment standing, kept order-independent: the latest time the account was in good standing, and the
    # failures reported after it (Stripe event times). The grace period runs from the first such failure.
    last_paid_at = models.DateTimeField(null=True, blank=True)
    failed_payment_times = models.JSONField(default=list, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    downgraded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the grace period ran out and the user was moved to Free."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user"], name="billing_subscription_one_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.plan} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_local_trial(self) -> bool:
        """A trial Nexus granted itself (billing.services.subscription_trial_grant), not one from Stripe."""
        return self.status == SubscriptionStatus.TRIALING and not self.stripe_subscription_id

    @property
    def failing_since(self) -> datetime | None:
        if not self.is_live:
            return None
        if self.payment_failed_at is not None:
            return self.payment_failed_at
        return self.state_at if self.status in FAILING_STATUSES else None

    def grace_ends_at(self) -> datetime | None:
        since = self.failing_since
        return since + timedelta(days=settings.BILLING_GRACE_PERIOD_DAYS) if since else None

    def entitled_plan_code(self, *, now: datetime) -> str:
        """The plan whose limits apply now: the subscribed one while live and within any grace period."""
        if not self.is_live:
            return PlanCode.FREE
        if self.is_local_trial and self.trial_end is not None and now >= self.trial_end:
            return PlanCode.FREE  # no Stripe subscription will end it: it ends here
        grace_end = self.grace_ends_at()
        if grace_end is not None and now >= grace_end:
            return PlanCode.FREE
        return self.plan


class Invoice(TenantModel):
    stripe_id = models.CharField(max_length=255, unique=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices)
    currency = models.CharField(max_length=3)
    amount_due = models.DecimalField(max_digits=16, decimal_places=3)
    amount_paid = models.DecimalField(max_digits=16, decimal_places=3)
    total = models.DecimalField(max_digits=16, decimal_places=3)
    hosted_invoice_url = models.URLField(max_length=2048, blank=True)
    invoice_pdf = models.URLField(max_length=2048, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(help_text="When Stripe created the invoice.")
    state_at = models.DateTimeField()
    state_rank = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.number or self.stripe_id} {self.status}"


class CheckoutSession(TenantModel):
    """A Stripe Checkout Session we opened; its primary key is the idempotency key of the create call."""

    plan = models.CharField(max_length=20, choices=PlanCode.choices)
    status = models.CharField(max_length=20, choices=CheckoutStatus.choices, default=CheckoutStatus.CREATING)
    stripe_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    url = models.URLField(max_length=2048, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.plan} {self.status} {self.stripe_session_id or ''}"


class MeterReport(TenantModel):
    """One batch of a user's metered usage sent to Stripe as one meter event (`identifier` dedups it)."""

    stripe_customer_id = models.CharField(max_length=255)
    event_name = models.CharField(max_length=100)
    value = models.PositiveIntegerField()
    identifier = models.CharField(max_length=100, unique=True)
    timestamp = models.DateTimeField(
        help_text="The meter event's time, fixed at batching so retries are identical."
    )
    status = models.CharField(
        max_length=20, choices=MeterReportStatus.choices, default=MeterReportStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.identifier}: {self.value} {self.event_name} ({self.status})"


class UsageRecord(TenantModel):
    """One use of a metered feature (an AI query), recorded when it happens."""

    feature = models.CharField(max_length=40)
    quantity = models.PositiveIntegerField(default=1)
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(
        max_length=200, help_text="The caller's id for this use; counted once."
    )
    # True when the user was on a paid plan with a Stripe customer: only those uses are reported to Stripe.
    billable = models.BooleanField(default=False)
    meter_report = models.ForeignKey(
        MeterReport, on_delete=models.PROTECT, null=True, blank=True, related_name="records"
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["user", "feature", "occurred_at"]),
            models.Index(
                fields=["user"],
                condition=models.Q(billable=True, meter_report__isnull=True),
                name="billing_usage_unreported",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="billing_usage_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.feature} x{self.quantity}"


class AppliedEvent(TenantModel):
    """A Stripe event applied to this user's billing state, written in the transaction that applied it.

    The event store (WebhookEvent) is system-only and lives in another transaction than the user's rows,
    so this row is what makes applying an event happen once: a second worker's insert waits for the
    first one's transaction and then finds the row.
    """

    stripe_event_id = models.CharField(max_length=255, unique=True)
    outcome = models.CharField(max_length=200)
    applied_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_event_id}: {self.outcome}"


class StripePrice(models.Model):
    """One of our prices in Stripe, as `billing_sync_plans` created or found it (shared reference).

    Pages and Checkout find the price ids here, never in dj-stripe's tables. A price that lost its lookup
    key to a newer one stays, inactive.
    """

    stripe_price_id = models.CharField(max_length=255, unique=True)
    stripe_product_id = models.CharField(max_length=255)
    plan = models.CharField(max_length=20, choices=PlanCode.choices)
    lookup_key = models.CharField(max_length=200)
    livemode = models.BooleanField()
    active = models.BooleanField(default=True)
    synced_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lookup_key", "livemode"],
                condition=models.Q(active=True),
                name="billing_stripeprice_one_active_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.lookup_key}: {self.stripe_price_id}{'' if self.active else ' (inactive)'}"


class WebhookEvent(models.Model):
    """Every distinct Stripe event, stored once (unique event id) and processed exactly once.

    No user_id: the endpoint stores events before anyone knows whose they are. Processing resolves the
    customer to a user and acts in that user's tenant context. System-only: raw Stripe payloads, read
    and written inside `system_context` only.
    """

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    api_version = models.CharField(max_length=64, blank=True)
    event_created = models.DateTimeField(help_text="Stripe's `created` of the event.")
    payload = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-event_created", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="billing_event_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type}"

    @property
    def data_object(self) -> dict:
        return (self.payload.get("data") or {}).get("object") or {}
