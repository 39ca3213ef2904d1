"""The public API's shared machinery (docs/api.md), used by every app's `<app>/api/` package.

- Errors: RFC 9457 problem details (application/problem+json) from `problem_exception_handler`;
  `ProblemDetailSerializer` is their OpenAPI component and `problem_responses(400, 404, ...)` documents them
  in `@extend_schema(responses=...)`. `core.api_schema.ApiAutoSchema` (the default schema class) adds the problem responses
  every operation can give (400/401/403/404/422/429) and the `Idempotency-Key` header, so views get them free.
- Scopes: `TokenScopePermission` (the default permission): a token needs "read" for safe methods and
  "trade" for the others; a view may set `required_scopes = {"GET": "read", "POST": "trade"}`.
- Pagination: `CursorPagination` (the default; bounded page size); filtering with django-filter and
  `OrderingFilter` (the default filter backends; a view lists its `ordering_fields`).
- `StrictCharField`: a CharField that refuses numbers and booleans (`"name": 0` is a 400).
- `ETagMixin` / `etag_response`: ETags on cheap GETs, 304 on a matching If-None-Match.
- Rate-limit headers: the throttle calls `rate_limit_note`; `RateLimitHeadersMiddleware` writes
  RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset on the response.
- Idempotency-Key on unsafe requests: core.idempotency.IdempotencyMiddleware.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_etags, quote_etag
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, filters, pagination, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from core.errors import DomainError
from core.inputs import MAX_JSON_DEPTH, json_problem

MAX_PAGE_SIZE = 500


class DepthLimitedJSONParser(JSONParser):
    """JSON nested deeper than MAX_JSON_DEPTH, or holding lone surrogates, is a 400 (a parse error) rather
    than a RecursionError or an error message that cannot be encoded."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        problem = json_problem(data)
        if problem:
            raise exceptions.ParseError(f"JSON parse error - {problem}")
        return data


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """?limit= above MAX_PAGE_SIZE is cut to it (a larger LIMIT would not even fit PostgreSQL's bigint)."""

    max_limit = MAX_PAGE_SIZE
    limit_query_description = f"Number of results to return per page (at most {MAX_PAGE_SIZE})."


def problem_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        exc = (
            exceptions.ValidationError({"detail": [str(exc)]})
            if not exc.field
            else exceptions.ValidationError({exc.field: [str(exc)]})
        )
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (this module) while it loads, so a
    # module-level import fails whenever DRF's settings import this module first (e.g. its pagination check).
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    problem = {
        "type": "about:blank",
        "title": _title(response.status_code),
        "status": response.status_code,
    }
    if isinstance(data, dict) and set(data) == {"detail"} and not isinstance(data["detail"], list):
        problem["detail"] = str(data["detail"])
    else:
        problem["detail"] = (
            "The request has invalid fields." if response.status_code == 400 else _title(response.status_code)
        )
        problem["errors"] = data
    request = context.get("request")
    if request is not None:
        problem["instance"] = request.get_full_path()
    response.data = problem
    response.content_type = "application/problem+json"
    return response


TITLES = {
    status.HTTP_400_BAD_REQUEST: "Invalid request",
    status.HTTP_401_UNAUTHORIZED: "Authentication required",
    status.HTTP_403_FORBIDDEN: "Forbidden",
    status.HTTP_404_NOT_FOUND: "Not found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "Method not allowed",
    status.HTTP_409_CONFLICT: "Conflict",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "Request too large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    status.HTTP_422_UNPROCESSABLE_ENTITY: "Unprocessable request",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
    status.HTTP_503_SERVICE_UNAVAILABLE: "Service unavailable",
}


def _title(code: int) -> str:
    return TITLES.get(code, "Error")


PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    status_code: int,
    detail: str,
    *,
    instance: str = "",
    headers: dict | None = None,
    errors: dict | list | None = None,
) -> HttpResponse:
    """A problem+json answer built outside DRF (middleware)."""
    problem: dict = {
        "type": "about:blank",
        "title": _title(status_code),
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        problem["errors"] = errors
    if instance:
        problem["instance"] = instance
    response = HttpResponse(json.dumps(problem), status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- The problem schema ------------------------------------------------------------------------------


class ProblemDetailSerializer(serializers.Serializer):
    """An error (RFC 9457). `errors` holds field details for invalid requests: field name -> messages."""

    type = serializers.CharField(help_text='Always "about:blank": `title` and `status` say what happened.')
    title = serializers.CharField()
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    instance = serializers.CharField(required=False, help_text="The request's path and query.")
    errors = serializers.JSONField(
        required=False,
        help_text="Field details of a 400: an object mapping each field (or `detail` / `non_field_errors`) to "
        "a list of messages (nested for nested fields), or a list of messages.",
    )


PROBLEM_DESCRIPTIONS = {
    400: "Invalid request: `errors` maps each field to its messages.",
    401: "No valid credentials: send `Authorization: Token <token>`.",
    403: "Forbidden: the token lacks the scope this operation needs, or the plan does not include it.",
    404: "Not found (also another user's object).",
    409: "Conflict with the object's current state.",
    413: "Request too large.",
    415: "Unsupported media type.",
    422: "The Idempotency-Key was already used with a different request.",
    429: "Too many requests: wait for `Retry-After` seconds.",
}


def problem_responses(*codes: int) -> dict:
    """`@extend_schema(responses={200: Out, **problem_responses(400, 404)})`: problem+json error answers."""
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemDetailSerializer, description=PROBLEM_DESCRIPTIONS.get(code, _title(code))
        )
        for code in codes
    }


IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# --- Strict inputs -----------------------------------------------------------------------------------

# The largest id PostgreSQL's bigint holds: `IntegerField(min_value=1, max_value=DB_ID_MAX)` for ids in bodies.
DB_ID_MAX = 2**63 - 1


class FlatListSerializer(serializers.ListSerializer):
    """`many=True` output of a flat serializer (every field a plain attribute, rendered by its own field
    class): the same JSON as DRF's ListSerializer, without its per-item, per-field attribute machinery.

    For long lists of small rows (200 candles are 1,200 fields): DRF spent about a third of the rendering
    in `get_attribute` and the field loop, not in the fields' own `to_representation`. A child with a
    dotted or `*` source, a method field or a nested serializer is rendered by DRF as usual."""

    def to_representation(self, data):
        fields = _flat_fields(self.child)
        if fields is None:
            return super().to_representation(data)
        items = list(data.all() if hasattr(data, "all") else data)
        if items and isinstance(items[0], Mapping):
            return super().to_representation(items)
        return [
            {name: None if (value := getattr(item, source)) is None else render(value) for name, source, render in fields}
            for item in items
        ]


def _flat_fields(serializer: serializers.Serializer) -> list[tuple[str, str, object]] | None:
    fields = []
    for field in serializer._readable_fields:
        if (
            isinstance(field, serializers.BaseSerializer | serializers.SerializerMethodField)
            or len(field.source_attrs) != 1
        ):
            return None
        fields.append((field.field_name, field.source_attrs[0], field.to_representation))
    return fields


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: DRF's turns 0 or true into "0" / "True"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Scopes ------------------------------------------------------------------------------------------

SCOPE_READ = "read"
SCOPE_TRADE = "trade"
API_SCOPES = (SCOPE_READ, SCOPE_TRADE)


def required_scope(request, view) -> str:
    """The scope a request needs: the view's `required_scopes[method]`, else read for safe methods and trade
    for the others."""
    declared = getattr(view, "required_scopes", None) or {}
    if request.method in declared:
        return declared[request.method]
    if request.method == "HEAD" and "GET" in declared:
        return declared["GET"]
    return SCOPE_READ if request.method in SAFE_METHODS else SCOPE_TRADE


