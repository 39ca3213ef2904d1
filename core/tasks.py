"""core's periodic tasks."""

from __future__ import annotations

from celery import shared_task

from core.idempotency import idempotency_records_purge


@shared_task(name="core.idempotency_purge")
def idempotency_purge_task() -> int:
    return idempotency_records_purge()
