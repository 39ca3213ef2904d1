"""Event alerts: trading's signals (order filled, execution blocked, venue degraded) fire them once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from alerts.choices import AlertKind, AlertState
from alerts.models import Alert, AlertFiring
from alerts.services import alert_create
from core.models import Notification
from core.rls import system_context, tenant
from trading.events import executions_blocked, orders_filled, venue_degraded


def _firings() -> list[tuple[int, str]]:
    with system_context(reason="test"):
        return list(AlertFiring.objects.order_by("pk").values_list("user_id", "message"))


def _fill(user, order_id="7f1c"):
    orders_filled.send(
        sender=None,
        fills=[
            {
                "order_id": order_id,
                "user_id": user.pk,
                "symbol": "BTC/USDT",
                "side": "buy",
                "quantity": Decimal("0.50000"),
                "price": Decimal("23140.50"),
            }
        ],
    )


def test_order_filled_fires_the_traders_alert_once_even_if_the_signal_repeats(user_a, user_b, db):
    alert = alert_create(
        user=user_a,
        kind=AlertKind.ORDER_FILLED,
        repeat=True,
        cooldown=timedelta(0),
        note="check the fill price",
    )
    _fill(user_a)
    _fill(user_a)
    _fill(user_b)  # has no alert: nothing
    assert _firings() == [
        (user_a.pk, "Order filled: bought 0.5 BTC/USDT at 23140.5. Note: check the fill price"),
    ]
    with tenant(user_a.pk):
        notification = Notification.objects.get()
        assert (notification.kind, notification.link) == ("alert.order_filled", "/trading/orders/history/")
        # In-app is off by default for this kind: trading already shows every fill there.
        assert list(notification.deliveries.values_list("channel", flat=True)) == ["email"]
        assert Alert.objects.get(pk=alert.pk).state == AlertState.TRIGGERED
    _fill(user_a, order_id="8a2d")  # another order, cooldown 0: fires again
    assert len(_firings()) == 2


def test_a_one_shot_event_alert_fires_for_the_next_event_only(user_a, db):
    alert_create(user=user_a, kind=AlertKind.BOT_BLOCKED)
    for blocked_id in (1, 2):
        executions_blocked.send(
            sender=None,
            blocks=[
                {
                    "blocked_id": blocked_id,
                    "user_id": user_a.pk,
                    "bot_id": 3,
                    "signal_id": 9,
                    "regime": "bearish",
                    "reason": "Buying is blocked in a bearish regime.",
                }
            ],
        )
    assert _firings() == [
        (
            user_a.pk,
            "A bot was blocked by the regime gatekeeper (bearish): Buying is blocked in a bearish regime.",
        ),
    ]


def test_venue_degraded_reaches_every_subscriber_of_that_venue(user_a, user_b, db):
    from tests.factories import UserFactory

    user_c = UserFactory()
    alert_create(user=user_a, kind=AlertKind.EXCHANGE_DEGRADED, venue="binance")
    alert_create(user=user_b, kind=AlertKind.EXCHANGE_DEGRADED)  # any venue
    alert_create(user=user_c, kind=AlertKind.EXCHANGE_DEGRADED, venue="kraken")
    venue_degraded.send(sender=None, venue="binance", retry_after_seconds=60)
    venue_degraded.send(sender=None, venue="binance", retry_after_seconds=60)
    assert sorted(user for user, _ in _firings()) == sorted([user_a.pk, user_b.pk])
    assert _firings()[0][1] == "binance is degraded: Nexus pauses calls to it for 60 s and retries after."
