"""The tick evaluator against the database: what fires, exactly once, and how state changes are seen."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from django.core import mail
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.changes import alert_changes_publish
from alerts.choices import AlertKind, AlertState
from alerts.crossing import crosses
from alerts.evaluator import Evaluator
from alerts.models import Alert, AlertFiring
from alerts.services import alert_create, alert_delete, alert_maintenance, alert_pause, alert_resume
from core.models import Notification, NotificationDelivery
from core.rls import system_context, tenant
from tests.alerts.conftest import COMMITTED, Ticker
from tests.factories import UserFactory


def _alert(user, instrument, kind=AlertKind.PRICE_ABOVE, threshold="105", **extra) -> Alert:
    """An alert written straight to the table (services are tested elsewhere; no current-price check)."""
    with tenant(user.pk):
        return Alert.objects.create(
            user=user, instrument=instrument, kind=kind, threshold=Decimal(threshold), **extra
        )


def _firings(alert=None) -> list[AlertFiring]:
    with system_context(reason="test"):
        firings = AlertFiring.objects.all()
        if alert is not None:
            firings = firings.filter(alert=alert)
        return list(firings)


def _state(alert) -> str:
    with system_context(reason="test"):
        return Alert.objects.get(pk=alert.pk).state


def test_a_crossing_fires_and_notifies_once(user_a, btc, btc_ticker, django_capture_on_commit_callbacks):
    alert = _alert(user_a, btc, threshold="105", note="take profit")
    evaluator = Evaluator()
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluator.process([btc_ticker.to("104")]) == []
        results = evaluator.process([btc_ticker.to("106.5")])
    assert [r.status for r in results] == ["fired"]
    firing = _firings(alert)[0]
    assert (firing.value, firing.previous_value) == (Decimal("106.5"), Decimal("104"))
    assert firing.message == "BTC/USDT rose above 105.00 (now 106.50). Note: take profit"
    assert _state(alert) == AlertState.TRIGGERED
    assert alert.pk not in evaluator.index  # a one-shot leaves the index
    with tenant(user_a.pk):
        notification = Notification.objects.get()
        assert notification.kind == "alert.price"
        assert notification.link == f"/alerts/{alert.pk}/"
        assert sorted(NotificationDelivery.objects.values_list("channel", "status")) == [
            ("email", "pending"),
            ("in_app", "sent"),
        ]
    # The rise continues: a triggered one-shot does not fire again.
    assert evaluator.process([btc_ticker.to("110")]) == []


def test_only_crossed_levels_fire_on_a_jump_and_a_fall(user_a, btc, btc_ticker):
    up = [_alert(user_a, btc, threshold=str(level)) for level in (101, 150, 199, 201)]
    down = _alert(user_a, btc, kind=AlertKind.PRICE_BELOW, threshold="150")
    cross = _alert(user_a, btc, kind=AlertKind.PRICE_CROSS, threshold="120")
    evaluator = Evaluator()
    evaluator.process([btc_ticker.to("100")])
    fired = evaluator.process([btc_ticker.to("200")])
    assert {r.firing.alert_id for r in fired} == {up[0].pk, up[1].pk, up[2].pk, cross.pk}
    fired = evaluator.process([btc_ticker.to("149.99")])
    assert {r.firing.alert_id for r in fired} == {down.pk}


def test_the_same_tick_processed_twice_records_one_firing_and_one_delivery_per_channel(
    user_a, btc, btc_ticker, django_capture_on_commit_callbacks
):
    # Re-arming with no cooldown: only the (alert, occurrence) constraint stands between a replay and a
    # second firing.
    alert = _alert(user_a, btc, threshold="105", repeat=True, cooldown=timedelta(0))
    first, second = Evaluator(), Evaluator()
    first.process([btc_ticker.to("100")])
    second.refresh()
    tick = btc_ticker.to("106")
    with django_capture_on_commit_callbacks(execute=True):
        assert [r.status for r in first.process([tick])] == ["fired"]
        assert [r.status for r in second.process([tick])] == ["duplicate"]
        assert [r.status for r in first.process([tick])] == ["duplicate"]
    assert len(_firings(alert)) == 1
    with tenant(user_a.pk):
        assert Notification.objects.count() == 1
        assert sorted(NotificationDelivery.objects.values_list("channel", flat=True)) == ["email", "in_app"]


@COMMITTED
def test_two_evaluators_racing_on_one_tick_fire_once():
    from marketdata.models import Instrument

    user = UserFactory()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        btc = Instrument.objects.create(symbol="BTC/USDT", base="BTC", quote="USDT")
    alerts = [_alert(user, btc, threshold=str(100 + n)) for n in range(1, 21)]
    repeating = _alert(user, btc, threshold="110.5", repeat=True, cooldown=timedelta(0))
    ticker = Ticker("BTC/USDT", "100")
    tick = ticker.to("125")
    evaluators = [Evaluator() for _ in range(4)]
    for evaluator in evaluators:
        evaluator.load()
    barrier = threading.Barrier(len(evaluators))
    results: list[str] = []

    def run(evaluator):
        try:
            barrier.wait()
            results.extend(r.status for r in evaluator.process([tick]))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(e,)) for e in evaluators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results.count("fired") == 21
    assert set(results) <= {"fired", "inactive", "duplicate"}
    firings = _firings()
    assert len(firings) == 21
    assert {f.alert_id for f in firings} == {a.pk for a in alerts} | {repeating.pk}
    with tenant(user.pk):
        assert Notification.objects.count() == 21
        assert NotificationDelivery.objects.filter(channel="email").count() == 21
    mail.outbox.clear()


def test_repeating_alert_rearms_after_its_cooldown(user_a, btc, btc_ticker):
    alert = _alert(
        user_a, btc, kind=AlertKind.PRICE_CROSS, threshold="105", repeat=True, cooldown=timedelta(minutes=10)
    )
    evaluator = Evaluator()
    now = timezone.now()
    evaluator.process([btc_ticker.to("100")], now=now)
    assert [r.status for r in evaluator.process([btc_ticker.to("106")], now=now)] == ["fired"]
    assert _state(alert) == AlertState.TRIGGERED
    # Back down through the level during the cooldown: nothing.
    assert evaluator.process([btc_ticker.to("104")], now=now + timedelta(minutes=5)) == []
    # Once the cooldown is over the sweep shows it armed, and the next crossing fires.
    assert alert_maintenance(now=now + timedelta(minutes=11)) == {"expired": 0, "rearmed": 1}
    assert _state(alert) == AlertState.ARMED
    fired = evaluator.process([btc_ticker.to("107")], now=now + timedelta(minutes=11))
    assert [r.status for r in fired] == ["fired"]
    assert len(_firings(alert)) == 2


def test_cooldown_is_enforced_even_before_the_sweep_runs(user_a, btc, btc_ticker):
    alert = _alert(
        user_a, btc, kind=AlertKind.PRICE_CROSS, threshold="105", repeat=True, cooldown=timedelta(minutes=10)
    )
    evaluator = Evaluator()
    now = timezone.now()
    evaluator.process([btc_ticker.to("100"), btc_ticker.to("106")], now=now)
    later = now + timedelta(minutes=10, seconds=1)
    assert [r.status for r in evaluator.process([btc_ticker.to("104")], now=later)] == ["fired"]
    assert _state(alert) == AlertState.TRIGGERED and len(_firings(alert)) == 2


def test_expired_alert_does_not_fire_and_is_marked_expired(user_a, btc, btc_ticker):
    now = timezone.now()
    expiring = _alert(user_a, btc, threshold="105", expires_at=now + timedelta(minutes=1))
    evaluator = Evaluator()
    evaluator.process([btc_ticker.to("100")], now=now)
    assert evaluator.process([btc_ticker.to("106")], now=now + timedelta(minutes=2)) == []
    assert alert_maintenance(now=now + timedelta(minutes=2)) == {"expired": 1, "rearmed": 0}
    assert _state(expiring) == AlertState.EXPIRED
    assert _firings() == []


def test_an_expired_alert_still_in_an_index_is_refused_by_the_database(user_a, btc, btc_ticker):
    now = timezone.now()
    alert = _alert(user_a, btc, threshold="105", expires_at=now + timedelta(minutes=1))
    evaluator = Evaluator(fire=lambda **kw: __import__("alerts.services").services.alert_fire(**kw))
    evaluator.process([btc_ticker.to("100")], now=now)
    entry = evaluator.index.get(alert.pk)
    entry.expires_at = None  # a stale index: the row decides
    results = evaluator.process([btc_ticker.to("106")], now=now + timedelta(minutes=2))
    assert [r.status for r in results] == ["inactive"]
    assert _state(alert) == AlertState.EXPIRED


def test_disabled_and_deleted_alerts_do_not_fire_and_changes_reach_a_loaded_evaluator(
    user_a, btc, btc_ticker, django_capture_on_commit_callbacks
):
    evaluator = Evaluator()
    evaluator.process([btc_ticker.to("100")])  # loaded before the alerts exist
    with django_capture_on_commit_callbacks(execute=True):
        paused = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="105")
        deleted = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="106")
        kept = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="107")
        alert_pause(user=user_a, alert=paused)
        alert_delete(user=user_a, alert=deleted)
    fired = evaluator.process([btc_ticker.to("110")])
    assert [r.firing.alert_id for r in fired] == [kept.pk]
    assert paused.pk not in evaluator.index and deleted.pk not in evaluator.index
    # Resuming puts it back; it fires on the next crossing.
    with django_capture_on_commit_callbacks(execute=True):
        alert_resume(user=user_a, alert=paused)
    evaluator.process([btc_ticker.to("100")])
    assert [r.firing.alert_id for r in evaluator.process([btc_ticker.to("105")])] == [paused.pk]


def test_a_lost_announcement_is_repaired_when_the_index_entry_disagrees_with_the_row(user_a, btc, btc_ticker):
    alert = _alert(user_a, btc, threshold="105")
    evaluator = Evaluator()
    evaluator.process([btc_ticker.to("100")])
    with tenant(user_a.pk):
        Alert.objects.filter(pk=alert.pk).update(threshold=Decimal("200"))  # no announcement
    assert [r.status for r in evaluator.process([btc_ticker.to("106")])] == ["not_crossed"]
    assert evaluator.index.get(alert.pk).threshold == Decimal("200")
    alert_changes_publish([alert.pk])  # announcements are ids only: repeating one is harmless
    assert evaluator.process([btc_ticker.to("150")]) == []


def test_percent_move_over_a_window(user_a, btc):
    fall = _alert(user_a, btc, kind=AlertKind.PERCENT_MOVE, threshold="-5", window_minutes=60)
    rise = _alert(user_a, btc, kind=AlertKind.PERCENT_MOVE, threshold="3", window_minutes=5)
    ticker = Ticker("BTC/USDT", "100")
    evaluator = Evaluator(candles=lambda symbol, minutes: [])
    fired = []
    # Flat for an hour, then a slide of 1% a minute.
    for _ in range(61):
        fired += evaluator.process([ticker.to("100", after=timedelta(minutes=1))])
    assert fired == []
    for price in ("99", "98", "97", "96"):
        fired += evaluator.process([ticker.to(price, after=timedelta(minutes=1))])
    assert fired == []  # -4% over the hour
    fired += evaluator.process([ticker.to("94.9", after=timedelta(minutes=1))])
    assert [(r.firing.alert_id, r.firing.value) for r in fired] == [(fall.pk, Decimal("-5.1"))]
    assert _firings(fall)[0].message == "BTC/USDT moved -5.10% in 1 hour (alert at -5%)."
    # Five minutes ago it was 99: back to 102 is a 3% rise inside the window.
    fired = evaluator.process([ticker.to("102", after=timedelta(minutes=1))])
    assert [(r.firing.alert_id, r.firing.value) for r in fired] == [(rise.pk, Decimal("3.0303"))]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    levels=st.lists(
        st.tuples(
            st.sampled_from([AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.PRICE_CROSS]),
            st.integers(min_value=1, max_value=40),
        ),
        max_size=12,
    ),
    path=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=12),
)
def test_fired_alerts_equal_brute_force_with_one_shot_state(user_a, btc, levels, path):
    """With the database in the loop: each one-shot alert fires at the first step that crosses it."""
    with system_context(reason="test: clean slate per example"):
        AlertFiring.objects.all().delete()
        Alert.objects.all().delete()
    alerts = [_alert(user_a, btc, kind=kind, threshold=str(level)) for kind, level in levels]
    evaluator = Evaluator()
    ticker = Ticker("BTC/USDT", str(path[0]))
    expected: dict[int, int] = {}
    for step, (p0, p1) in enumerate(zip(path, path[1:], strict=False)):
        for alert, (kind, level) in zip(alerts, levels, strict=True):
            dirs = {"price_above": ["up"], "price_below": ["down"], "price_cross": ["up", "down"]}[kind]
            if alert.pk not in expected and any(
                crosses(d, Decimal(level), Decimal(p0), Decimal(p1)) for d in dirs
            ):
                expected[alert.pk] = step
        fired = evaluator.process([ticker.to(str(p1))])
        assert {r.firing.alert_id for r in fired} == {pk for pk, s in expected.items() if s == step}
