"""/pricing and /billing as a trader sees them, with and without Stripe configured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.choices import SubscriptionStatus
from billing.models import Subscription
from billing.services import entitlement_consume
from core.rls import tenant
from tests.factories import DEFAULT_PASSWORD, InvoiceFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _login(client, user):
    assert client.login(email=user.email, password=DEFAULT_PASSWORD)


def test_pricing_is_public_and_says_when_payments_are_not_configured(client):
    response = client.get(reverse("pricing"))
    assert response.status_code == 200
    body = response.content.decode()
    for text in ("Free", "Pro", "Enterprise", "$29", "$199", "Start 14-day trial", "Unlimited AI queries"):
        assert text in body
    assert "Payments are not configured on this server yet" in body
    assert f'href="{reverse("pricing")}"' in body  # in the navigation for visitors
    assert 'action="/billing/checkout/"' not in body


def test_pricing_offers_checkout_when_configured(synced_plans, client, user_a):
    _login(client, user_a)
    body = client.get(reverse("pricing")).content.decode()
    assert "Payments are not configured" not in body
    assert body.count('action="/billing/checkout/"') == 2
    assert "Your plan" in body  # Free is marked as theirs


def test_billing_requires_login(client):
    response = client.get(reverse("billing"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_billing_without_keys_works_and_says_so(client, user_a):
    entitlement_consume(user=user_a, idempotency_key="page-1")
    _login(client, user_a)
    response = client.get(reverse("billing"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Payments are not configured on this server yet" in body
    assert 'data-testid="current-plan">Free<' in body
    assert "1 / 25" in body  # AI queries used this month
    assert "Upgrade to" not in body and "Manage billing" not in body
    assert 'href="/billing/"' in body  # Billing in the navigation
    assert "No invoices yet." in body


def test_billing_shows_trial_days_usage_invoices_and_actions(synced_plans, client, user_a):
    now = timezone.now()
    SubscriptionFactory(
        user=user_a,
        stripe_customer_id="cus_page",
        status=SubscriptionStatus.TRIALING,
        trial_end=now + timedelta(days=2, hours=3),
        state_at=now,
    )
    InvoiceFactory(
        user=user_a, stripe_id="in_page", number="NX-0001", amount_due=0, created_at=now,
        hosted_invoice_url="https://invoice.stripe.com/i/in_page",
    )
    _login(client, user_a)
    body = client.get(reverse("billing")).content.decode()
    assert 'data-testid="current-plan">Pro<' in body
    assert 'data-testid="trial-days-left">3 days of trial left' in body
    assert "Your Pro trial ends in 3 days. Add a card" in body
    assert "NX-0001" in body and "https://invoice.stripe.com/i/in_page" in body
    assert "Manage billing" in body and "Upgrade to" not in body
    assert "0 / 1,000" in body


def test_billing_banners_for_failed_payment_and_after_the_grace_period(
    synced_plans, client, user_a, settings
):
    settings.BILLING_GRACE_PERIOD_DAYS = 7
    failed = timezone.now() - timedelta(days=2)
    with tenant(user_a.pk):
        Subscription.objects.create(
            user=user_a,
            stripe_customer_id="cus_fail",
            plan="pro",
            status=SubscriptionStatus.PAST_DUE,
            state_at=failed,
            payment_failed_at=failed,
            failed_payment_times=[int(failed.timestamp())],
        )
    _login(client, user_a)
    body = client.get(reverse("billing")).content.decode()
    assert "Your last payment failed." in body
    assert f"before {(failed + timedelta(days=7)):%-d %b %Y}" in body
    assert 'data-testid="current-plan">Pro<' in body

    with tenant(user_a.pk):
        Subscription.objects.filter(user=user_a).update(payment_failed_at=failed - timedelta(days=6))
    body = client.get(reverse("billing")).content.decode()
    assert "We could not collect your payment, so your account has the Free plan" in body
    assert 'data-testid="current-plan">Free<' in body


def test_billing_htmx_returns_the_status_fragment(client, user_a):
    _login(client, user_a)
    response = client.get(reverse("billing"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="billing-status"')


def test_checkout_errors_come_back_as_a_message(synced_plans, client, user_a):
    SubscriptionFactory(user=user_a, stripe_customer_id="cus_x")
    _login(client, user_a)
    response = client.post(reverse("billing_checkout"), {"plan": "enterprise"}, follow=True)
    assert "You already have the Pro plan" in response.content.decode()
    assert client.post(reverse("billing_checkout"), {"plan": "free"}).status_code == 302


def test_checkout_return_messages(client, user_a):
    _login(client, user_a)
    done = client.get(
        reverse("billing_checkout_return"), {"result": "success", "session_id": "cs_x"}, follow=True
    )
    assert "Your plan changes here as soon as Stripe confirms" in done.content.decode()
    cancelled = client.get(reverse("billing_checkout_return"), {"result": "cancel"}, follow=True)
    assert "nothing was charged" in cancelled.content.decode()
