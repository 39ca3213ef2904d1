from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse
from knox.models import get_digest_token
from knox.settings import CONSTANTS as KNOX

from accounts.choices import NOTIFY_ACCOUNT_SECURITY
from accounts.models import ApiToken, User
from core.audit import audit_record
from core.consumers import user_sockets_reauthenticate
from core.errors import DomainError
from core.notifications import notify
from core.rls import tenant

PROFILE_FIELDS = ("display_name", "time_zone", "base_currency")
# An API token lives at most this long; a forgotten one stops working on its own.
API_TOKEN_MAX_LIFETIME = timedelta(days=366)


@transaction.atomic
def user_update_profile(*, user: User, display_name: str, time_zone: str, base_currency: str,
                        request: HttpRequest | None = None) -> User:
    # Read from the database: a bound ModelForm has already written the new values onto `user`.
    before = User.objects.values(*PROFILE_FIELDS).get(pk=user.pk)
    user.display_name = display_name.strip()
    user.time_zone = time_zone
    user.base_currency = base_currency
    user.full_clean(exclude=["password"])
    user.save(update_fields=list(PROFILE_FIELDS))
    after = {field: getattr(user, field) for field in PROFILE_FIELDS}
    if before != after:
        audit_record(action="account.profile_updated", user=user, actor=user, target=user,
                     before=before, after=after, request=request)
    return user


def user_log_out_everywhere(*, user: User, request: HttpRequest | None = None) -> User:
    """End every session of `user`, on every device: their session auth hash changes (see User)."""
    with tenant(user.pk):
        User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
        user.refresh_from_db(fields=["session_generation"])
        audit_record(action="account.logged_out_everywhere", user=user, actor=user, target=user,
                     after={"session_generation": user.session_generation}, request=request)
        transaction.on_commit(lambda: user_sockets_reauthenticate(user.pk))
    return user


# --- API tokens ----------------------------------------------------------------------------------------


def _api_token_audit_fields(token: ApiToken) -> dict:
    return {"name": token.name, "prefix": token.token_key, "expiry": token.expiry}


def api_token_create(*, user: User, name: str, expires_on: date,
                     request: HttpRequest | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user`, working until the end of `expires_on` (UTC).

    Returns the row and the token itself, which is not stored anywhere (only its digest is): the caller
    shows it once.
    """
    name = name.strip()
    if not name:
        raise DomainError("Give the token a name, such as the script or app that will use it.", field="name")
    today = datetime.now(UTC).date()
    if expires_on < today:
        raise DomainError("The expiry date is in the past; choose today or a later day.", field="expires_on")
    if expires_on > today + API_TOKEN_MAX_LIFETIME:
        latest = today + API_TOKEN_MAX_LIFETIME
        raise DomainError(f"A token can live for a year at most; choose {latest:%Y-%m-%d} or earlier.",
                          field="expires_on")
    digest, secret = get_digest_token()
    with tenant(user.pk):
        # Not knox's manager.create(): it takes the expiry as a duration from now, ours is a day's end.
        token = ApiToken(
            user=user,
            name=name,
            digest=digest,
            token_key=secret[: KNOX.TOKEN_KEY_LENGTH],
            expiry=datetime.combine(expires_on + timedelta(days=1), time.min, tzinfo=UTC),
        )
        token.save(force_insert=True)
        audit_record(action="account.api_token_created", user=user, actor=user, target=token,
                     after=_api_token_audit_fields(token), request=request)
    return token, secret


def api_token_revoke(*, user: User, token: ApiToken, request: HttpRequest | None = None) -> None:
    """Delete one of `user`'s API tokens: requests with it fail from now on."""
    with tenant(user.pk):
        deleted, _ = ApiToken.objects.filter(pk=token.pk, user=user).delete()
        if deleted:
            audit_record(action="account.api_token_revoked", user=user, actor=user, target=token,
                         before=_api_token_audit_fields(token), request=request)


def legacy_api_token_revoked_notify(*, user_id: int, token_prefix: str) -> None:
    """Tell a user that their plain-text API token (Django REST framework's authtoken) was revoked.

    Called once per such token by accounts/migrations/0003, which then drops the plain-text table.
    """
    with tenant(user_id):
        user = User.objects.only("id", "email").get(pk=user_id)
        audit_record(action="account.api_token_revoked", user=user, actor_label="system",
                     before={"kind": "plain-text token", "prefix": token_prefix})
        notify(
            user=user,
            kind=NOTIFY_ACCOUNT_SECURITY,
            message=(
                f"Your API token {token_prefix}… was revoked: Nexus no longer keeps tokens in plain text. "
                "Create a new one under Settings → API tokens; it is shown once and stored only as a hash."
            ),
            link=reverse("account_api_tokens"),
            dedup_key=f"legacy-api-token-revoked:{token_prefix}",
        )
