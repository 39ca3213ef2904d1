"""`Idempotency-Key` on every unsafe request under /api/v1/ (docs/api.md, "Idempotency").

The first request with a key inserts a core.IdempotencyRecord inside the request's transaction (opened by
core.rls.TenantMiddleware, which runs just before this middleware) and stores its answer there before the
transaction commits. A retry with the same key:
- while the first still runs: its INSERT waits on the unique (user, key) index until the first commits, then
  gets the stored answer (if the first failed with a 5xx its transaction rolled back, and the retry runs);
- after: gets the stored answer, with `Idempotent-Replayed: true`, and nothing runs again;
- with a different method, path, query or body: 422 problem.
Answers that did not act are not kept, so the client may retry them with the same key: 401, 403, 429, 5xx.
Records expire after IDEMPOTENCY_TTL (`core.idempotency_purge`, a beat task).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.api import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_PATTERN, UNSAFE_METHODS, problem_response
from core.models import IdempotencyRecord
from core.rls import system_context

IDEMPOTENCY_TTL = timedelta(hours=24)
API_PATH_PREFIX = "/api/v1/"
# Answers bigger than this are not kept (the record is dropped, so a retry acts again).
MAX_STORED_BODY = 1024 * 1024
_NOT_ACTED = {401, 403, 429}
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _request_hash(request: HttpRequest, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        request.method or "",
        request.path,
        request.META.get("QUERY_STRING", ""),
        request.content_type or "",
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _api_user(request: HttpRequest):
    """The user the API view will see (token or session), or None: then the view itself answers 401/403."""
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    drf_request = Request(
        request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    )
    try:
        user = drf_request.user
    except APIException:
        return None
    return user if user is not None and user.is_authenticated else None


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body), status=record.status_code, content_type=record.content_type or None
    )
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """After core.rls.TenantMiddleware in MIDDLEWARE: it needs the request's transaction."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if (
            key is None
            or request.method not in UNSAFE_METHODS
            or not request.path.startswith(API_PATH_PREFIX)
        ):
            return self.get_response(request)
        if not _KEY.match(key):
            return problem_response(
                400,
                f"The {IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters (a UUID, say).",
                instance=request.get_full_path(),
                errors={IDEMPOTENCY_HEADER: ["Invalid key."]},
            )
        user = _api_user(request)
        if user is None:
            return self.get_response(request)
        try:
            body = request.body
        except RequestDataTooBig:
            return self.get_response(request)
        request_hash = _request_hash(request, body)
        outcome = self._claim(request, user=user, key=key, request_hash=request_hash)
        if isinstance(outcome, HttpResponse):
            return outcome
        response = self.get_response(request)
        self._settle(outcome, response)
        return response

    def _claim(self, request: HttpRequest, *, user, key: str, request_hash: str):
        """The new record this request owns, or the answer to give instead of running the view."""
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    return IdempotencyRecord.objects.create(
                        user=user,
                        key=key,
                        method=request.method,
                        path=request.path[:2048],
                        request_hash=request_hash,
                    )
            except IntegrityError:
                existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
            if existing is None:  # the other request rolled back (or the record expired) meanwhile
                continue
            if existing.created_at < timezone.now() - IDEMPOTENCY_TTL:
                existing.delete()
                continue
            if existing.request_hash != request_hash:
                return problem_response(
                    422,
                    f"This {IDEMPOTENCY_HEADER} was already used with a different request "
                    f"({existing.method} {existing.path}); use a new key for a new request.",
                    instance=request.get_full_path(),
                )
            if existing.status_code is None:
                return problem_response(
                    409,
                    f"A request with this {IDEMPOTENCY_HEADER} is still running; retry in a moment.",
                    instance=request.get_full_path(),
                    headers={"Retry-After": "1"},
                )
            return _replay(existing)
        return problem_response(
            409,
            f"A request with this {IDEMPOTENCY_HEADER} is still running; retry.",
            instance=request.get_full_path(),
            headers={"Retry-After": "1"},
        )

    def _settle(self, record: IdempotencyRecord, response: HttpResponse) -> None:
        if response.status_code >= 500:
            return  # TenantMiddleware rolls the whole transaction back, the record with it
        keep = (
            response.status_code not in _NOT_ACTED
            and not response.streaming
            and len(response.content) <= MAX_STORED_BODY
        )
        if not keep:
            record.delete()
            return
        record.status_code = response.status_code
        record.content_type = response.get("Content-Type", "")
        record.response_body = response.content
        record.save(update_fields=["status_code", "content_type", "response_body"])


def idempotency_records_purge() -> int:
    """Delete the records older than IDEMPOTENCY_TTL (every user's). Returns how many."""
    with system_context(reason="idempotency: delete records older than 24 hours"):
        deleted, _ = IdempotencyRecord.objects.filter(
            created_at__lt=timezone.now() - IDEMPOTENCY_TTL
        ).delete()
    return deleted
