"""Writes of research notes: create, edit (each save keeps a revision), delete, publish, unpublish, and
the thesis outcome of published notes.

Publishing copies the note, rendered and sanitised, into `PublishedNote` (shared reference data) in
`system_context`: the one reviewed path by which a trader's note reaches other members. The copy is
written after the author's own row and before the request's transaction commits; unpublishing withdraws
the copy first, so that a failure in between leaves a note less visible, never more. Publishing is
idempotent: publishing again re-syncs the copy. Who may publish how many is billing's answer
(Feature.PUBLISHED_NOTES).

A thesis cannot change once its note has been published (the track record measures it from the first
publication); write a new note for a new call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.choices import Feature
from billing.services import entitlement_check
from core.audit import audit_record
from core.errors import DomainError
from core.money import decimal_parse
from core.rls import system_context
from marketdata.selectors import TIMEFRAMES, instrument_get
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
from research.models import PRICE, Note, NoteInstrument, NoteRevision, PublishedNote
from research.outcomes import thesis_verdict
from research.rendering import html_text, markdown_render

SYMBOLS_MAX = 10
CHART_BARS_MAX = 5000  # marketdata.selectors.CANDLE_LIMIT_MAX: what one chart can draw
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
THESIS_FIELDS = ("direction", "entry", "target", "stop", "horizon", "thesis_instrument_id")


@dataclass(frozen=True)
class NoteInput:
    """What the form and the API send; `note_clean` turns it into model values."""

    title: str
    body: str = ""
    tags: Iterable[str] | str = ()
    symbols: Iterable[str] = ()
    direction: str = ""
    thesis_symbol: str = ""
    entry: Decimal | str | None = None
    target: Decimal | str | None = None
    stop: Decimal | str | None = None
    horizon: date | str | None = None
    chart_symbol: str = ""
    chart_interval: str = ""
    chart_start: datetime | None = None
    chart_end: datetime | None = None
    chart_alt: str = ""


def tags_clean(tags: Iterable[str] | str) -> list[str]:
    """"Macro, btc  ETF" or ["macro", "btc"] -> ["macro", "btc", "etf"]: lower case, no repeats."""
    if isinstance(tags, str):
        tags = re.split(r"[,\s]+", tags)
    cleaned: list[str] = []
    for tag in tags:
        tag = str(tag).strip().lstrip("#").lower()
        if not tag or tag in cleaned:
            continue
        if len(tag) > TAG_MAX or not _TAG.match(tag):
            raise DomainError(
                f"A tag is a word of letters, digits, '-', '_' or '.', at most {TAG_MAX} characters: {tag[:40]!r}.",
                field="tags",
            )
        cleaned.append(tag)
    if len(cleaned) > TAGS_MAX:
        raise DomainError(f"Use at most {TAGS_MAX} tags.", field="tags")
    return cleaned


def _price(value, *, field: str, label: str) -> Decimal:
    if value in (None, ""):
        raise DomainError(f"Enter the {label}.", field=field)
    price = decimal_parse(value, field=field, label=f"a {label}", **PRICE)
    if price <= 0:
        raise DomainError(f"The {label} must be greater than zero.", field=field)
    return price


def _date(value) -> date:
    if isinstance(value, datetime):
        raise DomainError("Give the horizon as a date (YYYY-MM-DD).", field="horizon")
    if isinstance(value, date):
        return value
    if value in (None, ""):
        raise DomainError("Choose the date by which the thesis should play out.", field="horizon")
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DomainError("Give the horizon as a date (YYYY-MM-DD).", field="horizon") from None


def note_clean(*, data: NoteInput) -> tuple[dict, list]:
    """Model values and the linked instruments for `data`; DomainError (with the field) on bad input."""
    title = (data.title or "").strip()
    if not title:
        raise DomainError("Give the note a title.", field="title")
    if len(title) > TITLE_MAX:
        raise DomainError(f"Keep the title under {TITLE_MAX} characters.", field="title")
    body = data.body or ""
    if len(body) > BODY_MAX:
        raise DomainError(f"Keep the note under {BODY_MAX:,} characters.", field="body")
    if "\x00" in title or "\x00" in body:
        raise DomainError("The note contains a character that cannot be stored.", field="body")
    values: dict = {"title": title, "body": body, "tags": tags_clean(data.tags)}

    instruments = []
    for symbol in data.symbols or ():
        if not str(symbol).strip():
            continue
        try:
            instrument = instrument_get(symbol=str(symbol))
        except DomainError as exc:
            raise DomainError(str(exc), field="symbols") from None
        if instrument not in instruments:
            instruments.append(instrument)
    if len(instruments) > SYMBOLS_MAX:
        raise DomainError(f"Link at most {SYMBOLS_MAX} instruments.", field="symbols")

    values.update(direction="", entry=None, target=None, stop=None, horizon=None, thesis_instrument=None)
    if data.direction:
        if data.direction not in Direction.values:
            raise DomainError("Choose long or short.", field="direction")
        if not (data.thesis_symbol or "").strip():
            raise DomainError("Choose the instrument the thesis is on.", field="thesis_symbol")
        try:
            thesis_instrument = instrument_get(symbol=data.thesis_symbol)
        except DomainError as exc:
            raise DomainError(str(exc), field="thesis_symbol") from None
        entry = _price(data.entry, field="entry", label="entry price")
        target = _price(data.target, field="target", label="target price")
        stop = _price(data.stop, field="stop", label="stop price")
        if data.direction == Direction.LONG and not stop < entry < target:
            raise DomainError("For a long thesis the stop must be below the entry and the target above it.", field="target")
        if data.direction == Direction.SHORT and not target < entry < stop:
            raise DomainError("For a short thesis the target must be below the entry and the stop above it.", field="target")
        horizon = _date(data.horizon)
        values.update(
            direction=data.direction, entry=entry, target=target, stop=stop, horizon=horizon,
            thesis_instrument=thesis_instrument,
        )
        if thesis_instrument not in instruments:
            instruments.append(thesis_instrument)

    values.update(chart_instrument=None, chart_interval="", chart_start=None, chart_end=None, chart_alt="")
    if (data.chart_symbol or "").strip():
        try:
            chart_instrument = instrument_get(symbol=data.chart_symbol)
        except DomainError as exc:
            raise DomainError(str(exc), field="chart_symbol") from None
        if data.chart_interval not in ChartInterval.values:
            raise DomainError(f"Choose the chart's interval ({', '.join(ChartInterval.values)}).", field="chart_interval")
        if data.chart_start is None or data.chart_end is None:
            raise DomainError("Give the chart's time range: a start and an end.", field="chart_start")
        for name, moment in (("chart_start", data.chart_start), ("chart_end", data.chart_end)):
            try:
                moment.astimezone(UTC)
            except (OverflowError, ValueError):
                raise DomainError("Enter a time between the years 1 and 9999.", field=name) from None
        if data.chart_start >= data.chart_end:
            raise DomainError("The chart's start must be before its end.", field="chart_end")
        if (data.chart_end - data.chart_start) / TIMEFRAMES[data.chart_interval] > CHART_BARS_MAX:
            raise DomainError(
                f"That range holds more than {CHART_BARS_MAX:,} {data.chart_interval} bars: choose a shorter "
                "range or a longer interval.",
                field="chart_interval",
            )
        alt = " ".join((data.chart_alt or "").replace("\x00", "").split())
        if not alt:
            raise DomainError("Describe what the chart shows, for readers who cannot see it.", field="chart_alt")
        if len(alt) > CHART_ALT_MAX:
            raise DomainError(f"Keep the chart description under {CHART_ALT_MAX} characters.", field="chart_alt")
        values.update(
            chart_instrument=chart_instrument, chart_interval=data.chart_interval, chart_start=data.chart_start,
            chart_end=data.chart_end, chart_alt=alt,
        )
        if chart_instrument not in instruments:
            instruments.append(chart_instrument)
    return values, instruments


def _symbol(instrument) -> str:
    return instrument.symbol if instrument is not None else ""


def _revision_write(*, note: Note, instruments: list) -> NoteRevision:
    note.revision_count += 1
    Note.objects.filter(pk=note.pk).update(revision_count=note.revision_count)
    return NoteRevision.objects.create(
        user_id=note.user_id,
        note=note,
        number=note.revision_count,
        title=note.title,
        body=note.body,
        tags=note.tags,
        details={
            "symbols": [i.symbol for i in instruments],
            "thesis": {
                "direction": note.direction,
                "symbol": _symbol(note.thesis_instrument),
                "entry": str(note.entry),
                "target": str(note.target),
                "stop": str(note.stop),
                "horizon": note.horizon.isoformat(),
            } if note.direction and note.horizon else None,
            "chart": {
                "symbol": _symbol(note.chart_instrument),
                "interval": note.chart_interval,
                "start": note.chart_start.isoformat(),
                "end": note.chart_end.isoformat(),
                "alt": note.chart_alt,
            } if note.chart_interval and note.chart_start and note.chart_end else None,
        },
    )


def _links_set(*, note: Note, instruments: list) -> None:
    NoteInstrument.objects.filter(note=note).exclude(instrument__in=instruments).delete()
    existing = set(NoteInstrument.objects.filter(note=note).values_list("instrument_id", flat=True))
    NoteInstrument.objects.bulk_create(
        [NoteInstrument(user_id=note.user_id, note=note, instrument=i) for i in instruments if i.pk not in existing]
    )


@transaction.atomic
def note_create(*, user, data: NoteInput) -> Note:
    values, instruments = note_clean(data=data)
    note = Note.objects.create(user=user, **values)
    _links_set(note=note, instruments=instruments)
    _revision_write(note=note, instruments=instruments)
    return note


@transaction.atomic
def note_update(*, user, note: Note, data: NoteInput) -> Note:
    """Save a new version of `note` (a revision row each time); a published note's copy follows."""
    note = Note.objects.select_for_update().get(user_id=user.pk, pk=note.pk)
    values, instruments = note_clean(data=data)
    if note.first_published_at is not None:
        changed = [f for f in THESIS_FIELDS if getattr(note, f) != _thesis_value(values, f)]
        if changed:
            raise DomainError(
                f"The thesis was published on {note.first_published_at:%Y-%m-%d %H:%M} UTC and is part of your "
                "track record: it cannot change. Write a new note for a new call.",
                field="direction",
            )
    for name, value in values.items():
        setattr(note, name, value)
    note.save()
    _links_set(note=note, instruments=instruments)
    _revision_write(note=note, instruments=instruments)
    if note.is_published:
        _published_copy_write(note=note, symbols=[i.symbol for i in instruments], author=user)
    return note


