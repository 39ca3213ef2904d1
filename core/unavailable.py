"""503 with Retry-After, not 500, while the database is unreachable (PostgreSQL or PgBouncer down,
restarting, failing over, out of connections).

Django turns an exception raised in any middleware or view into a response at that layer, so an outer
middleware never sees it: the `got_request_exception` signal, sent while the exception is being handled,
marks the request instead, and `DatabaseUnavailableMiddleware` (outermost but metrics) answers the marked
request with a 503: problem+json under /api/, a static page otherwise (rendered without the request: the
base template would need the signed-in user, i.e. the database). Operational and interface errors are the
transient kind (a refused or dropped connection, a lock or statement timeout), so a retry is the right
advice for all of them.

The web tier's pooled connections are not checked when handed out (a round trip per request,
config/database.py): the first request that fails on a connection the server dropped (a restart) has every
pool check its idle connections in the background, so the others are replaced before they are used.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import structlog
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from core.api import problem_response

logger = structlog.get_logger(__name__)
UNAVAILABLE = (OperationalError, InterfaceError)
_MARK = "_nexus_database_unavailable"
DETAIL = "The database is unavailable for a moment. Please try again shortly."


def _mark(sender, request: HttpRequest | None = None, **kwargs) -> None:
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, UNAVAILABLE):
        setattr(request, _MARK, error)


got_request_exception.connect(_mark, dispatch_uid="core.unavailable.mark")


_checking: set[str] = set()
_checking_lock = threading.Lock()


def pools_check() -> None:
    """Have every connection pool of this process check its idle connections (psycopg_pool's `check()`,
    which drops the broken ones), in a thread per pool, one at a time."""
    for conn in connections.all(initialized_only=True):
        pool = getattr(conn, "pool", None)
        if pool is None:
            continue
        with _checking_lock:
            if conn.alias in _checking:
                continue
            _checking.add(conn.alias)

        def check(pool=pool, alias=conn.alias) -> None:
            try:
                pool.check()
            except Exception:  # noqa: BLE001 - a down server: the pool's own reconnection takes over
                logger.info("database_pool_check_failed", alias=alias)
            finally:
                with _checking_lock:
                    _checking.discard(alias)

        threading.Thread(target=check, name=f"pool-check-{conn.alias}", daemon=True).start()


def unavailable_response(request: HttpRequest) -> HttpResponse:
    retry_after = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    if request.path.startswith("/api/"):
        return problem_response(
            503, DETAIL, instance=request.get_full_path(), headers={"Retry-After": retry_after}
        )
    response = HttpResponse(render_to_string("503.html", {"retry_after": retry_after}), status=503)
    response["Retry-After"] = retry_after
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = getattr(request, _MARK, None)
        if error is None or response.status_code < 500:
            return response
        logger.warning("database_unavailable", path=request.path, error=str(error).strip()[:300])
        pools_check()
        return unavailable_response(request)
