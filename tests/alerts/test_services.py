"""Creating and changing alerts: bad input gets a clear error naming the field, nothing is half-written."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.choices import AlertKind, AlertState
from alerts.models import Alert
from alerts.services import (
    alert_create,
    alert_pause,
    alert_resume,
    alert_update,
)
from billing.plans import FREE
from billing.services import PlanLimitExceeded
from core.errors import DomainError
from core.rls import system_context, tenant
from marketdata.models import Quote

FREE_ALERTS = FREE.limit("alerts")


def _count(user) -> int:
    with tenant(user.pk):
        return Alert.objects.count()


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"threshold": "-5"}, "threshold", "The price must be greater than zero."),
        ({"threshold": "0"}, "threshold", "The price must be greater than zero."),
        ({"threshold": "abc"}, "threshold", "A price must be a number."),
        ({"threshold": ""}, "threshold", "Enter a price."),
        ({"threshold": "1e30"}, "threshold", "A price is too large."),
        ({"symbol": "NOPE/USDT"}, "symbol", "Unknown instrument 'NOPE/USDT'. Known instruments: BTC/USDT."),
        ({"symbol": ""}, "symbol", "Choose a market, e.g. BTC/USDT."),
        ({"kind": "moon"}, "kind", "Choose what the alert watches."),
        (
            {"cooldown": timedelta(minutes=-1)},
            "cooldown",
            "The cooldown must be between 0 minutes and 30 days.",
        ),
        ({"expires_at": "past"}, "expires_at", "The expiry must be in the future."),
        ({"note": "x" * 201}, "note", "Keep the note under 200 characters."),
    ],
)
def test_bad_price_alert_input_is_refused_with_a_clear_message(user_a, btc, kwargs, field, message):
    if kwargs.get("expires_at") == "past":
        kwargs["expires_at"] = timezone.now() - timedelta(minutes=1)
    arguments = {"kind": AlertKind.PRICE_ABOVE, "symbol": "BTC/USDT", "threshold": "100", **kwargs}
    with pytest.raises(DomainError) as error:
        alert_create(user=user_a, **arguments)
    assert (error.value.field, str(error.value)) == (field, message)
    assert _count(user_a) == 0


@pytest.mark.parametrize(
    ("threshold", "window", "field", "message"),
    [
        ("0", 60, "threshold", "Enter a move other than 0%, e.g. -5 for a 5% fall."),
        ("-100", 60, "threshold", "A move must be above -100% and at most 1000%."),
        ("5", None, "window_minutes", "Choose a window for the move."),
        ("5", 7, "window_minutes", "Choose a window for the move."),
    ],
)
def test_bad_percent_move_input(user_a, btc, threshold, window, field, message):
    with pytest.raises(DomainError) as error:
        alert_create(
            user=user_a,
            kind=AlertKind.PERCENT_MOVE,
            symbol="BTC/USDT",
            threshold=threshold,
            window_minutes=window,
        )
    assert (error.value.field, str(error.value)) == (field, message)


def test_symbol_accepts_the_url_form_and_levels_are_kept_exactly(user_a, btc):
    alert = alert_create(
        user=user_a, kind=AlertKind.PRICE_BELOW, symbol="btc-usdt", threshold="23140.12345678"
    )
    assert alert.instrument == btc
    assert alert.threshold == Decimal("23140.12345678")
    assert alert.state == AlertState.ARMED
    assert str(alert) == "BTC/USDT falls below 23,140.12"


def test_a_level_the_price_is_already_past_is_refused(user_a, btc):
    now = timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.create(instrument=btc, price=Decimal("23000"), source="replay", at=now, updated_at=now)
    with pytest.raises(
        DomainError, match=r"BTC/USDT is already at 23,000.00; an alert above needs a higher level"
    ):
        alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="22999")
    with pytest.raises(DomainError, match="an alert below needs a lower level"):
        alert_create(user=user_a, kind=AlertKind.PRICE_BELOW, symbol="BTC/USDT", threshold="23000")
    assert alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="23000.01")


def test_over_the_plan_limit_is_refused_and_pausing_frees_a_slot(user_a, user_b, btc):
    alerts = [
        alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold=str(100 + n))
        for n in range(FREE_ALERTS)
    ]
    with pytest.raises(
        PlanLimitExceeded,
        match=f"Your Free plan allows {FREE_ALERTS} price alerts and you have {FREE_ALERTS}. Upgrade to Pro",
    ):
        alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="500")
    assert _count(user_a) == FREE_ALERTS
    # Another trader's alerts do not count against this one's plan.
    assert alert_create(user=user_b, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="500")
    alert_pause(user=user_a, alert=alerts[0])
    extra = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="500")
    # Resuming needs a slot too.
    with pytest.raises(PlanLimitExceeded):
        alert_resume(user=user_a, alert=alerts[0])
    alert_pause(user=user_a, alert=extra)
    assert alert_resume(user=user_a, alert=alerts[0]).state == AlertState.ARMED


def test_editing_rearms_and_resume_refuses_an_expired_alert(user_a, btc):
    alert = alert_create(
        user=user_a,
        kind=AlertKind.PRICE_ABOVE,
        symbol="BTC/USDT",
        threshold="100",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    with tenant(user_a.pk):
        Alert.objects.filter(pk=alert.pk).update(state=AlertState.EXPIRED, expires_at=timezone.now())
        alert.refresh_from_db()
    with pytest.raises(DomainError, match="expired; edit it to set a new expiry"):
        alert_resume(user=user_a, alert=alert)
    alert = alert_update(
        user=user_a,
        alert=alert,
        kind=AlertKind.PRICE_CROSS,
        symbol="BTC/USDT",
        threshold="120",
        repeat=True,
        cooldown=timedelta(minutes=5),
    )
    assert (alert.state, alert.kind, alert.threshold, alert.expires_at) == (
        AlertState.ARMED,
        AlertKind.PRICE_CROSS,
        Decimal("120"),
        None,
    )


def test_another_users_alert_cannot_be_changed(user_a, user_b, btc):
    alert = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="100")
    with pytest.raises(DomainError, match="No such alert"):
        alert_pause(user=user_b, alert=alert)
    with tenant(user_a.pk):
        assert Alert.objects.get(pk=alert.pk).state == AlertState.ARMED


def test_event_alerts_need_no_market(user_a, db):
    alert = alert_create(user=user_a, kind=AlertKind.EXCHANGE_DEGRADED, venue=" Binance ", note="check keys")
    assert (alert.instrument, alert.threshold, alert.venue) == (None, None, "binance")
    assert str(alert) == "Exchange connection degraded (binance)"