def _thesis_value(values: dict, field: str):
    if field == "thesis_instrument_id":
        instrument = values["thesis_instrument"]
        return instrument.pk if instrument is not None else None
    return values[field]


@transaction.atomic
def note_delete(*, user, note: Note) -> None:
    """Delete the note and its revisions; a published note is withdrawn first (its thesis stays in the
    track record, without its text)."""
    note = Note.objects.select_for_update().get(user_id=user.pk, pk=note.pk)
    if note.first_published_at is not None:
        _published_copy_withdraw(note_id=note.pk, now=timezone.now())
    if note.is_published:
        audit_record(action="research.note_unpublished", user=user, actor=user, target=note, before={"audience": note.audience})
    note.delete()


@transaction.atomic
def note_publish(*, user, note: Note, audience: str, now: datetime | None = None) -> PublishedNote:
    """Publish `note` to every signed-in member or to members on a paid plan. Counts against the plan's
    published-notes limit (billing); publishing a published note again changes its audience and re-syncs
    the copy."""
    if audience not in Audience.values:
        raise DomainError("Choose who may read the note.", field="audience")
    now = now or timezone.now()
    note = Note.objects.select_for_update().get(user_id=user.pk, pk=note.pk)
    if not note.is_published:
        entitlement_check(user=user, feature=Feature.PUBLISHED_NOTES)
        if note.direction and note.first_published_at is None and note.horizon and note.horizon < now.date():
            raise DomainError(
                "The thesis's horizon has passed: move it to a future date before publishing.", field="horizon"
            )
    before = {"audience": note.audience, "published_at": note.published_at}
    note.audience = audience
    if not note.is_published:
        note.published_at = now
    if note.first_published_at is None:
        note.first_published_at = now
    note.save(update_fields=["audience", "published_at", "first_published_at", "updated_at"])
    symbols = list(note.links.order_by("instrument__symbol").values_list("instrument__symbol", flat=True))
    copy = _published_copy_write(note=note, symbols=symbols, author=user)
    audit_record(
        action="research.note_published", user=user, actor=user, target=note, before=before,
        after={"audience": audience, "published_at": note.published_at},
    )
    return copy


