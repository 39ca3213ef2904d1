"""Daily snapshots for the equity curve: one beat task fans out one idempotent task per portfolio."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from core.rls import tenant
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_keys_all
from portfolios.services import snapshot_take


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
    with tenant(user_id):
        portfolio = Portfolio.objects.filter(pk=portfolio_id, user_id=user_id).first()
        if portfolio is None:
            return None
        return snapshot_take(portfolio=portfolio, day=date.fromisoformat(day)).pk
