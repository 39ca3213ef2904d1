"""Celery tasks: thin wrappers that take ids and call services. Each is safe to run again (acks_late and
reject_on_worker_lost are on, so the task of a killed worker is delivered again): a run resumes after its
last recorded action, a delivery is attempted only while pending."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from automation import services

RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 1, "retry_backoff_max": 30,
         "max_retries": 20}


def webhook_retry_countdown(retries: int) -> int:
    """Seconds before the next attempt after `retries` failed retries: base, 2x base, 4x base ... (capped)."""
    base = int(getattr(settings, "AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS", 30))
    return min(base * 2**retries, 6 * 3600)


@shared_task(name="automation.run_execute", **RETRY)
def run_execute_task(run_id: int, user_id: int) -> str:
    run = services.run_execute(run_id=run_id, user_id=user_id)
    return run.status if run is not None else "missing"


@shared_task(name="automation.runs_drain", **RETRY)
def runs_drain_task(slot: int) -> int:
    return services.runs_drain(slot=slot)


@shared_task(name="automation.runs_sweep")
def runs_sweep_task() -> int:
    return services.runs_sweep()


@shared_task(name="automation.webhook_deliver", bind=True, **RETRY)
def webhook_deliver_task(self, delivery_id: int, user_id: int) -> str:
    # a database outage's retries count as attempts too; never more attempts than the task may retry
    attempts = min(int(getattr(settings, "AUTOMATION_WEBHOOK_MAX_ATTEMPTS", 6)), self.max_retries + 1)
    final = self.request.retries + 1 >= attempts
    outcome = services.webhook_delivery_attempt(delivery_id=delivery_id, user_id=user_id, final=final)
    if outcome == "retry" and not final:
        raise self.retry(countdown=webhook_retry_countdown(self.request.retries))
    return outcome


@shared_task(name="automation.schedules_due")
def schedules_due_task() -> int:
    return services.schedules_due()