@transaction.atomic
def note_unpublish(*, user, note: Note, now: datetime | None = None) -> Note:
    """Take the note out of every other member's view at once. Its thesis (if any) stays in the author's
    track record as a withdrawn call."""
    note = Note.objects.select_for_update().get(user_id=user.pk, pk=note.pk)
    if not note.is_published:
        raise DomainError("The note is not published.")
    _published_copy_withdraw(note_id=note.pk, now=now or timezone.now())
    before = {"audience": note.audience, "published_at": note.published_at}
    note.audience = ""
    note.published_at = None
    note.save(update_fields=["audience", "published_at", "updated_at"])
    audit_record(action="research.note_unpublished", user=user, actor=user, target=note, before=before)
    return note


def _published_copy_write(*, note: Note, symbols: list[str], author) -> PublishedNote:
    html = markdown_render(note.body)
    values = {
        "author_id": note.user_id,
        "author_name": author.label,
        "title": note.title,
        "body_html": html,
        "body_text": html_text(html),
        "tags": note.tags,
        "symbols": symbols,
        "audience": note.audience,
        "first_published_at": note.first_published_at,
        "published_at": note.published_at,
        "updated_at": timezone.now(),
        "withdrawn_at": None,
        "direction": note.direction,
        "thesis_symbol": _symbol(note.thesis_instrument),
        "entry": note.entry,
        "target": note.target,
        "stop": note.stop,
        "horizon": note.horizon,
        "chart_symbol": _symbol(note.chart_instrument),
        "chart_interval": note.chart_interval,
        "chart_start": note.chart_start,
        "chart_end": note.chart_end,
        "chart_alt": note.chart_alt,
    }
    with system_context(reason=f"research: publish note {note.pk}"):
        copy = PublishedNote.objects.filter(note_id=note.pk).first()
        if copy is None:
            copy = PublishedNote(note_id=note.pk, outcome=Outcome.OPEN if note.direction else "")
        for name, value in values.items():
            setattr(copy, name, value)
        if not note.direction:
            copy.outcome = ""
        elif not copy.outcome:
            copy.outcome = Outcome.OPEN
        copy.save()
    return copy


