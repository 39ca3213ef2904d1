"""Reads of research notes.

A trader's own notes (tenant tables) are read as that trader, filtered by user (RLS is the backstop).
Published notes are read from `PublishedNote` (shared reference, written only by the publish service):
`published_readable_q` is the one place that says who may read which, by audience, with billing answering
whether the reader's plan is a paid one.

Other apps (the newsletter) use `note_published_get` and `note_published_list`: published, not withdrawn
notes with their rendered, sanitised HTML, whatever their audience (`audience` says who may read each).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.contrib.postgres.search import SearchHeadline, SearchQuery
from django.db import connections, transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from billing.selectors import plan_is_paid
from core.errors import DomainError
from marketdata.selectors import canonical_symbol
from research.choices import Audience, Outcome
from research.models import Note, NoteInstrument, NoteRevision, PublishedNote, PublishedNoteSearch

SEARCH_CONFIG = "english"
SEARCH_LIMIT_MAX = 100
QUERY_MAX = 200
# ts_headline marks matches with these; the snippet is HTML-escaped, then they become <mark>.
_START, _STOP = "\x02", "\x03"


class NoteNotFound(DomainError):
    """No such note for this reader: never said whether it exists for someone else."""

    def __init__(self) -> None:
        super().__init__("No such note.")


# --- The author's own notes ----------------------------------------------------------------------------


def note_list(*, user, tag: str | None = None) -> QuerySet[Note]:
    notes = Note.objects.filter(user_id=user.pk).select_related("chart_instrument")
    if tag:
        notes = notes.filter(tags__contains=[tag])
    return notes.order_by("-updated_at", "-id")


def note_get(*, user, note_id: int) -> Note:
    note = Note.objects.filter(user_id=user.pk, pk=note_id).select_related("chart_instrument").first()
    if note is None:
        raise NoteNotFound()
    return note


def note_symbols(*, note: Note) -> list[str]:
    return list(note.links.order_by("instrument__symbol").values_list("instrument__symbol", flat=True))


def note_revision_list(*, user, note: Note) -> QuerySet[NoteRevision]:
    return NoteRevision.objects.filter(user_id=user.pk, note_id=note.pk).order_by("-number")


def note_published_count(*, user) -> int:
    """Notes the user has published now: what billing's published-notes limit counts."""
    return Note.objects.filter(user_id=user.pk, published_at__isnull=False).count()


# --- Published notes, as other members read them ----------------------------------------------------------


def published_readable_q(*, user, withdrawn: bool = True) -> Q:
    """Published notes `user` may read: not withdrawn; paying-only ones on a paid plan or their own.
    `withdrawn=False` for `PublishedNoteSearch`, which has no withdrawn rows (and no such column)."""
    if user is None or not user.is_authenticated:
        return Q(pk__in=[])
    readable = Q(withdrawn_at__isnull=True) if withdrawn else Q()
    if plan_is_paid(user=user):
        return readable
    return readable & (Q(audience=Audience.MEMBERS) | Q(author_id=user.pk))


def published_list(
    *,
    user,
    symbol: str | None = None,
    tag: str | None = None,
    author_id: int | None = None,
) -> QuerySet[PublishedNote]:
    notes = PublishedNote.objects.filter(published_readable_q(user=user))
    if symbol:
        notes = notes.filter(symbols__contains=[canonical_symbol(symbol)])
    if tag:
        notes = notes.filter(tags__contains=[tag.strip().lower()])
    if author_id:
        notes = notes.filter(author_id=author_id)
    return notes.order_by("-published_at", "-id")


def published_get(*, user, note_id: int) -> PublishedNote:
    """A published note `user` may read, by the note's id; NoteNotFound otherwise (private, withdrawn,
    paying members only): the reader cannot tell which."""
    note = PublishedNote.objects.filter(published_readable_q(user=user), note_id=note_id).first()
    if note is None:
        raise NoteNotFound()
    return note


# --- For other apps (the newsletter) ------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedResearch:
    """A published note as another app shows it. `body_html` is rendered and sanitised: safe to include."""

    note_id: int
    title: str
    author_id: int
    author_name: str
    audience: str
    body_html: SafeString
    tags: tuple[str, ...]
    symbols: tuple[str, ...]
    published_at: datetime
    url: str
    direction: str
    thesis_symbol: str
    entry: Decimal | None
    target: Decimal | None
    stop: Decimal | None
    horizon: date | None
    outcome: str


