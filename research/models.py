"""Research notes.

- `Note`, `NoteInstrument`, `NoteRevision`: the author's own data, tenant tables (user_id, row-level
  security). Nobody else can read them, whatever the code asks.
- `PublishedNote`: the copy of a published note that other members read. A shared reference table
  (core/tables.py): the runtime role may only read it; `research.services.note_publish` /
  `note_unpublish` write it in `system_context`, and the outcome task updates its thesis outcome. Why a
  copy rather than a second RLS policy: the tenant policy stays the one fail-closed expression the RLS
  audit checks on every tenant table, and what others can see is exactly what was published (rendered and
  sanitised once), never a draft edited since.

- `PublishedNoteSearch`: what search reads of each readable published note (shared reference, like
  `PublishedNote`): a narrow row per published, not withdrawn note, kept by a database trigger on
  `PublishedNote` (migration 0003) in the same transaction as the copy itself.

Prices are Decimal (marketdata's PRICE precision). `search_vector` of both tables is kept by a trigger
(migration 0001): title weight A, tags B, body C, so every write path (services, bulk loads, COPY) keeps it.
`rank_vector` (migration 0002, the same trigger) is the compact vector results are ranked with: title, tags
and only the start of the body (docs/research.md, "Search").
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from core.models import TenantModel
from core.money import Precision
from research.choices import (
    CHART_ALT_MAX,
    TAG_MAX,
    TITLE_MAX,
    Audience,
    ChartInterval,
    Direction,
    Outcome,
)

PRICE: Precision = {"max_digits": 20, "decimal_places": 8}

_THESIS_NONE = (
    Q(direction="")
    & Q(entry__isnull=True)
    & Q(target__isnull=True)
    & Q(stop__isnull=True)
    & Q(horizon__isnull=True)
)
_THESIS_PRICES = Q(entry__isnull=False) & Q(target__isnull=False) & Q(stop__isnull=False)
_THESIS_LONG = Q(direction="long") & Q(stop__gt=0) & Q(stop__lt=models.F("entry")) & Q(entry__lt=models.F("target"))
_THESIS_SHORT = (
    Q(direction="short") & Q(target__gt=0) & Q(target__lt=models.F("entry")) & Q(entry__lt=models.F("stop"))
)
_THESIS_SET = (_THESIS_LONG | _THESIS_SHORT) & _THESIS_PRICES & Q(horizon__isnull=False)


def _thesis_on(instrument: Q, no_instrument: Q) -> Q:
    """A thesis is on one instrument: all of it, or none of it."""
    return (_THESIS_NONE & no_instrument) | (_THESIS_SET & instrument)

_CHART_NONE = Q(chart_interval="") & Q(chart_start__isnull=True) & Q(chart_end__isnull=True)
_CHART_SET = ~Q(chart_interval="") & Q(chart_start__isnull=False, chart_end__isnull=False) & Q(chart_start__lt=models.F("chart_end")) & ~Q(chart_alt="")


class ThesisFields(models.Model):
    """A trade idea: direction, entry, target, stop and the date by which it should have played out."""

    direction = models.CharField(max_length=8, choices=Direction.choices, blank=True)
    entry = models.DecimalField(**PRICE, null=True, blank=True)
    target = models.DecimalField(**PRICE, null=True, blank=True)
    stop = models.DecimalField(**PRICE, null=True, blank=True)
    horizon = models.DateField(null=True, blank=True, help_text="The thesis expires at the end of this day (UTC).")

    class Meta:
        abstract = True

    @property
    def has_thesis(self) -> bool:
        return bool(self.direction)


class ChartFields(models.Model):
    """A chart of stored candles: which interval over which time range, with a text alternative."""

    chart_interval = models.CharField(max_length=4, choices=ChartInterval.choices, blank=True)
    chart_start = models.DateTimeField(null=True, blank=True)
    chart_end = models.DateTimeField(null=True, blank=True)
    chart_alt = models.CharField(
        max_length=CHART_ALT_MAX, blank=True, help_text="What the chart shows, for readers who cannot see it."
    )

    class Meta:
        abstract = True

    @property
    def has_chart(self) -> bool:
        return bool(self.chart_interval)


class Note(TenantModel, ThesisFields, ChartFields):
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField(blank=True, help_text="Markdown.")
    thesis_instrument = models.ForeignKey(
        "marketdata.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tags = ArrayField(models.CharField(max_length=TAG_MAX), default=list, blank=True)
    chart_instrument = models.ForeignKey(
        "marketdata.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    audience = models.CharField(
        max_length=16, choices=Audience.choices, blank=True, help_text="Who may read it; empty while private."
    )
    published_at = models.DateTimeField(null=True, blank=True, help_text="When the current publication began.")
    first_published_at = models.DateTimeField(
        null=True, blank=True, help_text="The thesis is measured from here and cannot change any more."
    )
    revision_count = models.PositiveIntegerField(default=0)
    search_vector = SearchVectorField(null=True, editable=False)
    rank_vector = SearchVectorField(null=True, editable=False, help_text="Ranking only (migration 0002).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-updated_at"]),
            GinIndex(fields=["search_vector"], name="research_note_search"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_thesis_on(Q(thesis_instrument__isnull=False), Q(thesis_instrument__isnull=True)),
                name="research_note_thesis_valid",
            ),
            models.CheckConstraint(
                condition=(_CHART_NONE & Q(chart_instrument__isnull=True))
                | (_CHART_SET & Q(chart_instrument__isnull=False)),
                name="research_note_chart_complete",
            ),
            models.CheckConstraint(
                condition=Q(published_at__isnull=True, audience="")
                | Q(published_at__isnull=False, audience__in=Audience.values),
                name="research_note_published_has_audience",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class NoteInstrument(TenantModel):
    """An instrument a note is about (marketdata's Instrument, by id)."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="links")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["note", "instrument"], name="research_noteinstrument_once")
        ]

    def __str__(self) -> str:
        return f"{self.note_id} -> {self.instrument_id}"