def _published_copy_withdraw(*, note_id: int, now: datetime) -> None:
    """Erase what others could read; keep the thesis and its outcome for the track record."""
    with system_context(reason=f"research: withdraw note {note_id}"):
        PublishedNote.objects.filter(note_id=note_id, direction="").delete()  # no thesis: nothing to keep
        PublishedNote.objects.filter(note_id=note_id).update(
            withdrawn_at=now, title="", body_html="", body_text="", tags=[], chart_symbol="", chart_interval="",
            chart_start=None, chart_end=None, chart_alt="", updated_at=now,
        )


def published_outcome_refresh(*, published_id: int, now: datetime | None = None) -> str:
    """Recompute an open thesis's outcome from the stored candles; a decided one never changes again."""
    now = now or timezone.now()
    with system_context(reason="research: thesis outcomes (shared reference rows)"):
        copy = PublishedNote.objects.select_for_update().filter(pk=published_id).first()
        if copy is None or copy.outcome != Outcome.OPEN:
            return copy.outcome if copy is not None else ""
        if copy.target is None or copy.stop is None or copy.horizon is None:  # the check constraint forbids it
            raise ValueError(f"published thesis {copy.pk} is incomplete")
        verdict = thesis_verdict(
            symbol=copy.thesis_symbol, direction=copy.direction, target=copy.target, stop=copy.stop,
            horizon=copy.horizon, since=copy.first_published_at, now=now,
        )
        PublishedNote.objects.filter(pk=copy.pk).update(
            outcome=verdict.outcome, outcome_at=verdict.at, outcome_price=verdict.price, outcome_checked_at=now
        )
        return verdict.outcome
