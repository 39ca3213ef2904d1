from __future__ import annotations

from datetime import timedelta

from django import forms

from alerts.choices import WINDOW_CHOICES, AlertKind, PnlUnit
from alerts.models import Alert
from core.inputs import validate_utc_datetime
from portfolios.selectors import portfolio_list

# The service names fields as the model does; the form shows the cooldown in minutes.
SERVICE_TO_FORM_FIELD = {"cooldown": "cooldown_minutes"}


class AlertForm(forms.Form):
    kind = forms.ChoiceField(label="Alert when", choices=AlertKind.choices, initial=AlertKind.PRICE_ABOVE)
    symbol = forms.CharField(
        label="Market",
        required=False,
        max_length=32,
        widget=forms.TextInput(
            attrs={"list": "alert-symbols", "autocomplete": "off", "placeholder": "BTC/USDT"}
        ),
    )
    threshold = forms.DecimalField(
        label="Level",
        required=False,
        max_digits=24,
        decimal_places=8,
        help_text="A price, or for a percent move a signed percent (-5 for a 5% fall).",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    portfolio = forms.ModelChoiceField(
        label="Portfolio",
        required=False,
        queryset=None,
        empty_label="—",
        help_text="Portfolio value and position P&L alerts.",
    )
    pnl_unit = forms.ChoiceField(label="P&L in", required=False, choices=[("", "—"), *PnlUnit.choices])
    window_minutes = forms.TypedChoiceField(
        label="Over",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *WINDOW_CHOICES],
    )
    venue = forms.CharField(
        label="Exchange", required=False, max_length=32, help_text="Empty for any exchange."
    )
    repeat = forms.BooleanField(label="Re-arm after each firing", required=False)
    cooldown_minutes = forms.IntegerField(
        label="Cooldown (minutes)",
        min_value=0,
        max_value=43_200,
        initial=15,
        help_text="A re-arming alert stays quiet this long after it fires.",
    )
    expires_at = forms.DateTimeField(
        label="Expires (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        validators=[validate_utc_datetime],
    )
    note = forms.CharField(label="Note", required=False, max_length=200)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolio_list(user=user)

    @classmethod
    def for_alert(cls, alert: Alert, data=None, *, user) -> AlertForm:
        return cls(
            data,
            user=user,
            initial={
                "kind": alert.kind,
                "symbol": alert.instrument.symbol if alert.instrument else "",
                "threshold": alert.threshold.normalize() if alert.threshold is not None else None,
                "window_minutes": alert.window_minutes,
                "portfolio": alert.portfolio_id,
                "pnl_unit": alert.pnl_unit,
                "venue": alert.venue,
                "repeat": alert.repeat,
                "cooldown_minutes": int(alert.cooldown.total_seconds() // 60),
                "expires_at": alert.expires_at,
                "note": alert.note,
            },
        )

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["cooldown"] = timedelta(minutes=data.pop("cooldown_minutes"))
        return data
