from __future__ import annotations

from datetime import timedelta

from django import forms

from alerts.choices import EVENT_KINDS, TICK_KINDS, WINDOW_CHOICES, AlertKind
from alerts.models import Alert
from core.errors import DomainError

FORM_KINDS = [(value, label) for value, label in AlertKind.choices if value in TICK_KINDS | EVENT_KINDS]
# The service names fields as the model does; the form shows the cooldown in minutes.
SERVICE_TO_FORM_FIELD = {"cooldown": "cooldown_minutes"}


class AlertForm(forms.Form):
    kind = forms.ChoiceField(label="Alert when", choices=FORM_KINDS, initial=AlertKind.PRICE_ABOVE)
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
    )
    note = forms.CharField(label="Note", required=False, max_length=200)

    @classmethod
    def for_alert(cls, alert: Alert, data=None) -> AlertForm:
        return cls(
            data,
            initial={
                "kind": alert.kind,
                "symbol": alert.instrument.symbol if alert.instrument else "",
                "threshold": alert.threshold.normalize() if alert.threshold is not None else None,
                "window_minutes": alert.window_minutes,
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

    def add_domain_error(self, error: DomainError) -> None:
        field = SERVICE_TO_FORM_FIELD.get(error.field, error.field)
        self.add_error(field if field in self.fields else None, str(error))