def _research(note: PublishedNote) -> PublishedResearch:
    return PublishedResearch(
        note_id=note.note_id,
        title=note.title,
        author_id=note.author_id,
        author_name=note.author_name,
        audience=note.audience,
        body_html=mark_safe(note.body_html),  # noqa: S308 - sanitised by research.rendering at publish time
        tags=tuple(note.tags),
        symbols=tuple(note.symbols),
        published_at=note.published_at,
        url=reverse("research:published_detail", args=[note.note_id]),
        direction=note.direction,
        thesis_symbol=note.thesis_symbol,
        entry=note.entry,
        target=note.target,
        stop=note.stop,
        horizon=note.horizon,
        outcome=note.outcome,
    )


def note_published_get(*, note_id: int) -> PublishedResearch:
    """One published note (any audience); NoteNotFound when it is not published (or was withdrawn)."""
    note = PublishedNote.objects.filter(note_id=note_id, withdrawn_at__isnull=True).first()
    if note is None:
        raise NoteNotFound()
    return _research(note)


def note_published_list(*, symbol: str | None = None, limit: int = 10) -> list[PublishedResearch]:
    """The newest published notes (any audience), on `symbol` when given."""
    notes = PublishedNote.objects.filter(withdrawn_at__isnull=True)
    if symbol:
        notes = notes.filter(symbols__contains=[canonical_symbol(symbol)])
    limit = max(1, min(int(limit), SEARCH_LIMIT_MAX))
    return [_research(note) for note in notes.order_by("-published_at", "-id")[:limit]]


# --- Full-text search ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    note_id: int
    title: str
    author_id: int
    author_name: str
    tags: tuple[str, ...]
    symbols: tuple[str, ...]
    published_at: datetime | None
    rank: float
    snippet: SafeString
    url: str
    mine: bool


def snippet_html(headline: str) -> SafeString:
    """ts_headline's text with its match markers as <mark>, everything else escaped."""
    escaped = html.escape(" ".join((headline or "").split()))
    return mark_safe(escaped.replace(_START, "<mark>").replace(_STOP, "</mark>"))  # noqa: S308 - escaped above


def _search_query(text: str) -> SearchQuery:
    text = (text or "").strip()
    if not text:
        raise DomainError("Type something to search for.", field="q")
    if len(text) > QUERY_MAX:
        raise DomainError(f"Search for at most {QUERY_MAX} characters.", field="q")
    if "\x00" in text:
        raise DomainError("The search contains a character that cannot be searched for.", field="q")
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


def _headline(field: str, query: SearchQuery) -> SearchHeadline:
    return SearchHeadline(
        field, query, config=SEARCH_CONFIG, start_sel=_START, stop_sel=_STOP, max_words=30, min_words=12,
        max_fragments=2, fragment_delimiter=" … ",
    )


# Ranking reads `rank_vector` (title, tags, the body's first 1,500 characters) for at most this many
# matches, the newest ones; the match itself is on the full `search_vector` (GIN). A word in more notes than
# this ranks the newest SEARCH_CANDIDATES of them: an older note with a better rank is not shown for such a
# broad word (docs/research.md, "Search": the trade-off and the figures).
SEARCH_CANDIDATES = 2000


def _phrase_superset(text: str) -> SearchQuery | None:
    """For a search with a "phrase" and no -exclusion: the same words without the quotes, a query every
    match of `text` also matches and that the GIN index answers exactly (a phrase needs each candidate's
    word positions, read from its vector). None otherwise: the search is matched as it is."""
    words = text.replace('"', " ").strip()
    if '"' not in text or "-" in text or not words:
        return None
    return _search_query(words)


