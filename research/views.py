"""Research pages (/research/). Thin: services write, selectors read.

A private note exists only for its author: anyone else gets the same 404 as for a note that does not
exist, and so does a paying-members-only note for a member on the Free plan.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from core.forms import form_add_domain_error
from marketdata.selectors import candle_list, canonical_symbol, instrument_get, instrument_list
from research.choices import Audience
from research.forms import SERVICE_TO_FORM_FIELD, NoteForm, PreviewForm, PublishForm, SearchForm
from research.rendering import markdown_render
from research.selectors import (
    author_theses,
    author_track_record,
    note_get,
    note_list,
    note_revision_list,
    note_search,
    note_symbols,
    published_get,
    published_list,
)
from research.services import note_create, note_delete, note_publish, note_unpublish, note_update

COMMUNITY_SHOWN = 50
MARKET_NOTES_SHOWN = 5


def _note(request: HttpRequest, note_id: int):
    try:
        return note_get(user=request.user, note_id=note_id)
    except DomainError:
        raise Http404("No such note") from None


def _symbols() -> list[str]:
    return list(instrument_list().values_list("symbol", flat=True))


def chart_context(*, symbol: str, interval: str, start, end, alt: str, dom_id: str) -> dict | None:
    """The candles a note's chart draws (stored candles, as the market page's chart) and its text
    alternative: the author's description and the range's open, high, low and close in words."""
    if not interval or not symbol:
        return None
    try:
        bars = candle_list(symbol=symbol, timeframe=interval, limit=5000, start=start, end=end)
    except DomainError:
        bars = []
    summary = ""
    if bars:
        high = max(b.high for b in bars)
        low = min(b.low for b in bars)
        summary = (
            f"{symbol} {interval} candles from {bars[0].open_time:%Y-%m-%d %H:%M} to {bars[-1].open_time:%Y-%m-%d %H:%M} "
            f"UTC: opened at {bars[0].open}, high {high}, low {low}, closed at {bars[-1].close}."
        )
    try:
        precision = instrument_get(symbol=symbol).price_precision
    except DomainError:
        precision = 2
    return {
        "dom_id": dom_id,
        "data_id": f"{dom_id}-data",
        "symbol": symbol,
        "interval": interval,
        "alt": alt,
        "summary": summary,
        "precision": precision,
        "candles": [
            {"time": int(b.open_time.timestamp()), "open": str(b.open), "high": str(b.high), "low": str(b.low),
             "close": str(b.close)}
            for b in bars
        ],
    }


@login_required
@require_GET
def note_list_view(request: HttpRequest) -> HttpResponse:
    tag = (request.GET.get("tag") or "").strip().lower()[:32] or None
    return render(request, "research/note_list.html", {"notes": note_list(user=request.user, tag=tag), "tag": tag})


@login_required
def note_create_view(request: HttpRequest) -> HttpResponse:
    symbols = _symbols()
    initial = {}
    if (symbol := request.GET.get("symbol")) and canonical_symbol(symbol) in symbols:
        initial["symbols"] = [canonical_symbol(symbol)]
    form = NoteForm(request.POST or None, symbols=symbols, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            note = note_create(user=request.user, data=form.note_input())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc, field_names=SERVICE_TO_FORM_FIELD)
        else:
            messages.success(request, "Note saved. It is private until you publish it.")
            return redirect("research:note_detail", note_id=note.pk)
    return render(
        request, "research/note_form.html", {"form": form, "note": None},
        status=422 if request.method == "POST" else 200,
    )


@login_required
def note_edit_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note = _note(request, note_id)
    form = NoteForm.for_note(note, request.POST or None, symbols=_symbols(), linked=note_symbols(note=note))
    if request.method == "POST" and form.is_valid():
        try:
            note_update(user=request.user, note=note, data=form.note_input())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc, field_names=SERVICE_TO_FORM_FIELD)
        else:
            messages.success(request, "Note saved." + (" Readers see the new version." if note.is_published else ""))
            return redirect("research:note_detail", note_id=note.pk)
    return render(
        request, "research/note_form.html", {"form": form, "note": note},
        status=422 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def note_preview_view(request: HttpRequest) -> HttpResponse:
    """The body as it will be shown (HTMX, from the form's Preview button)."""
    form = PreviewForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    return render(request, "research/partials/preview.html", {"html": markdown_render(body)})


@login_required
@require_GET
def note_detail_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note = _note(request, note_id)
    published = None
    if note.is_published:
        try:
            published = published_get(user=request.user, note_id=note.pk)
        except DomainError:
            published = None
    return render(
        request,
        "research/note_detail.html",
        {
            "note": note,
            "html": markdown_render(note.body),
            "symbols": note_symbols(note=note),
            "published": published,
            "publish_form": PublishForm(initial={"audience": note.audience or Audience.MEMBERS}),
            "chart": chart_context(
                symbol=note.chart_instrument.symbol if note.chart_instrument_id else "", interval=note.chart_interval,
                start=note.chart_start, end=note.chart_end, alt=note.chart_alt, dom_id=f"note-chart-{note.pk}",
            ),
        },
    )


@login_required
@require_GET
def note_revisions_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note = _note(request, note_id)
    return render(
        request, "research/note_revisions.html", {"note": note, "revisions": note_revision_list(user=request.user, note=note)}
    )


@login_required
@require_POST
def note_publish_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note = _note(request, note_id)
    form = PublishForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose who may read the note.")
        return redirect("research:note_detail", note_id=note.pk)
    try:
        note_publish(user=request.user, note=note, audience=form.cleaned_data["audience"])
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Published. " + Audience(form.cleaned_data["audience"]).label + " can read it now.")
    return redirect("research:note_detail", note_id=note.pk)


@login_required
@require_POST
def note_unpublish_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note = _note(request, note_id)
    try:
        note_unpublish(user=request.user, note=note)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Unpublished: only you can read it now.")
    return redirect("research:note_detail", note_id=note.pk)


@login_required
@require_POST
def note_delete_view(request: HttpRequest, note_id: int) -> HttpResponse:
    note_delete(user=request.user, note=_note(request, note_id))
    messages.success(request, "Note deleted.")
    return redirect("research:note_list")


def _filters(request: HttpRequest) -> tuple[SearchForm, dict]:
    form = SearchForm(request.GET)
    if not form.is_valid():
        return form, {}
    data = form.cleaned_data
    return form, {
        "tag": (data.get("tag") or "").strip().lower() or None,
        "symbol": (data.get("symbol") or "").strip() or None,
        "author_id": data.get("author"),
    }


@login_required
@require_GET
def community_view(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    try:
        notes = list(published_list(user=request.user, **filters)[:COMMUNITY_SHOWN])
    except DomainError as exc:
        form.add_error(None, str(exc))
        notes = []
    return render(request, "research/community.html", {"notes": notes, "form": form, "filters": filters})


@login_required
@require_GET
def published_detail_view(request: HttpRequest, note_id: int) -> HttpResponse:
    try:
        note = published_get(user=request.user, note_id=note_id)
    except DomainError:
        raise Http404("No such note") from None
    return render(
        request,
        "research/published_detail.html",
        {
            "note": note,
            "chart": chart_context(
                symbol=note.chart_symbol, interval=note.chart_interval, start=note.chart_start, end=note.chart_end,
                alt=note.chart_alt, dom_id=f"published-chart-{note.note_id}",
            ),
        },
    )


@login_required
@require_GET
def search_view(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    hits = None
    query = request.GET.get("q", "")
    if form.is_valid() and query.strip():
        try:
            hits = note_search(user=request.user, query=query, mine=form.cleaned_data["mine"], **filters)
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
    return render(
        request, "research/search.html",
        {"form": form, "hits": hits, "query": query, "author_id": filters.get("author_id")},
    )


@login_required
@require_GET
def author_view(request: HttpRequest, author_id: int) -> HttpResponse:
    record = author_track_record(author_id=author_id)
    own = author_id == request.user.pk
    if not own and not record.theses and not published_list(user=request.user, author_id=author_id).exists():
        raise Http404("No published research by this author")
    return render(
        request,
        "research/author.html",
        {
            "record": record,
            "theses": author_theses(author_id=author_id),
            "notes": published_list(user=request.user, author_id=author_id)[:COMMUNITY_SHOWN],
        },
    )


@require_GET
def market_notes_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The published notes on one instrument, for the market page (loaded there with hx-get)."""
    try:
        instrument = instrument_get(symbol=slug)
    except DomainError:
        raise Http404("No such instrument") from None
    notes = []
    if request.user.is_authenticated:
        notes = list(published_list(user=request.user, symbol=instrument.symbol)[:MARKET_NOTES_SHOWN])
    return render(request, "research/partials/market_notes.html", {"instrument": instrument, "notes": notes})
