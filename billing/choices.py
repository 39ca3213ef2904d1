"""Billing constants: features a plan limits, plan codes and the Stripe statuses we keep."""

from django.db import models


class Feature(models.TextChoices):
    BOTS = "bots", "trading bots"
    ALERTS = "alerts", "price alerts"
    EXCHANGE_CONNECTIONS = "exchange_connections", "exchange connections"
    AI_QUERIES = "ai_queries", "AI queries per month"
    API_REQUESTS_PER_MINUTE = "api_requests_per_minute", "API requests per minute"
    AUTOMATION_RULES = "automation_rules", "automation rules"
    WEBHOOK_TRIGGERS = "webhook_triggers", "webhook-triggered rules"
    NEWSLETTER_ISSUES = "newsletter_issues", "newsletter issues per month"
    NEWSLETTER_RECIPIENTS = "newsletter_recipients", "newsletter recipients per issue"
    PUBLISHED_NOTES = "published_notes", "published research notes"


# Features whose use billing records itself (UsageRecord), counted per calendar month (UTC).
METERED_FEATURES = frozenset({Feature.AI_QUERIES})
# Features that are a rate, enforced by billing.api.PlanRateThrottle rather than counted.
RATE_FEATURES = frozenset({Feature.API_REQUESTS_PER_MINUTE})
# Features that cap one action (how many recipients one newsletter issue may have): nothing is counted,
# `entitlement_check(increment=n)` asks whether n fits under the cap.
CAP_FEATURES = frozenset({Feature.NEWSLETTER_RECIPIENTS})
# Features without a plan limit for staff: the house writes its newsletter to every member whatever the
# staff account's own plan is.
STAFF_UNLIMITED_FEATURES = frozenset({Feature.NEWSLETTER_ISSUES, Feature.NEWSLETTER_RECIPIENTS})


class PlanCode(models.TextChoices):
    FREE = "free", "Free"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


class SubscriptionStatus(models.TextChoices):
    NONE = "none", "No subscription"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
    TRIALING = "trialing", "Trial"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


# Statuses in which the subscribed plan applies (past_due and unpaid only until the grace period ends).
LIVE_STATUSES = frozenset(
    {
        SubscriptionStatus.TRIALING,
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.PAST_DUE,
        SubscriptionStatus.UNPAID,
    }
)
FAILING_STATUSES = frozenset({SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID})

# Breaks ties between two states of one subscription stamped with the same second: a subscription
# moves forward through these (created incomplete, then trialing or active, then failing, then ended).
STATUS_RANK = {
    SubscriptionStatus.NONE: 0,
    SubscriptionStatus.INCOMPLETE: 1,
    SubscriptionStatus.TRIALING: 2,
    SubscriptionStatus.ACTIVE: 3,
    SubscriptionStatus.PAST_DUE: 4,
    SubscriptionStatus.UNPAID: 5,
    SubscriptionStatus.PAUSED: 5,
    SubscriptionStatus.INCOMPLETE_EXPIRED: 6,
    SubscriptionStatus.CANCELED: 7,
}


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"
    VOID = "void", "Void"


INVOICE_STATUS_RANK = {
    InvoiceStatus.DRAFT: 0,
    InvoiceStatus.OPEN: 1,
    InvoiceStatus.UNCOLLECTIBLE: 2,
    InvoiceStatus.PAID: 3,
    InvoiceStatus.VOID: 3,
}


class CheckoutStatus(models.TextChoices):
    CREATING = "creating", "Creating"
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    EXPIRED = "expired", "Expired"


class MeterReportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"


AI_QUERY_METER_EVENT = "nexus_ai_query"

# Notification kinds (core.notifications) billing sends.
NOTIFY_PLAN_CHANGED = "billing.plan_changed"
NOTIFY_TRIAL_ENDING = "billing.trial_ending"
NOTIFY_PAYMENT_FAILED = "billing.payment_failed"
NOTIFY_PAYMENT_RECOVERED = "billing.payment_recovered"