def _ranked(rows: QuerySet, text: str, *, newest: str, limit: int) -> list[tuple[int, float]]:
    """(pk, rank) of the best `limit` of `rows` (already filtered) matching the search `text` on
    search_vector: the newest SEARCH_CANDIDATES matches, ranked with ts_rank_cd over rank_vector, ties
    newest first (the search side table leaves rank_vector NULL where it equals search_vector, hence the
    coalesce).

    One statement: the candidates are a derived table (the newest matches with their vectors), ranked as
    they come out of it, so each candidate row is read once. A phrase search first takes the rows with all
    its words from the GIN index, newest first, and checks the phrase on them in that order only until it
    has SEARCH_CANDIDATES matches (`_phrase_superset`), rather than checking every row with the words.

    Sequential scans are off for it: the planner prices `@@` on a row as if its vector were in the row, but
    on the search side table it is out of line (one TOAST read a row), so a sequential scan for a word in
    half the notes would read every vector; the GIN index reads none (docs/research.md, "Search")."""
    search, superset = _search_query(text), _phrase_superset(text)
    db = rows.db
    columns = ("pk", newest, "rank_vector", "search_vector")
    names = "(pk, newest, rank_vector, search_vector)"
    compiler = rows.query.get_compiler(using=db)
    tsquery, tsquery_params = compiler.compile(search.resolve_expression(rows.query))
    if superset is None:
        newest_matches = rows.filter(search_vector=search).order_by(f"-{newest}", "-pk").values(*columns)
        inner, inner_params = newest_matches[:SEARCH_CANDIDATES].query.sql_with_params()
        candidates, candidate_params = f"({inner}) AS c {names}", [*inner_params]
    else:
        with_words = rows.filter(search_vector=superset).order_by(f"-{newest}", "-pk").values(*columns)
        inner, inner_params = with_words.query.sql_with_params()
        # OFFSET 0 keeps the phrase check out of the index scan: it runs on the sorted rows, up to the LIMIT
        candidates = (
            f"(SELECT * FROM ({inner} OFFSET 0) AS m {names} WHERE m.search_vector @@ {tsquery}"  # noqa: S608
            f" ORDER BY m.newest DESC, m.pk DESC LIMIT {SEARCH_CANDIDATES:d}) AS c"
        )
        candidate_params = [*inner_params, *tsquery_params]
    statement = (
        f"SELECT c.pk, ts_rank_cd(coalesce(c.rank_vector, c.search_vector), {tsquery}) AS rank"  # noqa: S608
        f" FROM {candidates} ORDER BY rank DESC, c.newest DESC, c.pk DESC LIMIT %s"
    )
    with transaction.atomic(using=db), connections[db].cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        [(seqscan, _)] = cursor.fetchall()
        cursor.execute(statement, [*tsquery_params, *candidate_params, limit])
        ranked = [(row_pk, float(rank)) for row_pk, rank in cursor.fetchall()]
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [seqscan])
    return ranked


def _published_search_rows(
    *, user, tag: str | None = None, symbol: str | None = None, author_id: int | None = None
) -> QuerySet[PublishedNoteSearch]:
    """The search rows of the published notes `user` may read, filters applied."""
    rows = PublishedNoteSearch.objects.filter(published_readable_q(user=user, withdrawn=False))
    if symbol:
        rows = rows.filter(symbols__contains=[canonical_symbol(symbol)])
    tag = (tag or "").strip().lower()
    if tag:
        rows = rows.filter(tags__contains=[tag])
    if author_id:
        rows = rows.filter(author_id=author_id)
    return rows


def published_search_matches(
    *,
    user,
    query: str,
    tag: str | None = None,
    symbol: str | None = None,
    author_id: int | None = None,
) -> QuerySet[PublishedNoteSearch]:
    """Every published note `user` may read matching `query` (on the search side table), filters applied:
    what `note_search` ranks. Unordered; the bench counts it."""
    rows = _published_search_rows(user=user, tag=tag, symbol=symbol, author_id=author_id)
    return rows.filter(search_vector=_search_query(query))


