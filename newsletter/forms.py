"""Compose and schedule forms; services check everything again."""

from __future__ import annotations

from django import forms

from billing.choices import PlanCode
from newsletter.choices import Audience

BODY_HELP = (
    "Markdown. Data blocks on a line of their own: [[market-summary]], [[regime BTC/USDT]], "
    "[[movers 7d 5]], [[chart BTC/USDT 1h 48]], [[research-note 42]], [[research-notes BTC/USDT 3]]. "
    "See the guide."
)


class IssueForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "true"}), help_text=BODY_HELP)
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.ALL, label="Email to")
    audience_plans = forms.MultipleChoiceField(
        choices=PlanCode.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Plans (when emailing members on chosen plans)",
    )
    post_to_discord = forms.BooleanField(required=False, label="Also post to the community Discord channel")

    def service_kwargs(self) -> dict:
        return dict(self.cleaned_data)


class ScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        label="Send at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )


class PreferenceForm(forms.Form):
    subscribed = forms.BooleanField(required=False, label="Email me the Nexus newsletter")
