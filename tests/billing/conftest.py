from __future__ import annotations

import json
import time

import pytest
import stripe
from django.conf import settings

from billing.catalog import plans_sync
from billing.services import webhook_endpoint_ensure_local
from tests.billing import stripe_events
from tests.billing.stripe_fake import FakeStripe

TEST_SECRET_KEY = "sk_test_NexusBillingSuite0123456789abcdef"


@pytest.fixture
def stripe_http(monkeypatch, settings) -> FakeStripe:
    """Stripe reachable (a test secret key) and every HTTP call to it recorded and answered."""
    fake = FakeStripe()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    settings.STRIPE_TEST_SECRET_KEY = TEST_SECRET_KEY
    return fake


@pytest.fixture
def synced_plans(stripe_http, db) -> FakeStripe:
    """`billing_sync_plans` has run: Stripe has our catalog and dj-stripe mirrors it."""
    plans_sync()
    return stripe_http


@pytest.fixture
def webhook_endpoint(db):
    return webhook_endpoint_ensure_local(secret=settings.STRIPE_WEBHOOK_SECRET, base_url="http://testserver")


class WebhookPoster:
    def __init__(self, endpoint) -> None:
        self.endpoint = endpoint
        self.path = f"/stripe/webhook/{endpoint.djstripe_uuid}/"

    def signed(
        self, payload: dict, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        body = json.dumps(payload).encode()
        return body, stripe_events.sign(body, secret=secret or self.endpoint.secret, timestamp=timestamp)

    def post(self, client, payload: dict, **sign_kwargs):
        body, signature = self.signed(payload, **sign_kwargs)
        return client.generic(
            "POST", self.path, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )


@pytest.fixture
def webhooks(webhook_endpoint) -> WebhookPoster:
    return WebhookPoster(webhook_endpoint)


@pytest.fixture
def clock():
    """Stripe times (unix seconds) for a scenario, starting a little in the past."""

    class Clock:
        start = int(time.time()) - 3600

        def at(self, seconds: int) -> int:
            return self.start + seconds

    return Clock()
