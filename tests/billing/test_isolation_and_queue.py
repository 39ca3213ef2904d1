"""Billing's tenant tables are under row-level security; webhook processing goes through the real
Celery broker (Redis) to a real worker."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from billing.models import Invoice, Subscription, UsageRecord, WebhookEvent
from billing.services import entitlement_consume
from core.rls import system_context, tenant
from tests.billing import stripe_events
from tests.factories import UserFactory

COMMITTED = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.mark.django_db
def test_billing_rows_are_invisible_to_other_tenants(user_a, user_b):
    with tenant(user_a.pk):
        Subscription.objects.create(user=user_a, stripe_customer_id="cus_secret", plan="pro", status="active")
    entitlement_consume(user=user_a, idempotency_key="iso-1")
    with tenant(user_b.pk):
        assert not Subscription.objects.exists()
        assert not UsageRecord.objects.exists()
        assert not Invoice.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_subscription")
        assert cursor.fetchone()[0] == 0  # no tenant, no rows
    with system_context(reason="test"):
        assert Subscription.objects.get().stripe_customer_id == "cus_secret"


@pytest.mark.django_db
def test_billing_tables_are_classified_and_stripe_data_is_system_only():
    from core.tables import TABLES, TableClass

    for table in (
        "billing_subscription",
        "billing_invoice",
        "billing_usagerecord",
        "billing_meterreport",
        "billing_checkoutsession",
        "billing_appliedevent",
    ):
        assert TABLES[table].kind is TableClass.TENANT, table
    assert TABLES["billing_webhookevent"].kind is TableClass.SYSTEM
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE 'djstripe%%' AND relkind = 'r'")
        djstripe = [name for (name,) in cursor.fetchall()]
    assert djstripe and all(TABLES[name].kind is TableClass.SYSTEM for name in djstripe)
    call_command("rls_audit", verbosity=0)


@COMMITTED
def test_the_endpoint_queues_processing_through_redis_to_a_real_worker(settings):
    from celery.contrib.testing.worker import start_worker

    from billing.services import webhook_endpoint_ensure_local
    from config.celery import app

    user = UserFactory()
    with tenant(user.pk):
        Subscription.objects.create(user=user, stripe_customer_id="cus_queue")
    endpoint = webhook_endpoint_ensure_local(
        secret=settings.STRIPE_WEBHOOK_SECRET, base_url="http://testserver"
    )
    customer = stripe_events.customer(
        customer_id="cus_queue", user_id=user.pk, email=user.email, default_payment_method="pm_q"
    )
    event = stripe_events.event(type="customer.updated", obj=customer, created=int(time.time()))
    body = json.dumps(event).encode()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        response = Client().generic(
            "POST",
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=stripe_events.sign(body, secret=endpoint.secret),
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with system_context(reason="test"):
                if WebhookEvent.objects.filter(stripe_id=event["id"], processed_at__isnull=False).exists():
                    break
            time.sleep(0.05)
    with system_context(reason="test"):
        stored = WebhookEvent.objects.get(stripe_id=event["id"])
    assert stored.outcome == "customer updated"
    with tenant(user.pk):
        assert Subscription.objects.get(user=user).has_payment_method is True


@pytest.mark.django_db
def test_beat_schedules_billing_jobs():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in ("billing.report_usage", "billing.enforce_grace_periods", "billing.requeue_stale_events"):
        assert task in scheduled and task in app.tasks
    assert "billing.process_webhook_event" in app.tasks
