"""REST API for research notes (under /api/v1/research/): the author's notes (CRUD, revisions, publish,
unpublish), published notes, search and track records.

Every write goes through research/services.py, as the pages do. Another user's note is a 404, and so is a
published note the reader may not read (paying members only): the API never says it exists.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ETagMixin
from core.errors import DomainError
from research.api.serializers import (
    NoteInput,
    NoteOutput,
    PublishedFilter,
    PublishedOutput,
    PublishInput,
    RevisionOutput,
    SearchFilter,
    SearchOutput,
    TrackRecordOutput,
)
from research.models import Note, NoteRevision, PublishedNote
from research.rendering import markdown_render
from research.selectors import (
    author_track_record,
    note_get,
    note_list,
    note_revision_list,
    note_search,
    note_symbols,
    published_get,
    published_list,
)
from research.services import NoteInput as ServiceNoteInput
from research.services import note_create, note_delete, note_publish, note_unpublish, note_update

LONG_THESIS = OpenApiExample(
    "Note with a long thesis",
    value={
        "title": "BTC reclaims 22k",
        "body": "Support held **twice** at 21.9k.",
        "tags": ["breakout"],
        "symbols": ["BTC/USDT"],
        "direction": "long",
        "thesis_symbol": "BTC/USDT",
        "entry": "22100",
        "target": "24000",
        "stop": "21500",
        "horizon": "2023-03-31",
    },
    request_only=True,
)


def _note(request: Request, note_id: int) -> Note:
    try:
        return note_get(user=request.user, note_id=note_id)
    except DomainError:
        raise exceptions.NotFound("No such note.") from None


def _thesis(row, symbol: str) -> dict | None:
    if not row.direction:
        return None
    return {"direction": row.direction, "symbol": symbol, "entry": row.entry, "target": row.target,
            "stop": row.stop, "horizon": row.horizon}


def _chart(row, symbol: str) -> dict | None:
    if not row.chart_interval:
        return None
    return {"symbol": symbol, "interval": row.chart_interval, "start": row.chart_start, "end": row.chart_end,
            "alt": row.chart_alt}


def note_output(note: Note) -> dict:
    return NoteOutput(
        {
            "id": note.pk,
            "title": note.title,
            "body": note.body,
            "body_html": markdown_render(note.body),
            "tags": note.tags,
            "symbols": note_symbols(note=note),
            "thesis": _thesis(note, note.thesis_instrument.symbol if note.thesis_instrument_id else ""),
            "chart": _chart(note, note.chart_instrument.symbol if note.chart_instrument_id else ""),
            "audience": note.audience,
            "published_at": note.published_at,
            "first_published_at": note.first_published_at,
            "revision_count": note.revision_count,
            "created_at": note.created_at,
            "updated_at": note.updated_at,
        }
    ).data


def published_output(row: PublishedNote) -> dict:
    return PublishedOutput(
        {
            "note_id": row.note_id,
            "title": row.title,
            "author_id": row.author_id,
            "author_name": row.author_name,
            "audience": row.audience,
            "body_html": row.body_html,
            "tags": row.tags,
            "symbols": row.symbols,
            "thesis": _thesis(row, row.thesis_symbol),
            "outcome": row.outcome,
            "outcome_at": row.outcome_at,
            "chart": _chart(row, row.chart_symbol),
            "published_at": row.published_at,
            "updated_at": row.updated_at,
        }
    ).data


def _input(values: dict) -> ServiceNoteInput:
    return ServiceNoteInput(**values)


def _values_of(note: Note) -> dict:
    """The note as NoteInput's fields (what a PATCH starts from)."""
    return {
        "title": note.title, "body": note.body, "tags": note.tags, "symbols": note_symbols(note=note),
        "direction": note.direction,
        "thesis_symbol": note.thesis_instrument.symbol if note.thesis_instrument_id else "",
        "entry": note.entry, "target": note.target, "stop": note.stop, "horizon": note.horizon,
        "chart_symbol": note.chart_instrument.symbol if note.chart_instrument_id else "",
        "chart_interval": note.chart_interval, "chart_start": note.chart_start, "chart_end": note.chart_end,
        "chart_alt": note.chart_alt,
    }


