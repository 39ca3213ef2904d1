"""dj-stripe's tables and the raw webhook events are system-only: pages, the API and entitlements read
billing's tenant tables and its StripePrice reference table, and never enter the system context."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from djstripe.models import WebhookEndpoint, WebhookEventTrigger

from billing.choices import SubscriptionStatus
from billing.models import AppliedEvent, Invoice, StripePrice, Subscription, WebhookEvent
from billing.plans import PRO
from billing.selectors import (
    billing_overview,
    entitlement_remaining,
    entitlement_summary,
    payments_configured,
    user_plan,
)
from billing.services import entitlement_check, entitlement_consume
from billing.webhooks import webhook_event_process
from core import rls
from core.models import AuditLog, Notification
from core.rls import system_context, tenant
from tests.billing import stripe_events
from tests.factories import DEFAULT_PASSWORD, InstrumentFactory

pytestmark = pytest.mark.django_db

SYSTEM_ONLY_MARKERS = ("djstripe_", "billing_webhookevent")


@dataclass
class Watched:
    queries: list[str] = field(default_factory=list)
    system_reasons: list[str] = field(default_factory=list)

    def touching_system_only_tables(self) -> list[str]:
        return [sql for sql in self.queries if any(marker in sql.lower() for marker in SYSTEM_ONLY_MARKERS)]


@contextmanager
def watched() -> Iterator[Watched]:
    """Record every SQL statement on the runtime connection and every entry into system_context.

    system_context is wrapped wherever a module imported it, so an entry is seen whichever connection
    the system block runs on.
    """
    seen = Watched()
    original = rls.system_context

    @contextmanager
    def recording_system_context(*, reason: str, **kwargs):
        seen.system_reasons.append(reason)
        with original(reason=reason, **kwargs):
            yield

    with pytest.MonkeyPatch.context() as patch, CaptureQueriesContext(connection) as captured:
        for module in list(sys.modules.values()):
            if getattr(module, "system_context", None) is original:
                patch.setattr(module, "system_context", recording_system_context)
        yield seen
    seen.queries = [query["sql"] for query in captured.captured_queries]


@pytest.fixture
def billing_history(synced_plans, webhooks, client, user_a, clock):
    """A Pro trial learnt from Stripe through the webhook: dj-stripe's tables and the event store hold
    rows, so a page that read them would have something to find."""
    with tenant(user_a.pk):
        Subscription.objects.create(user=user_a, stripe_customer_id="cus_sysonly")
    subscription = stripe_events.subscription(
        sub_id="sub_sysonly",
        customer_id="cus_sysonly",
        status="trialing",
        plan=PRO,
        created=clock.at(0),
        trial_end=clock.at(14 * 86400),
        user_id=user_a.pk,
    )
    event = stripe_events.event(type="customer.subscription.created", obj=subscription, created=clock.at(0))
    assert webhooks.post(Client(), event).status_code == 200
    assert webhook_event_process(event_id=event["id"]) == "subscription trialing"
    with tenant(user_a.pk):
        Invoice.objects.create(
            user=user_a,
            stripe_id="in_sysonly",
            number="NX-SYS-1",
            status="paid",
            currency="usd",
            amount_due=0,
            amount_paid=0,
            total=0,
            created_at=datetime.fromtimestamp(clock.at(0), tz=UTC),
            state_at=datetime.fromtimestamp(clock.at(0), tz=UTC),
        )
    with system_context(reason="test: the system-only tables hold rows"):
        assert WebhookEvent.objects.exists()
        assert WebhookEndpoint.objects.exists() and WebhookEventTrigger.objects.exists()
    assert client.login(email=user_a.email, password=DEFAULT_PASSWORD)
    return client


def test_the_watch_sees_system_context_and_the_system_only_tables():
    """The watch itself can fail: it records a system block, and flags SQL naming a system-only table
    (`to_regclass` names one without needing any privilege on it)."""
    with watched() as seen:
        with system_context(reason="test: a system block"):
            pass
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regclass('djstripe_webhookendpoint'), to_regclass('billing_stripeprice')"
            )
    assert seen.system_reasons == ["test: a system block"]
    assert len(seen.touching_system_only_tables()) == 1


def test_pages_and_the_api_read_billing_state_without_system_only_tables(billing_history):
    client = billing_history
    InstrumentFactory(symbol="BTC/USDT")
    with watched() as seen:
        pricing = client.get("/pricing/")
        billing = client.get("/billing/")
        status_card = client.get("/billing/", HTTP_HX_REQUEST="true")
        returned = client.get("/billing/return/?result=success", follow=True)
        checkout = client.post("/billing/checkout/", {"plan": "enterprise"})
        portal = client.post("/billing/portal/")
        # The API's plan-rate throttle reads the plan on every call; creating an alert checks the plan's limit.
        api_list = client.get("/api/v1/portfolios/")
        api_create = client.post(
            "/api/v1/portfolios/", {"name": "API", "base_currency": "USD"}, content_type="application/json"
        )
        api_me = client.get("/api/v1/accounts/me/")
        gated_view = client.post(
            "/alerts/", {"kind": "price_above", "symbol": "BTC/USDT", "threshold": "1000000", "cooldown_minutes": "15"}
        )
        anonymous_pricing = Client().get("/pricing/")

    assert [r.status_code for r in (pricing, billing, status_card, returned, anonymous_pricing)] == [200] * 5
    # A live trial: Checkout refuses (use the Portal), which opens.
    assert checkout.status_code == 302 and portal.status_code == 303
    assert [api_list.status_code, api_create.status_code, api_me.status_code, gated_view.status_code] == [
        200,
        201,
        200,
        302,  # the alert is created, and the page redirects to the list
    ]
    assert 'data-testid="current-plan">Pro<' in billing.content.decode()
    assert "NX-SYS-1" in billing.content.decode()
    assert "Payments are not configured" not in pricing.content.decode()
    assert seen.touching_system_only_tables() == []
    assert seen.system_reasons == []
    # The prices come from billing's own table.
    assert any("billing_stripeprice" in sql for sql in seen.queries)


def test_entitlements_and_template_tags_read_no_system_only_tables(billing_history, user_a):
    request = RequestFactory().get("/")
    request.user = user_a
    template = Template(
        "{% load billing %}{% user_plan as plan %}{% entitlement_remaining 'ai_queries' as left %}"
        "{% entitlement_allows 'bots' as can_add %}{{ plan.name }}|{{ left }}|{{ can_add }}"
    )
    with watched() as seen:
        plan = user_plan(user=user_a)
        entitlement_consume(user=user_a, idempotency_key="sysonly-1")
        remaining = entitlement_remaining(user=user_a, feature="ai_queries")
        left_after_check = entitlement_check(user=user_a, feature="alerts")
        summary = entitlement_summary(user=user_a)
        overview = billing_overview(user=user_a)
        configured = payments_configured()
        rendered = template.render(Context({"request": request}))

    assert plan.code == "pro" and overview.status == SubscriptionStatus.TRIALING
    assert remaining == 999 and left_after_check == 99 and configured is True
    assert {row.feature for row in summary} >= {"ai_queries", "bots"}
    assert rendered == "Pro|999|True"
    assert seen.touching_system_only_tables() == []
    assert seen.system_reasons == []


def test_the_stripe_secret_key_is_never_stored_in_the_database(billing_history, user_b):
    """The key comes from the environment: syncing plans, Checkout and webhooks write no dj-stripe APIKey."""
    from djstripe.models import APIKey

    client = Client()
    assert client.login(email=user_b.email, password=DEFAULT_PASSWORD)
    assert client.post("/billing/checkout/", {"plan": "pro"}).status_code == 303
    with system_context(reason="test: look for a stored API key"):
        assert not APIKey.objects.exists()


def test_a_worker_that_dies_after_applying_an_event_does_not_apply_it_twice(
    webhooks, client, user_a, clock, monkeypatch
):
    """Applying commits in the user's transaction, marking the stored event in the system one; a retry
    between the two finds the event claimed, marks it and adds no second side effect."""
    from billing import webhooks as webhook_module

    with tenant(user_a.pk):
        Subscription.objects.create(user=user_a, stripe_customer_id="cus_crash")
    subscription = stripe_events.subscription(
        sub_id="sub_crash",
        customer_id="cus_crash",
        status="trialing",
        plan=PRO,
        created=clock.at(0),
        trial_end=clock.at(14 * 86400),
    )
    event = stripe_events.event(type="customer.subscription.created", obj=subscription, created=clock.at(0))
    assert webhooks.post(client, event).status_code == 200

    mark = webhook_module._mark_processed

    def worker_dies(**kwargs):
        raise SystemError("worker lost before marking the event processed")

    monkeypatch.setattr(webhook_module, "_mark_processed", worker_dies)
    with pytest.raises(SystemError):
        webhook_event_process(event_id=event["id"])
    monkeypatch.setattr(webhook_module, "_mark_processed", mark)

    with tenant(user_a.pk):
        assert Subscription.objects.get(user=user_a).status == SubscriptionStatus.TRIALING
        assert AppliedEvent.objects.get().outcome == "subscription trialing"
        audits = AuditLog.objects.filter(user=user_a, action="billing.subscription_changed").count()
        notifications = Notification.objects.filter(user=user_a).count()
    assert (audits, notifications) == (1, 1)
    with system_context(reason="test"):
        stored = WebhookEvent.objects.get(stripe_id=event["id"])
    assert (stored.processed_at, stored.attempts) == (None, 1)

    assert webhook_event_process(event_id=event["id"]) == "duplicate: already applied"
    assert webhook_event_process(event_id=event["id"]) == "duplicate: already processed"
    with system_context(reason="test"):
        stored = WebhookEvent.objects.get(stripe_id=event["id"])
    assert stored.processed_at is not None and stored.outcome == "subscription trialing"
    with tenant(user_a.pk):
        assert AuditLog.objects.filter(user=user_a, action="billing.subscription_changed").count() == 1
        assert Notification.objects.filter(user=user_a).count() == 1


def test_payments_are_configured_only_while_every_paid_price_is_recorded(synced_plans, client):
    assert set(StripePrice.objects.filter(active=True).values_list("lookup_key", flat=True)) == {
        "nexus_pro_monthly",
        "nexus_pro_ai_queries",
        "nexus_enterprise_monthly",
        "nexus_enterprise_ai_queries",
    }
    assert payments_configured() is True
    with system_context(reason="test: the enterprise metered price was never synced"):
        StripePrice.objects.filter(lookup_key="nexus_enterprise_ai_queries").delete()
    assert payments_configured() is False
    assert "Payments are not configured on this server yet" in client.get("/pricing/").content.decode()
