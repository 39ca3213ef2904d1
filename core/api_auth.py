"""API authentication with personal API tokens (django-rest-knox digests; docs/api.md).

    Authorization: Token nexus_<64 hex characters>

The database holds only each token's SHA-512 digest and its first characters (`token_key`, to find the
row). `api_token_lookup` is the one read of the token table made before the user is known; the rest of
the request then runs as the token's user (row-level security).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from hmac import compare_digest

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


def api_token_lookup(token: str) -> AbstractAuthToken | None:
    """The token row (with its user) for the token a client presented, or None."""
    digest = hash_token(token)
    with auth_context(reason="API token lookup before the user is known"):
        candidates = list(
            get_token_model().objects.select_related("user").filter(token_key=token[: KNOX.TOKEN_KEY_LENGTH])
        )
    return next((row for row in candidates if compare_digest(row.digest, digest)), None)


def _record_use(api_token: AbstractAuthToken, *, now: datetime) -> None:
    if api_token.last_used_at is not None and now - api_token.last_used_at < LAST_USED_RESOLUTION:
        return
    type(api_token).objects.filter(pk=api_token.pk).update(last_used_at=now)
    api_token.last_used_at = now


class TenantTokenAuthentication(TokenAuthentication):
    """knox's header parsing; our lookup, expiry and last use; then the request acts as the token's user."""

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