class TokenScopePermission(IsAuthenticated):
    """Signed in, and (for an API token) the token carries the scope the operation needs. Session-signed-in
    browser requests have every scope."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        scopes = getattr(request.auth, "scopes", None)
        if scopes is None:
            return True
        needed = required_scope(request, view)
        if needed in scopes:
            return True
        self.message = (
            f"This token lacks the “{needed}” scope this operation needs. Create a token with it under "
            "Settings → API."
        )
        return False


# --- Pagination, filtering, ordering -----------------------------------------------------------------

PAGE_SIZE = 50
MAX_CURSOR_PAGE_SIZE = 200


class CursorPagination(pagination.CursorPagination):
    """Stable pages under inserts: `?cursor=` from the previous answer's `next` / `previous`; `?page_size=`
    up to MAX_CURSOR_PAGE_SIZE. Orders by the view's `ordering` (a unique key such as "-id"; default "-id").
    A cursor that does not decode is a 400."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_CURSOR_PAGE_SIZE
    ordering = "-id"
    page_size_query_description = f"Results per page (at most {MAX_CURSOR_PAGE_SIZE}; default {PAGE_SIZE})."

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, DjangoValidationError):
            # A cursor whose position does not fit the ordering field's type.
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=` over the view's `ordering_fields` only (DRF's default would offer every serializer
    field); a view without `ordering_fields` keeps its fixed order."""

    def get_valid_fields(self, queryset, view, context=None):
        if getattr(view, "ordering_fields", None) is None:
            return []
        return super().get_valid_fields(queryset, view, context or {})

    def get_schema_operation_parameters(self, view):
        if getattr(view, "ordering_fields", None) is None:
            return []
        return super().get_schema_operation_parameters(view)


# --- ETags -------------------------------------------------------------------------------------------


def data_etag(data) -> str:
    """A strong ETag of a response's data (its canonical JSON)."""
    canonical = json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return quote_etag(hashlib.sha256(canonical.encode()).hexdigest()[:32])


def _etag_matches(request, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag.strip('"') in {tag.removeprefix("W/").strip('"') for tag in tags}


def etag_response(request, data, **kwargs) -> Response:
    """Response(data) with an ETag; 304 (no body) when the request's If-None-Match already names it."""
    etag = data_etag(data)
    if _etag_matches(request, etag):
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = Response(data, **kwargs)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


class ETagMixin:
    """For views whose GET answers are cheap to build: every 200 to a GET carries an ETag, and a request
    whose If-None-Match names it gets a 304 without a body."""

    def finalize_response(self, request, response, *args, **kwargs):
        if (
            request.method in ("GET", "HEAD")
            and isinstance(response, Response)
            and response.status_code == status.HTTP_200_OK
            and response.data is not None
        ):
            etag = data_etag(response.data)
            if _etag_matches(request, etag):
                response = Response(status=status.HTTP_304_NOT_MODIFIED)
            response["ETag"] = etag
            response["Cache-Control"] = "private, no-cache"
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


# --- Rate-limit headers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the window has room again


def rate_limit_note(request, *, limit: int, remaining: int, reset: float) -> None:
    """Called by the throttle: what RateLimitHeadersMiddleware writes on this request's response."""
    django_request = getattr(request, "_request", request)
    django_request.rate_limit = RateLimit(
        limit=limit, remaining=max(0, remaining), reset=max(0, math.ceil(reset))
    )


class RateLimitHeadersMiddleware:
    """RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (draft-ietf-httpapi-ratelimit-headers, the
    separate-fields form) on every API answer the plan throttle counted."""

    headers: ClassVar[tuple[str, str, str]] = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            limit, remaining, reset = self.headers
            response[limit] = str(state.limit)
            response[remaining] = str(state.remaining)
            response[reset] = str(state.reset)
        return response


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: API clients get problem+json (a path that matches no route, such as /orders/abc/),
    everyone else the site's 404 page."""
    if request.path.startswith("/api/"):
        return problem_response(404, "No such resource.", instance=request.get_full_path())
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
