"""API errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser

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
        exc = exceptions.ValidationError({"detail": [str(exc)]}) if not exc.field else exceptions.ValidationError(
            {exc.field: [str(exc)]}
        )
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
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
        problem["detail"] = "The request has invalid fields." if response.status_code == 400 else _title(
            response.status_code
        )
        problem["errors"] = data
    request = context.get("request")
    if request is not None:
        problem["instance"] = request.get_full_path()
    response.data = problem
    response.content_type = "application/problem+json"
    return response


def _title(code: int) -> str:
    return {
        status.HTTP_400_BAD_REQUEST: "Invalid request",
        status.HTTP_401_UNAUTHORIZED: "Authentication required",
        status.HTTP_403_FORBIDDEN: "Forbidden",
        status.HTTP_404_NOT_FOUND: "Not found",
        status.HTTP_405_METHOD_NOT_ALLOWED: "Method not allowed",
        status.HTTP_409_CONFLICT: "Conflict",
        status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
    }.get(code, "Error")
