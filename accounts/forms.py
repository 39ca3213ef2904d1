from django import forms

from accounts.models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "time_zone", "base_currency"]
        labels = {"display_name": "Display name", "time_zone": "Time zone", "base_currency": "Base currency"}
        help_texts = {
            "display_name": "Shown on your pages and in Discord replies. Leave empty to use your email.",
            "base_currency": "Portfolios are valued in this currency unless you choose another per portfolio.",
        }
