"""Browser: pricing without Stripe keys, then the billing page changes live when Stripe's webhook arrives."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from billing.models import Subscription
from billing.plans import PRO
from billing.services import webhook_endpoint_ensure_local
from billing.webhooks import webhook_event_process
from core.rls import tenant
from tests.billing import stripe_events
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "owner"])


def _wait_for_websocket(page, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate("() => window.nexusWsOpen === true"):
        assert time.monotonic() < deadline, "the page's WebSocket did not open"
        page.wait_for_timeout(50)


def test_pricing_then_billing_page_updates_live_when_the_trial_starts(page, asgi_server):
    user = UserFactory(email="billing-e2e@example.com")
    with tenant(user.pk):
        Subscription.objects.create(user=user, stripe_customer_id="cus_e2e")
    endpoint = webhook_endpoint_ensure_local(secret=settings.STRIPE_WEBHOOK_SECRET, base_url=asgi_server.url)
    page.add_init_script(
        "document.addEventListener('htmx:wsOpen', function () { window.nexusWsOpen = true; });"
    )

    page.goto("/pricing/")
    expect(page.get_by_role("heading", name="Pricing")).to_be_visible()
    expect(page.get_by_text("Payments are not configured on this server yet")).to_be_visible()
    expect(page.locator("[data-plan=pro]")).to_contain_text("$29")

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.locator("#id_password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    page.get_by_role("navigation", name="Primary").get_by_role("link", name="Billing").click()
    expect(page.get_by_test_id("current-plan")).to_have_text("Free")
    _wait_for_websocket(page)

    now = int(time.time())
    subscription = stripe_events.subscription(
        sub_id="sub_e2e",
        customer_id="cus_e2e",
        status="trialing",
        plan=PRO,
        created=now,
        trial_end=now + 14 * 86400,
    )
    event = stripe_events.event(type="customer.subscription.created", obj=subscription, created=now)
    body = json.dumps(event).encode()
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_events.sign(body, secret=endpoint.secret),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200
    # A thread of this process plays the Celery worker (the endpoint stored the event and queued it);
    # not this thread, where Playwright runs an event loop.
    outcomes: list[str] = []

    def work() -> None:
        try:
            outcomes.append(webhook_event_process(event_id=event["id"]))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert outcomes == ["subscription trialing"]

    expect(page.get_by_test_id("current-plan")).to_have_text("Pro", timeout=5000)
    expect(page.get_by_test_id("subscription-status")).to_have_text("Trial")
    expect(page.get_by_test_id("trial-days-left")).to_have_text("14 days of trial left")
    expect(page.locator("#toasts .toast")).to_contain_text("Your Pro trial has started")
