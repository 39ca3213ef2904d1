"""Daily snapshots for the equity curve: one beat task fans out one idempotent task per portfolio.

Each portfolio's task first fills days that have no snapshot from the stored daily candles (a history
just imported, a night the beat missed), then records the day that just ended.
"""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from core.rls import tenant
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_keys_all
from portfolios.services import snapshot_backfill, snapshot_take

BACKFILL_RETRY_SECONDS = 60
BACKFILL_RETRIES = 15


@shared_task(name="portfolios.snapshot_all")
def portfolio_snapshot_all(day: str | None = None) -> int:
    """Snapshot every portfolio as the close of `day` (default: the UTC day that just ended)."""
    day = day or (timezone.now() - timedelta(days=1)).date().isoformat()
    keys = portfolio_keys_all()
    for portfolio_id, user_id in keys:
        portfolio_snapshot.delay(portfolio_id=portfolio_id, user_id=user_id, day=day)
    return len(keys)


@shared_task(name="portfolios.snapshot")
def portfolio_snapshot(*, portfolio_id: int, user_id: int, day: str) -> int | None:
    """Idempotent: a second run for the same day keeps the first snapshot."""
    day = date.fromisoformat(day)
    with tenant(user_id):
        portfolio = Portfolio.objects.filter(pk=portfolio_id, user_id=user_id).first()
        if portfolio is None:
            return None
        snapshot_backfill(portfolio=portfolio, today=day)  # the days before `day` that have no close
        return snapshot_take(portfolio=portfolio, day=day).pk


@shared_task(name="portfolios.backfill", bind=True, max_retries=BACKFILL_RETRIES)
def portfolio_backfill(self, *, portfolio_id: int, user_id: int) -> int:
    """After an import (or the demo seed): draw the past equity curve from the stored candles.

    When days are missing and there are no candles for the holdings at all yet (the market feed has not
    stored them), it tries again a little later.
    """
    with tenant(user_id):
        portfolio = Portfolio.objects.filter(pk=portfolio_id, user_id=user_id).first()
        if portfolio is None:
            return 0
        result = snapshot_backfill(portfolio=portfolio)
    if (
        result.missing
        and not result.written
        and not result.candles
        and self.request.retries < BACKFILL_RETRIES
    ):
        raise self.retry(countdown=BACKFILL_RETRY_SECONDS)
    return result.written
