"""Stripe webhook backlog, read from the database at scrape time (registered by BillingConfig.ready()):
`nexus_billing_webhook_backlog` (events stored but not processed yet) and
`nexus_billing_webhook_oldest_unprocessed_seconds` (age of the oldest of them)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BACKLOG = ("nexus_billing_webhook_backlog", "Stripe events received but not processed yet.")
OLDEST = ("nexus_billing_webhook_oldest_unprocessed_seconds", "Age of the oldest unprocessed Stripe event.")


class WebhookBacklogCollector(Collector):
    def describe(self):
        yield GaugeMetricFamily(*BACKLOG)
        yield GaugeMetricFamily(*OLDEST)

    def collect(self):
        from django.db import DatabaseError
        from django.db.models import Count, Min
        from django.utils import timezone

        from billing.models import WebhookEvent
        from core.rls import system_context

        try:
            with system_context(reason="metrics: the webhook backlog"):
                row = WebhookEvent.objects.filter(processed_at__isnull=True).aggregate(
                    n=Count("id"), oldest=Min("received_at")
                )
        except DatabaseError:
            return  # no sample: the database is down, which its own alert reports
        oldest = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0
        yield GaugeMetricFamily(*BACKLOG, value=row["n"])
        yield GaugeMetricFamily(*OLDEST, value=oldest)
