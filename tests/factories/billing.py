from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from billing.choices import (
    AI_QUERY_METER_EVENT,
    CheckoutStatus,
    Feature,
    InvoiceStatus,
    PlanCode,
    SubscriptionStatus,
)
from billing.models import (
    AppliedEvent,
    CheckoutSession,
    Invoice,
    MeterReport,
    StripePrice,
    Subscription,
    UsageRecord,
    WebhookEvent,
)
from tests.factories.base import ReferenceFactory, SystemOnlyFactory, TenantFactory


class SubscriptionFactory(TenantFactory):
    """An active Pro subscription, as the webhooks would have recorded it."""

    class Meta:
        model = Subscription

    stripe_customer_id = factory.LazyAttribute(lambda o: f"cus_{o.user.pk}")
    stripe_subscription_id = factory.LazyAttribute(lambda o: f"sub_{o.user.pk}")
    plan = PlanCode.PRO
    status = SubscriptionStatus.ACTIVE
    state_at = factory.LazyFunction(timezone.now)


class InvoiceFactory(TenantFactory):
    class Meta:
        model = Invoice

    stripe_id = factory.Sequence(lambda n: f"in_{n:08d}")
    number = factory.Sequence(lambda n: f"NEXUS-{n:04d}")
    status = InvoiceStatus.PAID
    currency = "usd"
    amount_due = Decimal("29.000")
    amount_paid = factory.SelfAttribute("amount_due")
    total = factory.SelfAttribute("amount_due")
    created_at = factory.LazyFunction(timezone.now)
    state_at = factory.SelfAttribute("created_at")


class CheckoutSessionFactory(TenantFactory):
    class Meta:
        model = CheckoutSession

    plan = PlanCode.PRO
    status = CheckoutStatus.OPEN
    stripe_session_id = factory.Sequence(lambda n: f"cs_test_{n:08d}")
    url = factory.LazyAttribute(lambda o: f"https://checkout.stripe.com/c/pay/{o.stripe_session_id}")


class MeterReportFactory(TenantFactory):
    class Meta:
        model = MeterReport

    stripe_customer_id = factory.LazyAttribute(lambda o: f"cus_{o.user.pk}")
    event_name = AI_QUERY_METER_EVENT
    value = 1
    identifier = factory.Sequence(lambda n: f"meter-{n}")
    timestamp = factory.LazyFunction(timezone.now)


class UsageRecordFactory(TenantFactory):
    """One AI query, not yet reported to Stripe."""

    class Meta:
        model = UsageRecord

    feature = Feature.AI_QUERIES
    occurred_at = factory.LazyFunction(timezone.now)
    idempotency_key = factory.Sequence(lambda n: f"ai:{n}")


class AppliedEventFactory(TenantFactory):
    class Meta:
        model = AppliedEvent

    stripe_event_id = factory.Sequence(lambda n: f"evt_{n:08d}")
    outcome = "applied"


class StripePriceFactory(ReferenceFactory):
    """Our synced price of the Pro plan in test mode."""

    class Meta:
        model = StripePrice

    stripe_price_id = factory.Sequence(lambda n: f"price_{n:08d}")
    stripe_product_id = "prod_pro"
    plan = PlanCode.PRO
    lookup_key = factory.LazyAttribute(lambda o: f"nexus_{o.plan}_monthly")
    livemode = False
    synced_at = factory.LazyFunction(timezone.now)


class WebhookEventFactory(SystemOnlyFactory):
    """A Stripe event as the endpoint stored it, not processed yet."""

    class Meta:
        model = WebhookEvent

    stripe_id = factory.Sequence(lambda n: f"evt_{n:08d}")
    type = "invoice.paid"
    event_created = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    payload = factory.LazyAttribute(
        lambda o: {"id": o.stripe_id, "type": o.type, "created": int(o.event_created.timestamp()), "data": {"object": {}}}
    )
