from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from marketdata.services import ticks_trim


@shared_task(name="marketdata.trim_ticks")
def trim_ticks() -> int:
    """Retention of the UNLOGGED tick table: ticks older than MARKET_TICK_RETENTION_HOURS go."""
    return ticks_trim(older_than=timezone.now() - timedelta(hours=settings.MARKET_TICK_RETENTION_HOURS))
