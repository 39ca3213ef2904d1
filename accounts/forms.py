from datetime import UTC, datetime, timedelta

from django import forms

from accounts.models import User
from core.errors import DomainError


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "time_zone", "base_currency"]
        labels = {"display_name": "Display name", "time_zone": "Time zone", "base_currency": "Base currency"}
        help_texts = {
            "display_name": "Shown on your pages and in Discord replies. Leave empty to use your email.",
            "base_currency": "Portfolios are valued in this currency unless you choose another per portfolio.",
        }


def _in_ninety_days():
    return datetime.now(UTC).date() + timedelta(days=90)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        help_text="What will use it, e.g. “tax export script”. Shown in the list below.",
        error_messages={"required": "Give the token a name, such as the script or app that will use it."},
    )
    expires_on = forms.DateField(
        label="Expires on",
        initial=_in_ninety_days,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The token works until the end of this day (UTC), a year at most.",
    )

    def add_domain_error(self, exc: DomainError) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, str(exc))
