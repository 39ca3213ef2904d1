from datetime import UTC, datetime, timedelta

from allauth.account import forms as allauth_forms
from django import forms
from django.core.validators import MaxLengthValidator

from accounts.choices import ApiScope
from accounts.models import User

# 254, RFC 5321's limit and what accounts_user.email and account_emailaddress.email hold. Django's
# EmailField (so allauth's forms) would take 320 and leave the difference to fail in the database.
EMAIL_MAX_LENGTH = User._meta.get_field("email").max_length


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
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        initial=[ApiScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text="Read only is enough for reports and exports; trade lets it place orders and change data.",
        error_messages={"required": "Choose at least one scope: read, trade or both."},
    )


class _StorableEmailMixin:
    """allauth's form, with its email field held to EMAIL_MAX_LENGTH."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        email = self.fields["email"]
        email.max_length = EMAIL_MAX_LENGTH
        email.validators.append(MaxLengthValidator(EMAIL_MAX_LENGTH))
        email.widget.attrs["maxlength"] = str(EMAIL_MAX_LENGTH)


class SignupForm(_StorableEmailMixin, allauth_forms.SignupForm):
    pass


class AddEmailForm(_StorableEmailMixin, allauth_forms.AddEmailForm):
    pass
