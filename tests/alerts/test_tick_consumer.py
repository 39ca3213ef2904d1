"""The `alerts` tick consumer across restarts: a tick published while it was down fires when it starts, and
a tick it handled but did not acknowledge before dying is handled again by the next process without
firing twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from alerts.choices import AlertKind
from alerts.models import Alert, AlertFiring
from alerts.services import alert_fire
from core.models import Notification
from core.rls import system_context, tenant
from tests.ticks import pending, publish, started


class Killed(BaseException):
    """The process dies here: nothing after it runs."""


class DiesBeforeAcknowledging(redis.Redis):
    def xack(self, *args, **kwargs):
        raise Killed


def _alert(user, instrument, **extra) -> Alert:
    with tenant(user.pk):
        return Alert.objects.create(
            user=user, instrument=instrument, kind=AlertKind.PRICE_ABOVE, threshold=Decimal("105"), **extra
        )


def _firings(alert) -> list[AlertFiring]:
    with system_context(reason="test"):
        return list(AlertFiring.objects.filter(alert=alert))


def test_a_crossing_published_while_the_consumer_was_down_fires_when_it_starts(user_a, btc, btc_ticker):
    alert = _alert(user_a, btc)
    started("alerts", consumer="host-100")  # ran before, then stopped: the group keeps its place
    publish([btc_ticker.to("104")], [btc_ticker.to("106.5")])

    restarted = started("alerts", consumer="host-101")
    assert restarted.run(max_entries=2, timeout=10) == 2
    (firing,) = _firings(alert)
    assert (firing.previous_value, firing.value) == (Decimal("104"), Decimal("106.5"))
    assert pending("alerts") == 0


def test_a_tick_handled_again_after_the_consumer_died_before_acknowledging_fires_once(user_a, btc, btc_ticker):
    # Re-arming at once, so the second process's index still holds the alert and the tick reaches
    # alert_fire again: only the (alert, occurrence) constraint stands between it and a second firing.
    alert = _alert(user_a, btc, repeat=True, cooldown=timedelta(0))
    dying = started(
        "alerts", consumer="host-100", client=DiesBeforeAcknowledging.from_url(settings.REDIS_URL)
    )
    publish([btc_ticker.to("104")], [btc_ticker.to("106.5")])
    with pytest.raises(Killed):
        dying.process(block_ms=0)  # evaluated both ticks, fired, died before XACK
    assert len(_firings(alert)) == 1
    assert pending("alerts") == 2

    next_process = started("alerts", consumer="host-101", claim_idle_ms=0)
    outcomes = []

    def fire(**kwargs):
        result = alert_fire(**kwargs)
        outcomes.append(result.status)
        return result

    next_process.handler.evaluator._fire = fire
    assert next_process.run(max_entries=2, timeout=10) == 2
    assert outcomes == ["duplicate"]  # the crossing reached the database again and was refused there
    assert len(_firings(alert)) == 1
    with tenant(user_a.pk):
        assert Notification.objects.count() == 1
    assert pending("alerts") == 0

    publish([btc_ticker.to("104")], [btc_ticker.to("107")])  # a new crossing fires again
    assert next_process.run(max_entries=2, timeout=10) == 2
    assert len(_firings(alert)) == 2