class NoteRevision(TenantModel):
    """The note as it was saved, once per save: number 1 is the first version."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=TAG_MAX), default=list, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Symbols, thesis and chart as saved.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["note", "number"], name="research_noterevision_number_once")
        ]

    def __str__(self) -> str:
        return f"{self.note_id} r{self.number}"


class PublishedNote(ThesisFields, ChartFields):
    """What members read of a published note (shared reference: see the module docstring).

    The row outlives an unpublish as a withdrawn entry: its text, tags and chart are erased and no page
    shows it, but its thesis and outcome stay in the author's track record, so a losing call cannot be
    hidden by unpublishing it.
    """

    note_id = models.BigIntegerField(unique=True, help_text="The author's research_note row.")
    # A plain id, not a foreign key: readers may not read the author's user row (identity, RLS).
    author_id = models.BigIntegerField(db_index=True)
    author_name = models.CharField(max_length=150)
    title = models.CharField(max_length=TITLE_MAX, blank=True)
    body_html = models.TextField(blank=True, help_text="Rendered and sanitised once, at publish time.")
    body_text = models.TextField(blank=True, help_text="The body as plain text: search and snippets.")
    tags = ArrayField(models.CharField(max_length=TAG_MAX), default=list, blank=True)
    symbols = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    thesis_symbol = models.CharField(max_length=32, blank=True)
    chart_symbol = models.CharField(max_length=32, blank=True)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    first_published_at = models.DateTimeField()
    published_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True, help_text="The candle that decided it.")
    outcome_price = models.DecimalField(**PRICE, null=True, blank=True)
    outcome_checked_at = models.DateTimeField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    rank_vector = SearchVectorField(null=True, editable=False, help_text="Ranking only (migration 0002).")

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            GinIndex(fields=["symbols"], name="research_published_symbols"),
            GinIndex(fields=["tags"], name="research_published_tags"),
            models.Index(fields=["withdrawn_at", "-published_at"]),
            models.Index(fields=["outcome"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_thesis_on(~Q(thesis_symbol=""), Q(thesis_symbol="")),
                name="research_published_thesis_valid",
            ),
            models.CheckConstraint(
                condition=Q(direction="", outcome="") | (~Q(direction="") & Q(outcome__in=Outcome.values)),
                name="research_published_outcome_with_thesis",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"withdrawn note {self.note_id}"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None




class PublishedNoteSearch(models.Model):
    """The search side of a published, not withdrawn note: one narrow row per `PublishedNote` that readers
    may find (shared reference data; `research.selectors.note_search` reads it).

    Written only by the database: a trigger on `research_publishednote` (migration 0003) inserts, updates
    and deletes it in the statement that changes the published copy, on every write path (the publish and
    unpublish services in system_context, bulk loads, COPY). A withdrawn or deleted copy has no row here.

    Why a second table: matching a broad word means reading the publication date of every match. On the
    published copies (rendered HTML, plain text, vectors: about 1.9 kB a row) that is thousands of heap
    pages; here the row is about 150 bytes, because both vectors are stored out of line (STORAGE EXTERNAL,
    toast_tuple_target 128, migration 0003): the GIN index answers a word without reading the vector, and
    only phrase re-checks and the ranked candidates read it (docs/research.md, "Search"). `rank_vector` is
    stored only where it differs from `search_vector` (a body over 1,500 characters), so the vectors
    search reads take half the space and stay in the database's cache.
    """

    published = models.OneToOneField(
        PublishedNote, primary_key=True, on_delete=models.DO_NOTHING, related_name="+",
        help_text="The published copy; its trigger deletes this row with it.",
    )
    author_id = models.BigIntegerField()
    audience = models.CharField(max_length=16, choices=Audience.choices)
    published_at = models.DateTimeField()
    tags = ArrayField(models.CharField(max_length=TAG_MAX), default=list, blank=True)
    symbols = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    search_vector = SearchVectorField()
    rank_vector = SearchVectorField(
        null=True, help_text="NULL when it equals search_vector (a body under 1,500 characters): rank with "
        "coalesce(rank_vector, search_vector).",
    )

    class Meta:
        indexes = [
            GinIndex(fields=["search_vector"], name="research_search_vector"),
            GinIndex(fields=["tags"], name="research_search_tags"),
            GinIndex(fields=["symbols"], name="research_search_symbols"),
            models.Index(fields=["author_id"], name="research_search_author"),
        ]

    def __str__(self) -> str:
        return f"search entry of published note {self.published_id}"
