"""Every call Nexus makes to Stripe, checked at the HTTP boundary: what was sent and with which
idempotency key, and what Nexus did with the answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing import catalog
from billing.catalog import plans_sync
from billing.choices import CheckoutStatus, MeterReportStatus, SubscriptionStatus
from billing.models import CheckoutSession, MeterReport, StripePrice, Subscription, UsageRecord
from billing.plans import ENTERPRISE, PRO
from billing.services import (
    checkout_session_start,
    entitlement_consume,
    portal_session_start,
    usage_report_pending,
)
from core.errors import DomainError
from core.rls import system_context, tenant
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

URLS = {
    "success_url": "https://nexus.test/billing/return/?result=success",
    "cancel_url": "https://nexus.test/billing/return/",
}


def test_sync_plans_creates_the_catalog_once_with_idempotency_keys(stripe_http):
    call_command("billing_sync_plans", verbosity=0)

    posts = stripe_http.posts()
    assert [(r.path, r.idempotency_key) for r in posts if r.path == "/v1/billing/meters"] == [
        ("/v1/billing/meters", "nexus-meter-nexus_ai_query")
    ]
    product_posts = {r.params["id"]: r for r in posts if r.path == "/v1/products"}
    assert set(product_posts) == {"nexus_pro", "nexus_enterprise"}
    assert product_posts["nexus_pro"].idempotency_key.startswith("nexus-product-nexus_pro-")
    price_posts = {r.params["lookup_key"]: r for r in posts if r.path == "/v1/prices"}
    assert set(price_posts) == {
        "nexus_pro_monthly",
        "nexus_pro_ai_queries",
        "nexus_enterprise_monthly",
        "nexus_enterprise_ai_queries",
    }
    assert price_posts["nexus_pro_monthly"].params["unit_amount_decimal"] == "2900"
    assert price_posts["nexus_enterprise_ai_queries"].params["tiers[0][up_to]"] == "10000"
    assert price_posts["nexus_enterprise_ai_queries"].params["tiers[1][unit_amount_decimal]"] == "1"
    assert price_posts["nexus_pro_ai_queries"].params["recurring[usage_type]"] == "metered"
    for lookup_key, request in price_posts.items():
        assert request.idempotency_key.startswith(f"nexus-price-{lookup_key}-")
        assert request.params["transfer_lookup_key"] == "true"
    # Billing records the prices Stripe returned; pages and Checkout find them there.
    recorded = {p.lookup_key: p for p in StripePrice.objects.all()}
    assert set(recorded) == set(price_posts)
    assert recorded["nexus_pro_monthly"].stripe_price_id == stripe_http.price_id("nexus_pro_monthly")
    assert recorded["nexus_enterprise_ai_queries"].plan == "enterprise"
    assert all(p.active and not p.livemode for p in recorded.values())

    stripe_http.requests.clear()
    call_command("billing_sync_plans", verbosity=0)
    assert stripe_http.posts() == [], "a second run must change nothing"
    assert StripePrice.objects.count() == 4


def test_a_changed_price_becomes_a_new_price_that_takes_the_lookup_key(stripe_http, monkeypatch):
    plans_sync()
    old = StripePrice.objects.get(lookup_key="nexus_pro_monthly")
    monkeypatch.setattr(
        catalog, "paid_plan_list", lambda: [replace(PRO, monthly_price=PRO.monthly_price + 10), ENTERPRISE]
    )
    stripe_http.requests.clear()
    plans_sync()
    created = [r for r in stripe_http.posts("/v1/prices")]
    assert [r.params["lookup_key"] for r in created] == ["nexus_pro_monthly"]
    assert created[0].params["unit_amount_decimal"] == "3900"
    current = StripePrice.objects.get(lookup_key="nexus_pro_monthly", active=True)
    assert current.stripe_price_id == stripe_http.price_id("nexus_pro_monthly") != old.stripe_price_id
    old.refresh_from_db()
    assert old.active is False
    assert StripePrice.objects.filter(active=True).count() == 4


def test_checkout_creates_customer_and_session_with_keys_from_our_ids(synced_plans, user_a):
    stripe_http = synced_plans
    stripe_http.requests.clear()

    url = checkout_session_start(user=user_a, plan_code="pro", **URLS)

    customer_post, session_post = stripe_http.posts()
    assert customer_post.path == "/v1/customers"
    assert customer_post.idempotency_key == f"nexus-customer-{user_a.pk}-0"
    assert customer_post.params["metadata[nexus_user_id]"] == str(user_a.pk)
    with tenant(user_a.pk):
        local = CheckoutSession.objects.get(user=user_a)
        subscription = Subscription.objects.get(user=user_a)
    assert session_post.path == "/v1/checkout/sessions"
    assert session_post.idempotency_key == f"nexus-checkout-{local.pk}"
    params = session_post.params
    assert params["mode"] == "subscription"
    assert params["customer"] == subscription.stripe_customer_id
    assert params["line_items[0][price]"] == stripe_http.price_id("nexus_pro_monthly")
    assert params["line_items[1][price]"] == stripe_http.price_id("nexus_pro_ai_queries")
    assert params["subscription_data[trial_period_days]"] == "14"
    assert params["subscription_data[metadata][nexus_user_id]"] == str(user_a.pk)
    assert url == local.url and local.status == CheckoutStatus.OPEN
    assert url.startswith("https://checkout.stripe.com/")


def test_a_second_click_reuses_the_open_session(synced_plans, user_a):
    first = checkout_session_start(user=user_a, plan_code="pro", **URLS)
    synced_plans.requests.clear()
    second = checkout_session_start(user=user_a, plan_code="pro", **URLS)
    assert second == first
    assert synced_plans.posts() == []


def test_choosing_another_plan_expires_the_open_session_first(synced_plans, user_a):
    checkout_session_start(user=user_a, plan_code="pro", **URLS)
    with tenant(user_a.pk):
        pro_session = CheckoutSession.objects.get(plan="pro")
    synced_plans.requests.clear()

    checkout_session_start(user=user_a, plan_code="enterprise", **URLS)

    expire, create = synced_plans.posts()
    assert expire.path == f"/v1/checkout/sessions/{pro_session.stripe_session_id}/expire"
    assert expire.idempotency_key == f"nexus-checkout-expire-{pro_session.pk}"
    assert create.path == "/v1/checkout/sessions"
    assert "subscription_data[trial_period_days]" not in create.params  # Enterprise has no trial
    with tenant(user_a.pk):
        assert dict(CheckoutSession.objects.values_list("plan", "status")) == {
            "pro": CheckoutStatus.EXPIRED,
            "enterprise": CheckoutStatus.OPEN,
        }


def test_no_second_trial_and_no_checkout_while_subscribed(synced_plans, user_a):
    with tenant(user_a.pk):
        Subscription.objects.create(
            user=user_a,
            stripe_customer_id="cus_known",
            plan="pro",
            status=SubscriptionStatus.ACTIVE,
            trial_end=timezone.now() - timedelta(days=20),
        )
    with pytest.raises(DomainError, match="already have the Pro plan"):
        checkout_session_start(user=user_a, plan_code="enterprise", **URLS)
    with tenant(user_a.pk):
        Subscription.objects.filter(user=user_a).update(status=SubscriptionStatus.CANCELED)
    synced_plans.requests.clear()
    checkout_session_start(user=user_a, plan_code="pro", **URLS)
    (create,) = synced_plans.posts()
    assert create.params["customer"] == "cus_known"
    assert "subscription_data[trial_period_days]" not in create.params


def test_checkout_view_redirects_to_stripe(synced_plans, client, user_a):
    client.login(email=user_a.email, password=DEFAULT_PASSWORD)
    response = client.post(reverse("billing_checkout"), {"plan": "pro"})
    assert response.status_code == 303
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    (create,) = synced_plans.posts("/v1/checkout/sessions")
    assert (
        create.params["success_url"]
        == "http://testserver/billing/return/?result=success&session_id={CHECKOUT_SESSION_ID}"
    )


def test_portal_session_key_and_redirect(stripe_http, client, user_a):
    with tenant(user_a.pk):
        Subscription.objects.create(user=user_a, stripe_customer_id="cus_portal", plan="pro", status="active")
    client.login(email=user_a.email, password=DEFAULT_PASSWORD)
    response = client.post(reverse("billing_portal"))
    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.com/p/session/")
    (post,) = stripe_http.posts()
    assert post.path == "/v1/billing_portal/sessions"
    assert post.params == {"customer": "cus_portal", "return_url": "http://testserver/billing/"}
    assert post.idempotency_key == f"nexus-portal-{user_a.pk}-{int(timezone.now().timestamp()) // 60}"


def test_portal_without_a_customer_says_what_to_do(stripe_http, user_a):
    with pytest.raises(DomainError, match="choose a plan on the pricing page first"):
        portal_session_start(user=user_a, return_url="https://nexus.test/billing/")
    assert stripe_http.requests == []


def test_without_keys_nothing_is_sent_and_the_user_is_told(user_a, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    with pytest.raises(DomainError, match="Payments are not configured"):
        checkout_session_start(user=user_a, plan_code="pro", **URLS)


def _paying(user, customer_id: str) -> None:
    with tenant(user.pk):
        Subscription.objects.create(user=user, stripe_customer_id=customer_id, plan="pro", status="active")


def test_usage_is_reported_in_batches_once_even_when_a_report_is_retried(stripe_http, user_a, user_b):
    _paying(user_a, "cus_meter_a")
    _paying(user_b, "cus_meter_b")
    for n in range(3):
        entitlement_consume(user=user_a, idempotency_key=f"ai-a-{n}")
    entitlement_consume(user=user_b, idempotency_key="ai-b-0", quantity=2)
    stripe_http.unreachable["/v1/billing/meter_events"] = 1  # the first send fails on the network

    first = usage_report_pending()
    assert first == {"batched": 2, "sent": 1, "failed": 1}
    second = usage_report_pending()
    assert second == {"batched": 0, "sent": 1, "failed": 0}
    third = usage_report_pending()
    assert third == {"batched": 0, "sent": 0, "failed": 0}

    sends = stripe_http.posts("/v1/billing/meter_events")
    assert len(sends) == 3  # two batches, one of them sent twice
    for send in sends:
        assert send.idempotency_key == send.params["identifier"]
        assert send.params["event_name"] == "nexus_ai_query"
    retried = [s.params["identifier"] for s in sends]
    assert len(set(retried)) == 2
    assert stripe_http.metered_total("cus_meter_a") == 3
    assert stripe_http.metered_total("cus_meter_b") == 2
    with tenant(user_a.pk):
        report = MeterReport.objects.get(user=user_a)
        assert report.status == MeterReportStatus.SENT and report.value == 3
        assert (
            report.identifier
            == f"nexus-ai-{user_a.pk}-{UsageRecord.objects.filter(user=user_a).order_by('pk').first().pk}"
        )


def test_free_usage_is_never_reported(stripe_http, user_a):
    entitlement_consume(user=user_a, idempotency_key="ai-free-1")
    assert usage_report_pending() == {"batched": 0, "sent": 0, "failed": 0}
    assert stripe_http.requests == []


def test_commands_without_stripe_keys_and_the_local_endpoint(user_a, settings):
    from django.core.management.base import CommandError

    settings.STRIPE_TEST_SECRET_KEY = ""
    with pytest.raises(CommandError, match="Payments are not configured"):
        call_command("billing_sync_plans", verbosity=0)

    from io import StringIO

    out = StringIO()
    call_command(
        "billing_webhook_endpoint",
        "--secret",
        "whsec_cli_secret",
        "--base-url",
        "https://nexus.example",
        stdout=out,
    )
    url = out.getvalue().strip()
    assert url.startswith("https://nexus.example/stripe/webhook/")
    again = StringIO()
    call_command(
        "billing_webhook_endpoint",
        "--secret",
        "whsec_cli_secret",
        "--base-url",
        "https://nexus.example",
        stdout=again,
    )
    assert again.getvalue().strip() == url  # same secret, same endpoint
    from djstripe.models import WebhookEndpoint

    with system_context(reason="test: read the endpoint's secret"):
        assert WebhookEndpoint.objects.get(url=url).secret == "whsec_cli_secret"
    with pytest.raises(CommandError, match="starts with whsec_"):
        call_command("billing_webhook_endpoint", "--secret", "not-a-secret")
    settings.STRIPE_LIVE_MODE = True
    with pytest.raises(CommandError, match="dj-stripe admin"):
        call_command("billing_webhook_endpoint", "--secret", "whsec_cli_secret")


def test_seed_demo_is_idempotent(user_a):
    from io import StringIO

    from django.apps import apps

    config = apps.get_app_config("billing")
    outputs = []
    for _ in range(2):
        out = StringIO()
        config.seed_demo(trader=user_a, stdout=out)
        outputs.append(out.getvalue())
    with tenant(user_a.pk):
        subscription = Subscription.objects.get(user=user_a)
        # One Pro trial, granted by the first run and kept (not restarted) by the second; no AI usage is
        # invented: the demo trader's queries are the ones actually asked.
        assert (subscription.plan, subscription.status) == (PRO.code, SubscriptionStatus.TRIALING)
        assert subscription.is_local_trial
        assert not UsageRecord.objects.filter(user=user_a).exists()
    assert outputs[0].count("Pro trial") == outputs[1].count("Pro trial") == 1
    assert outputs[0] == outputs[1]
