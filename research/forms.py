"""The note form (types and bounds only: research.services.note_clean decides what a note may be)."""

from __future__ import annotations

from django import forms

from core.inputs import validate_utc_datetime
from research.choices import BODY_MAX, CHART_ALT_MAX, TITLE_MAX, Audience, ChartInterval, Direction
from research.models import Note
from research.services import NoteInput

# The service names the thesis and chart instruments by symbol, as the form does.
SERVICE_TO_FORM_FIELD: dict[str, str] = {}
THESIS_FIELDS = ("direction", "thesis_symbol", "entry", "target", "stop", "horizon")
PRICE_WIDGET = {"step": "any", "inputmode": "decimal", "min": "0"}
DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _price_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, max_digits=20, decimal_places=8, widget=forms.NumberInput(attrs=PRICE_WIDGET)
    )


class NoteForm(forms.Form):
    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    body = forms.CharField(
        label="Note (Markdown)",
        required=False,
        max_length=BODY_MAX,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Markdown: **bold**, *italic*, lists, links, tables. HTML is shown as text.",
    )
    tags = forms.CharField(
        label="Tags", required=False, max_length=400, help_text="Words separated by commas or spaces, e.g. macro, breakout."
    )
    symbols = forms.MultipleChoiceField(
        label="Instruments", required=False, choices=(), widget=forms.CheckboxSelectMultiple,
        help_text="The markets the note is about; it is listed on their market pages once published.",
    )
    direction = forms.ChoiceField(label="Thesis", required=False, choices=[("", "No thesis"), *Direction.choices])
    thesis_symbol = forms.ChoiceField(label="Thesis instrument", required=False, choices=())
    entry = _price_field("Entry")
    target = _price_field("Target")
    stop = _price_field("Stop")
    horizon = forms.DateField(
        label="Horizon (end date, UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    chart_symbol = forms.ChoiceField(label="Chart", required=False, choices=())
    chart_interval = forms.ChoiceField(label="Chart interval", required=False, choices=[("", "—"), *ChartInterval.choices])
    chart_start = forms.DateTimeField(
        label="Chart from (UTC)", required=False, widget=DATETIME_WIDGET, validators=[validate_utc_datetime]
    )
    chart_end = forms.DateTimeField(
        label="Chart to (UTC)", required=False, widget=DATETIME_WIDGET, validators=[validate_utc_datetime]
    )
    chart_alt = forms.CharField(
        label="Chart description",
        required=False,
        max_length=CHART_ALT_MAX,
        help_text="What the chart shows, in words: read out to readers who cannot see it.",
    )

    def __init__(self, *args, symbols: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbols"].choices = [(s, s) for s in symbols]
        self.fields["thesis_symbol"].choices = [("", "—"), *((s, s) for s in symbols)]
        self.fields["chart_symbol"].choices = [("", "No chart"), *((s, s) for s in symbols)]

    @classmethod
    def for_note(cls, note: Note, data=None, *, symbols: list[str], linked: list[str]) -> NoteForm:
        form = cls(
            data,
            symbols=symbols,
            initial={
                "title": note.title,
                "body": note.body,
                "tags": ", ".join(note.tags),
                "symbols": linked,
                "direction": note.direction,
                "thesis_symbol": note.thesis_instrument.symbol if note.thesis_instrument_id else "",
                "entry": note.entry.normalize() if note.entry is not None else None,
                "target": note.target.normalize() if note.target is not None else None,
                "stop": note.stop.normalize() if note.stop is not None else None,
                "horizon": note.horizon,
                "chart_symbol": note.chart_instrument.symbol if note.chart_instrument_id else "",
                "chart_interval": note.chart_interval,
                "chart_start": note.chart_start,
                "chart_end": note.chart_end,
                "chart_alt": note.chart_alt,
            },
        )
        if note.first_published_at is not None:  # the track record measures the thesis as first published
            for name in THESIS_FIELDS:
                form.fields[name].disabled = True
        return form

    def note_input(self) -> NoteInput:
        return NoteInput(**self.cleaned_data)


class PublishForm(forms.Form):
    audience = forms.ChoiceField(label="Readable by", choices=Audience.choices, initial=Audience.MEMBERS)


class PreviewForm(forms.Form):
    body = forms.CharField(required=False, max_length=BODY_MAX, strip=False)


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    tag = forms.CharField(label="Tag", required=False, max_length=32)
    symbol = forms.CharField(label="Instrument", required=False, max_length=32)
    author = forms.IntegerField(label="Author", required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)
    mine = forms.BooleanField(label="Only my own notes (drafts too)", required=False)
