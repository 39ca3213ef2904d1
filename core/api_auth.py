"""API authentication with personal API tokens (django-rest-knox digests; docs/api.md).

    Authorization: Token nexus_<64 hex characters>

The database holds only each token's SHA-512 digest and its first characters (`token_key`, to find the
row). `api_token_lookup` is the one read of the token table made before the user is known; the rest of
the request then runs as the token's user (row-level security).

A program calls with the same token again and again, so the row found (with its user) is kept in the Redis
cache under its digest for TOKEN_CACHE_SECONDS, where the sessions of signed-in browsers live too: the
lookup, a transaction on the auth role's own connection, took about a quarter of a simple API request's
time. Whatever changes what a cached row says marks it stale first (`api_token_cache_forget`, from
accounts.receivers: a token revoked, renamed or deleted; its user saved or deleted), before and again
after the change commits; a stale mark is never overwritten by a lookup that read the database before the
change (`cache.add`), so a revoked token stops working at once, as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from hmac import compare_digest

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AbstractAuthToken, get_token_model
from knox.settings import CONSTANTS as KNOX
from rest_framework.exceptions import AuthenticationFailed

from core.rls import activate_tenant, auth_context

# The last use shown to the user is this precise: at most one write per token per minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_CACHE_SECONDS = 300
# How long a stale mark keeps lookups off the cache: longer than a lookup takes from its read to its
# `cache.add` (the same thread, a few statements apart) on the busiest server.
STALE_MARK_SECONDS = 30
_STALE = "stale"


def _cache_key(digest: str) -> str:
    return f"api-token:{digest}"


def api_token_lookup(token: str) -> AbstractAuthToken | None:
    """The token row (with its user) for the token a client presented, or None."""
    digest = hash_token(token)
    key = _cache_key(digest)
    cached = cache.get(key)
    if cached is not None and cached != _STALE:
        return cached
    with auth_context(reason="API token lookup before the user is known"):
        candidates = list(
            get_token_model().objects.select_related("user").filter(token_key=token[: KNOX.TOKEN_KEY_LENGTH])
        )
    found = next((row for row in candidates if compare_digest(row.digest, digest)), None)
    if found is not None and cached is None:
        cache.add(key, found, timeout=TOKEN_CACHE_SECONDS)  # never over a stale mark set meanwhile
    return found


def api_token_cache_forget(digests: list[str]) -> None:
    """Mark these tokens' cached rows stale now and again once the current transaction commits (lookups
    read the database until the mark expires)."""
    if not digests:
        return
    marks = {_cache_key(digest): _STALE for digest in digests}
    cache.set_many(marks, timeout=STALE_MARK_SECONDS)
    transaction.on_commit(lambda: cache.set_many(marks, timeout=STALE_MARK_SECONDS))


def _record_use(api_token: AbstractAuthToken, *, now: datetime) -> None:
    if api_token.last_used_at is not None and now - api_token.last_used_at < LAST_USED_RESOLUTION:
        return
    # A cached row keeps the last use it was read with; the last one written is noted beside it.
    noted_key = f"api-token-used:{api_token.pk}"
    noted = cache.get(noted_key)
    if noted is not None and now - noted < LAST_USED_RESOLUTION:
        return
    type(api_token).objects.filter(pk=api_token.pk).update(last_used_at=now)
    api_token.last_used_at = now
    cache.set(noted_key, now, timeout=TOKEN_CACHE_SECONDS)


class TenantTokenAuthentication(TokenAuthentication):
    """knox's header parsing; our lookup, expiry and last use; then the request acts as the token's user.

    A POST with an Idempotency-Key is authenticated by core.idempotency's middleware before the view (it
    keys the record by user); the view's own authentication then takes that result from the Django request
    instead of looking the token up and setting the tenant a second time (same request, same transaction).
    """

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        done = getattr(django_request, "_token_authenticated", None)
        if done is not None:
            return done
        result = super().authenticate(request)
        if result is not None:
            django_request._token_authenticated = result
        return result

    def authenticate_credentials(self, token: bytes):
        try:
            api_token = api_token_lookup(token.decode("ascii"))
        except UnicodeDecodeError:
            api_token = None
        if api_token is None:
            raise AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if api_token.expiry <= now:
            raise AuthenticationFailed("This token has expired. Create a new one under Settings → API tokens.")
        if not api_token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        activate_tenant(api_token.user_id)
        _record_use(api_token, now=now)
        return api_token.user, api_token


class TenantTokenScheme(KnoxTokenScheme):
    """The header in the OpenAPI schema: `Authorization: Token <token>`."""

    target_class = "core.api_auth.TenantTokenAuthentication"
    name = "apiToken"