class NoteListApi(generics.ListAPIView):
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Note.objects.none()
        return note_list(user=self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([note_output(note) for note in page])

    @extend_schema(summary="List my notes", responses={200: NoteOutput(many=True)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a note",
        description="Private until published. Each save keeps a revision.",
        request=NoteInput,
        responses={201: NoteOutput},
        examples=[LONG_THESIS],
    )
    def post(self, request: Request) -> Response:
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        note = note_create(user=request.user, data=_input(data.validated_data))
        return Response(note_output(_note(request, note.pk)), status=status.HTTP_201_CREATED)


class NoteDetailApi(ETagMixin, APIView):
    @extend_schema(summary="Get a note", responses={200: NoteOutput})
    def get(self, request: Request, note_id: int) -> Response:
        return Response(note_output(_note(request, note_id)))

    @extend_schema(
        summary="Change a note",
        description="Only the fields sent change; a new revision is kept. A published note's readers see the "
        "new version; its thesis cannot change any more (a 400).",
        request=NoteInput(partial=True),
        responses={200: NoteOutput},
    )
    def patch(self, request: Request, note_id: int) -> Response:
        note = _note(request, note_id)
        data = NoteInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        note_update(user=request.user, note=note, data=_input({**_values_of(note), **data.validated_data}))
        return Response(note_output(_note(request, note_id)))

    @extend_schema(summary="Delete a note", responses={204: None})
    def delete(self, request: Request, note_id: int) -> Response:
        note_delete(user=request.user, note=_note(request, note_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NoteRevisionListApi(generics.ListAPIView):
    serializer_class = RevisionOutput
    ordering = ("-number",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NoteRevision.objects.none()
        return note_revision_list(user=self.request.user, note=_note(self.request, self.kwargs["note_id"]))

    @extend_schema(summary="List a note's revisions (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class NotePublishApi(APIView):
    @extend_schema(
        summary="Publish a note",
        description="To every signed-in member or to members on a paid plan. Counts against the plan's "
        "published-notes limit (a 400 when it is reached). Publishing again changes the audience.",
        request=PublishInput,
        responses={200: NoteOutput},
    )
    def post(self, request: Request, note_id: int) -> Response:
        note = _note(request, note_id)
        data = PublishInput(data=request.data)
        data.is_valid(raise_exception=True)
        note_publish(user=request.user, note=note, audience=data.validated_data["audience"])
        return Response(note_output(_note(request, note_id)))


class NoteUnpublishApi(APIView):
    @extend_schema(
        summary="Unpublish a note",
        description="Other members can no longer read it. A thesis stays in the track record, without text.",
        request=None,
        responses={200: NoteOutput},
    )
    def post(self, request: Request, note_id: int) -> Response:
        note_unpublish(user=request.user, note=_note(request, note_id))
        return Response(note_output(_note(request, note_id)))


class PublishedListApi(generics.ListAPIView):
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PublishedNote.objects.none()
        filters = PublishedFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        try:
            return published_list(user=self.request.user, **filters.validated_data)
        except DomainError as exc:
            raise exceptions.ValidationError({exc.field or "symbol": [str(exc)]}) from None

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([published_output(row) for row in page])

    @extend_schema(summary="List published notes I may read", parameters=[PublishedFilter],
                   responses={200: PublishedOutput(many=True)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class PublishedDetailApi(ETagMixin, APIView):
    @extend_schema(summary="Get a published note", responses={200: PublishedOutput})
    def get(self, request: Request, note_id: int) -> Response:
        try:
            row = published_get(user=request.user, note_id=note_id)
        except DomainError:
            raise exceptions.NotFound("No such note.") from None
        return Response(published_output(row))


class SearchApi(APIView):
    @extend_schema(
        summary="Search notes",
        description="Full-text search over the published notes you may read, or with mine=true over your own. "
        "Best first: title matches above tag matches above body matches.",
        parameters=[SearchFilter],
        responses={200: SearchOutput},
    )
    def get(self, request: Request) -> Response:
        filters = SearchFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        hits = note_search(user=request.user, query=values.pop("q"), **values)
        return Response(SearchOutput({"results": [hit.__dict__ for hit in hits]}).data)


class TrackRecordApi(APIView):
    @extend_schema(summary="An author's track record", responses={200: TrackRecordOutput})
    def get(self, request: Request, author_id: int) -> Response:
        record = author_track_record(author_id=author_id)
        data = {**record.__dict__, "hit_rate": record.hit_rate}
        return Response(TrackRecordOutput(data).data)