def note_search(
    *,
    user,
    query: str,
    mine: bool = False,
    tag: str | None = None,
    symbol: str | None = None,
    author_id: int | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """Published notes `user` may read (or, with `mine`, the user's own notes, drafts included) matching
    `query` (web-search syntax: words, "a phrase", -excluded, or), best first: ts_rank_cd over title (A),
    tags (B) and the start of the body (C), so a title match ranks above a body match. Among more than
    SEARCH_CANDIDATES matches, only the newest are ranked (see SEARCH_CANDIDATES). Published notes are
    matched and ranked on the narrow search side table (`PublishedNoteSearch`); only the returned page is
    read from the published copies, with its snippets (ts_headline). Pages, the API and
    bench/research_search.py all search through here."""
    search = _search_query(query)
    limit = max(1, min(int(limit), SEARCH_LIMIT_MAX))
    tag = (tag or "").strip().lower() or None
    if mine:
        own = note_list(user=user, tag=tag)
        if symbol:
            own = own.filter(links__instrument__symbol=canonical_symbol(symbol))
        own_ranked = _ranked(own, query, newest="updated_at", limit=limit)
        own_rows = _page(Note.objects.filter(user_id=user.pk), own_ranked, search, body="body")
        symbols = _note_symbols_map([n.pk for n, _ in own_rows])
        return [
            SearchHit(
                note_id=n.pk, title=n.title, author_id=n.user_id, author_name="", tags=tuple(n.tags),
                symbols=tuple(symbols.get(n.pk, [])), published_at=n.published_at, rank=rank,
                snippet=snippet_html(n.headline), url=reverse("research:note_detail", args=[n.pk]), mine=True,
            )
            for n, rank in own_rows
        ]
    rows = _published_search_rows(user=user, tag=tag, symbol=symbol, author_id=author_id)
    ranked = _ranked(rows, query, newest="published_at", limit=limit)
    # The page is read with the readability rule again: a search row out of step with its copy shows less,
    # never more.
    page = _page(PublishedNote.objects.filter(published_readable_q(user=user)), ranked, search, body="body_text")
    return [
        SearchHit(
            note_id=p.note_id, title=p.title, author_id=p.author_id, author_name=p.author_name,
            tags=tuple(p.tags), symbols=tuple(p.symbols), published_at=p.published_at, rank=rank,
            snippet=snippet_html(p.headline), url=reverse("research:published_detail", args=[p.note_id]),
            mine=p.author_id == user.pk,
        )
        for p, rank in page
    ]


def _page(rows: QuerySet, ranked: list[tuple[int, float]], search: SearchQuery, *, body: str) -> list[tuple]:
    """The ranked rows of `rows`, in rank order, each with its `headline` (ts_headline over `body`, for
    these rows only) and its rank."""
    if not ranked:
        return []
    found = {row.pk: row for row in rows.filter(pk__in=[pk for pk, _ in ranked]).annotate(headline=_headline(body, search))}
    return [(found[pk], rank) for pk, rank in ranked if pk in found]


def _note_symbols_map(note_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for note_id, symbol in (
        NoteInstrument.objects.filter(note_id__in=note_ids)
        .order_by("instrument__symbol")
        .values_list("note_id", "instrument__symbol")
    ):
        found.setdefault(note_id, []).append(symbol)
    return found


# --- Track record ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackRecord:
    author_id: int
    author_name: str
    theses: int
    target_hit: int
    stop_hit: int
    expired: int
    open: int
    withdrawn: int

    @property
    def decided(self) -> int:
        return self.target_hit + self.stop_hit + self.expired

    @property
    def hit_rate(self) -> Decimal | None:
        """Targets hit out of the decided theses, in percent (None before any is decided)."""
        if not self.decided:
            return None
        return (Decimal(100) * self.target_hit / self.decided).quantize(Decimal("0.1"))


def author_track_record(*, author_id: int) -> TrackRecord:
    """Every thesis the author ever published, withdrawn ones included (unpublishing does not erase a
    call), by outcome."""
    theses = PublishedNote.objects.filter(author_id=author_id).exclude(direction="")
    counts = theses.aggregate(
        total=Count("pk"),
        target_hit=Count("pk", filter=Q(outcome=Outcome.TARGET_HIT)),
        stop_hit=Count("pk", filter=Q(outcome=Outcome.STOP_HIT)),
        expired=Count("pk", filter=Q(outcome=Outcome.EXPIRED)),
        open=Count("pk", filter=Q(outcome=Outcome.OPEN)),
        withdrawn=Count("pk", filter=Q(withdrawn_at__isnull=False)),
    )
    name = (
        PublishedNote.objects.filter(author_id=author_id).order_by("-updated_at").values_list("author_name", flat=True).first()
        or ""
    )
    return TrackRecord(
        author_id=author_id,
        author_name=name,
        theses=counts["total"],
        target_hit=counts["target_hit"],
        stop_hit=counts["stop_hit"],
        expired=counts["expired"],
        open=counts["open"],
        withdrawn=counts["withdrawn"],
    )


def author_theses(*, author_id: int) -> QuerySet[PublishedNote]:
    """The author's published theses for the track record page, newest first (withdrawn ones show no text)."""
    return PublishedNote.objects.filter(author_id=author_id).exclude(direction="").order_by("-first_published_at")


def published_open_thesis_ids() -> list[int]:
    """Published theses whose outcome is still open: what the outcome task recomputes. Reference data, so
    no tenant context is needed."""
    return list(PublishedNote.objects.filter(outcome=Outcome.OPEN).order_by("pk").values_list("pk", flat=True))
