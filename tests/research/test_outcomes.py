"""Thesis outcomes on the real March 2023 BTC/USDT candles (shared/data/market).

Published 11 March 00:00 UTC near 20,150: BTC ran to 22,082 on the 12th without trading below 19,770
first, so a long aiming at 22,000 with a stop at 19,500 hit its target, and a short with its stop at
21,000 was stopped out. A long published 4 March aiming at 23,000 (stop 21,900) by 6 March saw only
22,160 to 22,652: expired. A long published 20 March aiming at 30,000 (stop 26,000) by 30 April is still
open when the data ends on 21 March.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.rls import tenant
from research.models import PublishedNote
from research.selectors import author_track_record
from research.tasks import outcomes_refresh_task
from tests.factories import SubscriptionFactory
from tests.research.conftest import client_for, load_march_2023, publish, write

PUBLISHED = datetime(2023, 3, 11, tzinfo=UTC)


def _thesis(author, title, *, direction, entry, target, stop, horizon, published):
    note = write(author, title=title, body=title, symbols=["BTC/USDT"], direction=direction,
                 thesis_symbol="BTC/USDT", entry=entry, target=target, stop=stop, horizon=horizon)
    publish(author, note, now=published)
    return note


@pytest.fixture
def theses(author, btc):
    SubscriptionFactory(user=author)  # four published notes: more than the Free plan allows
    load_march_2023(btc)
    return {
        "target": _thesis(author, "Long to 22k", direction="long", entry="20150", target="22000", stop="19500",
                          horizon=date(2023, 3, 15), published=PUBLISHED),
        "stop": _thesis(author, "Short to 19k", direction="short", entry="20150", target="19000", stop="21000",
                        horizon=date(2023, 3, 15), published=PUBLISHED),
        "expired": _thesis(author, "Long to 23k", direction="long", entry="22350", target="23000", stop="21900",
                           horizon=date(2023, 3, 6), published=datetime(2023, 3, 4, tzinfo=UTC)),
        "open": _thesis(author, "Long to 30k", direction="long", entry="27970", target="30000", stop="26000",
                        horizon=date(2023, 4, 30), published=datetime(2023, 3, 20, tzinfo=UTC)),
    }


def _outcome(note):
    return PublishedNote.objects.get(note_id=note.pk)


def test_the_beat_task_computes_each_outcome_from_the_stored_candles(theses, author, reader):
    counts = outcomes_refresh_task.apply().get()
    assert counts == {"target_hit": 1, "stop_hit": 1, "expired": 1, "open": 1}
    target, stop = _outcome(theses["target"]), _outcome(theses["stop"])
    assert target.outcome == "target_hit" and target.outcome_price == Decimal("22000")
    assert stop.outcome == "stop_hit" and stop.outcome_price == Decimal("21000")
    # Both levels were crossed in the same rally on 12 March: the first candle to reach 21,000 stopped
    # the short before the long's target at 22,000.
    assert stop.outcome_at < target.outcome_at
    assert target.outcome_at.date() == date(2023, 3, 12)
    assert _outcome(theses["expired"]).outcome == "expired"
    assert _outcome(theses["open"]).outcome == "open"

    record = author_track_record(author_id=author.pk)
    assert (record.theses, record.target_hit, record.stop_hit, record.expired, record.open) == (4, 1, 1, 1, 1)
    assert record.hit_rate == Decimal("33.3")
    page = client_for(reader).get(f"/research/authors/{author.pk}/").content.decode()
    assert "33.3%" in page and "Target hit" in page and "Stop hit" in page and "Expired" in page
    detail = client_for(reader).get(f"/research/community/{theses['target'].pk}/").content.decode()
    assert "Target hit" in detail and "2023-03-12" in detail


def test_a_decided_outcome_never_changes_and_open_ones_are_rechecked(theses):
    outcomes_refresh_task.apply().get()
    again = outcomes_refresh_task.apply().get()
    assert again == {"open": 1}  # only the open thesis is looked at again
    assert _outcome(theses["target"]).outcome == "target_hit"


def test_no_candles_no_verdict(author, btc):
    note = _thesis(author, "Nothing stored", direction="long", entry="20150", target="22000", stop="19500",
                   horizon=date(2023, 3, 15), published=PUBLISHED)
    outcomes_refresh_task.apply().get()
    assert _outcome(note).outcome == "open"  # the horizon passed, but no candle says what happened


def test_a_thesis_whose_horizon_has_passed_cannot_be_published(author, btc):
    note = write(author, title="Late", body="x", direction="long", thesis_symbol="BTC/USDT", entry="1",
                 target="2", stop="0.5", horizon=date(2023, 3, 1))
    with pytest.raises(Exception, match="horizon has passed"):
        publish(author, note)
    with tenant(author.pk):
        assert not type(note).objects.get(pk=note.pk).is_published
