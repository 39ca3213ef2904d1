"""The demo seed publishes theses whose levels come from the replayed real data: once the feed has stored
those candles, one hits its target, one its stop, one expires and one stays open."""

from __future__ import annotations

import io
from datetime import timedelta

from django.utils import timezone

from core.rls import system_context, tenant
from marketdata.models import Candle
from marketdata.selectors import replay_bar_list
from research.demo import research_demo_seed
from research.models import Note, PublishedNote
from research.tasks import outcomes_refresh_task
from tests.factories import SubscriptionFactory


def _store_replayed_candles(instrument) -> None:
    """What the replay feed's backfill stores when it starts: the recording's bars for the past days."""
    now = timezone.now()
    bars = replay_bar_list(symbol=instrument.symbol, start=now - timedelta(days=4), end=now)
    with system_context(reason="tests: the feed's backfill"):
        Candle.objects.bulk_create(
            [Candle(instrument=instrument, open_time=b.open_time, open=b.open, high=b.high, low=b.low,
                    close=b.close, volume=b.volume) for b in bars],
            batch_size=5000,
        )


def test_the_demo_theses_resolve_on_the_replayed_market(author, btc):
    SubscriptionFactory(user=author)
    _store_replayed_candles(btc)
    out = io.StringIO()
    with tenant(author.pk):
        research_demo_seed(trader=author, stdout=out)
        research_demo_seed(trader=author, stdout=out)  # idempotent
        assert Note.objects.filter(user_id=author.pk).count() == 5
    assert "4 published theses" in out.getvalue()
    outcomes_refresh_task.apply().get()
    outcomes = sorted(PublishedNote.objects.values_list("outcome", flat=True))
    assert outcomes == ["expired", "open", "stop_hit", "target_hit"]
