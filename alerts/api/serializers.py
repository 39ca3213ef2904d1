"""Alert API shapes. Validation of what an alert may watch stays in alerts/services.py (`_clean`); these
only check types and bounds, as the alert form does."""

from __future__ import annotations

from datetime import timedelta

from rest_framework import serializers

from alerts.choices import WINDOW_CHOICES, AlertKind, AlertState, PnlUnit
from core.api import DB_ID_MAX, StrictCharField

MAX_COOLDOWN_MINUTES = 43_200  # 30 days, as the form and alerts.services.MAX_COOLDOWN


class AlertInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    symbol = StrictCharField(
        max_length=32, required=False, allow_blank=True, default="", help_text="Market alerts: e.g. BTC/USDT."
    )
    threshold = serializers.DecimalField(
        max_digits=24,
        decimal_places=8,
        required=False,
        allow_null=True,
        default=None,
        help_text="A price, a signed percent for percent moves (-5 for a 5% fall), a portfolio value or P&L.",
    )
    portfolio_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=DB_ID_MAX,
        help_text="Portfolio and position alerts.",
    )
    pnl_unit = serializers.ChoiceField(choices=PnlUnit.choices, required=False, allow_blank=True, default="")
    window_minutes = serializers.ChoiceField(
        choices=WINDOW_CHOICES, required=False, allow_null=True, default=None, help_text="Percent moves."
    )
    venue = StrictCharField(
        max_length=32, required=False, allow_blank=True, default="", help_text="Empty: any."
    )
    repeat = serializers.BooleanField(required=False, default=False)
    cooldown_minutes = serializers.IntegerField(
        min_value=0, max_value=MAX_COOLDOWN_MINUTES, required=False, default=15
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    note = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


def alert_input_values(alert) -> dict:
    """The alert as AlertInput's fields (what a PATCH starts from)."""
    return {
        "kind": alert.kind,
        "symbol": alert.instrument.symbol if alert.instrument_id else "",
        "threshold": alert.threshold,
        "portfolio_id": alert.portfolio_id,
        "pnl_unit": alert.pnl_unit,
        "window_minutes": alert.window_minutes,
        "venue": alert.venue,
        "repeat": alert.repeat,
        "cooldown_minutes": int(alert.cooldown.total_seconds() // 60),
        "expires_at": alert.expires_at,
        "note": alert.note,
    }


def cooldown_of(values: dict) -> timedelta:
    return timedelta(minutes=values["cooldown_minutes"])


class AlertOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    summary = serializers.CharField(help_text='What it watches, e.g. "BTC/USDT rises above 23,500.00".')
    state = serializers.ChoiceField(choices=AlertState.choices)
    symbol = serializers.SerializerMethodField()
    threshold = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    portfolio_id = serializers.IntegerField(allow_null=True)
    pnl_unit = serializers.CharField()
    window_minutes = serializers.IntegerField(allow_null=True)
    venue = serializers.CharField()
    repeat = serializers.BooleanField()
    cooldown_minutes = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()
    rearm_at = serializers.DateTimeField(allow_null=True)
    fired_count = serializers.IntegerField()
    last_fired_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_symbol(self, alert) -> str | None:
        return alert.instrument.symbol if alert.instrument_id else None

    def get_cooldown_minutes(self, alert) -> int:
        return int(alert.cooldown.total_seconds() // 60)


class FiringOutput(serializers.Serializer):
    id = serializers.IntegerField()
    alert_id = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    previous_value = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    message = serializers.CharField()
    fired_at = serializers.DateTimeField()


class AlertListFilter(serializers.Serializer):
    state = serializers.ChoiceField(choices=AlertState.choices, required=False, help_text="Only these.")
