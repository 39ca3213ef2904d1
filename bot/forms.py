"""The /assistant page's forms: a question, and the answer to a proposed write (confirm or cancel)."""

from __future__ import annotations

import uuid

from django import forms

QUESTION_MAX_CHARS = 2000
DEFAULT_KEY = "default"


class AskForm(forms.Form):
    question = forms.CharField(
        label="Your question",
        max_length=QUESTION_MAX_CHARS,
        strip=True,
        help_text="Answers come only from your own data and Nexus's market data. Enter sends; Shift+Enter adds a line.",
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "maxlength": QUESTION_MAX_CHARS,
                "placeholder": "Ask about your positions, prices, regimes, alerts, bots or orders",
                "autocomplete": "off",
                "aria-describedby": "id_question_help",
            }
        ),
        error_messages={
            "required": "Type a question first.",
            "max_length": "Keep the question under %(limit_value)d characters (this one has %(show_value)d).",
        },
    )
    # The browser's id for this question: a double submit (or a retried request) carries the same one and
    # is answered, and counted, once.
    ask_id = forms.UUIDField(
        widget=forms.HiddenInput, error_messages={"invalid": "Reload the page and ask again."}
    )
    # Which conversation: an existing one by id, or a new one by its key ("default" or a uuid).
    conversation = forms.IntegerField(
        widget=forms.HiddenInput, required=False, min_value=1, max_value=2**63 - 1
    )
    key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def clean_key(self) -> str:
        key = self.cleaned_data.get("key") or DEFAULT_KEY
        if key == DEFAULT_KEY:
            return key
        try:
            return uuid.UUID(key).hex
        except ValueError:
            raise forms.ValidationError("Reload the page and ask again.") from None

    def clean(self):
        cleaned = super().clean()
        # Hidden fields have no place on the page to show their error: say it above the form.
        for name in ("ask_id", "conversation", "key"):
            if name in self.errors:
                errors = self.errors.pop(name)
                self.add_error(None, errors)
        return cleaned


class ConfirmForm(forms.Form):
    token = forms.CharField(max_length=64, strip=True)
    accept = forms.TypedChoiceField(
        choices=[("yes", "Confirm"), ("no", "Cancel")], coerce=lambda value: value == "yes"
    )
