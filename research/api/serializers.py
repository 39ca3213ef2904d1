"""Research API shapes. What a note may be is decided by research.services.note_clean; these check types
and bounds only, as the note form does."""

from __future__ import annotations

from rest_framework import serializers

from core.api import DB_ID_MAX, StrictCharField
from research.choices import (
    BODY_MAX,
    CHART_ALT_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    Audience,
    ChartInterval,
    Direction,
    Outcome,
)

PRICE = {"max_digits": 20, "decimal_places": 8}


class NoteInput(serializers.Serializer):
    title = StrictCharField(max_length=TITLE_MAX)
    body = StrictCharField(max_length=BODY_MAX, required=False, allow_blank=True, default="", trim_whitespace=False,
                           help_text="Markdown. Raw HTML is shown as text; links may be http(s) or mailto only.")
    tags = serializers.ListField(child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, required=False, default=list)
    symbols = serializers.ListField(
        child=StrictCharField(max_length=32), max_length=10, required=False, default=list,
        help_text="Instruments the note is about, e.g. [\"BTC/USDT\"].",
    )
    direction = serializers.ChoiceField(choices=Direction.choices, required=False, allow_blank=True, default="",
                                        help_text="Empty: no thesis.")
    thesis_symbol = StrictCharField(max_length=32, required=False, allow_blank=True, default="")
    entry = serializers.DecimalField(**PRICE, required=False, allow_null=True, default=None)
    target = serializers.DecimalField(**PRICE, required=False, allow_null=True, default=None)
    stop = serializers.DecimalField(**PRICE, required=False, allow_null=True, default=None)
    horizon = serializers.DateField(required=False, allow_null=True, default=None, help_text="Expires at the end of this day (UTC).")
    chart_symbol = StrictCharField(max_length=32, required=False, allow_blank=True, default="", help_text="Empty: no chart.")
    chart_interval = serializers.ChoiceField(choices=ChartInterval.choices, required=False, allow_blank=True, default="")
    chart_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    chart_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    chart_alt = StrictCharField(max_length=CHART_ALT_MAX, required=False, allow_blank=True, default="",
                                help_text="The chart's text alternative (required with a chart).")


class ThesisOutput(serializers.Serializer):
    direction = serializers.ChoiceField(choices=Direction.choices)
    symbol = serializers.CharField()
    entry = serializers.DecimalField(**PRICE)
    target = serializers.DecimalField(**PRICE)
    stop = serializers.DecimalField(**PRICE)
    horizon = serializers.DateField()


class ChartOutput(serializers.Serializer):
    symbol = serializers.CharField()
    interval = serializers.ChoiceField(choices=ChartInterval.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    alt = serializers.CharField()


class NoteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    body_html = serializers.CharField(help_text="The body rendered and sanitised.")
    tags = serializers.ListField(child=serializers.CharField())
    symbols = serializers.ListField(child=serializers.CharField())
    thesis = ThesisOutput(allow_null=True)
    chart = ChartOutput(allow_null=True)
    audience = serializers.CharField(help_text="members, paying, or empty while private.")
    published_at = serializers.DateTimeField(allow_null=True)
    first_published_at = serializers.DateTimeField(allow_null=True)
    revision_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RevisionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()


class PublishInput(serializers.Serializer):
    audience = serializers.ChoiceField(choices=Audience.choices)


class PublishedOutput(serializers.Serializer):
    note_id = serializers.IntegerField()
    title = serializers.CharField()
    author_id = serializers.IntegerField()
    author_name = serializers.CharField()
    audience = serializers.ChoiceField(choices=Audience.choices)
    body_html = serializers.CharField(help_text="Rendered and sanitised at publish time.")
    tags = serializers.ListField(child=serializers.CharField())
    symbols = serializers.ListField(child=serializers.CharField())
    thesis = ThesisOutput(allow_null=True)
    outcome = serializers.ChoiceField(choices=Outcome.choices, allow_blank=True)
    outcome_at = serializers.DateTimeField(allow_null=True)
    chart = ChartOutput(allow_null=True)
    published_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PublishedFilter(serializers.Serializer):
    symbol = StrictCharField(max_length=32, required=False, help_text="e.g. BTC/USDT or BTC-USDT.")
    tag = StrictCharField(max_length=TAG_MAX, required=False)
    author_id = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX, required=False)


class SearchFilter(PublishedFilter):
    q = StrictCharField(max_length=200, help_text='Web-search syntax: words, "a phrase", -excluded, or.')
    mine = serializers.BooleanField(required=False, default=False, help_text="Search your own notes, drafts included.")
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=20)


class SearchHitOutput(serializers.Serializer):
    note_id = serializers.IntegerField()
    title = serializers.CharField()
    author_id = serializers.IntegerField()
    author_name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    symbols = serializers.ListField(child=serializers.CharField())
    published_at = serializers.DateTimeField(allow_null=True)
    rank = serializers.FloatField()
    snippet = serializers.CharField(help_text="HTML: escaped text with the matches in <mark>.")
    mine = serializers.BooleanField()


class SearchOutput(serializers.Serializer):
    results = SearchHitOutput(many=True)


class TrackRecordOutput(serializers.Serializer):
    author_id = serializers.IntegerField()
    author_name = serializers.CharField()
    theses = serializers.IntegerField()
    target_hit = serializers.IntegerField()
    stop_hit = serializers.IntegerField()
    expired = serializers.IntegerField()
    open = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    hit_rate = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True,
                                        help_text="Targets hit out of decided theses, percent.")
