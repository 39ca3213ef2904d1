"""Celery tasks: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from billing import services, webhooks


@shared_task(
    name="billing.process_webhook_event",
    acks_late=True,
    autoretry_for=(Exception,),
    max_retries=webhooks.MAX_ATTEMPTS,
    retry_backoff=5,
    retry_backoff_max=600,
)
def process_webhook_event_task(event_id: str) -> str:
    return webhooks.webhook_event_process(event_id=event_id)


@shared_task(name="billing.requeue_stale_events")
def requeue_stale_events_task() -> int:
    return webhooks.webhook_events_requeue_stale()


@shared_task(name="billing.report_usage")
def report_usage_task() -> dict[str, int]:
    return services.usage_report_pending()


@shared_task(name="billing.enforce_grace_periods")
def enforce_grace_periods_task() -> int:
    return services.grace_periods_enforce()
