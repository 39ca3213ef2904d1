from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from allauth.socialaccount.models import SocialAccount
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from knox.models import get_digest_token
from knox.settings import CONSTANTS as KNOX

from accounts.choices import NOTIFY_ACCOUNT_SECURITY, ApiScope, api_scopes_all
from accounts.models import ApiToken, DiscordLinkCode, User
from core.audit import audit_record
from core.consumers import user_sockets_reauthenticate
from core.errors import DomainError
from core.notifications import notify
from core.rls import auth_context, tenant

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
    return {"name": token.name, "prefix": token.token_key, "expiry": token.expiry, "scopes": list(token.scopes)}


def api_token_create(*, user: User, name: str, expires_on: date, scopes: Iterable[str] | None = None,
                     request: HttpRequest | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user`, working until the end of `expires_on` (UTC), with `scopes` (ApiScope
    values; default: all of them).

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
    chosen = api_scopes_all() if scopes is None else sorted(set(scopes))
    if not chosen:
        raise DomainError("Choose at least one scope: read, trade or both.", field="scopes")
    unknown = [scope for scope in chosen if scope not in ApiScope.values]
    if unknown:
        raise DomainError(f"Unknown scope {unknown[0]!r}; the scopes are read and trade.", field="scopes")
    digest, secret = get_digest_token()
    with tenant(user.pk):
        # Not knox's manager.create(): it takes the expiry as a duration from now, ours is a day's end.
        token = ApiToken(
            user=user,
            name=name,
            digest=digest,
            token_key=secret[: KNOX.TOKEN_KEY_LENGTH],
            expiry=datetime.combine(expires_on + timedelta(days=1), time.min, tzinfo=UTC),
            scopes=chosen,
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


# --- Discord ---------------------------------------------------------------------------------------------

DISCORD_PROVIDER = "discord"
# A link code works once, for this long after it is shown.
DISCORD_LINK_CODE_LIFETIME = timedelta(minutes=10)
# Wrong codes a Discord account may send before it must wait (guessing a live code is hopeless anyway).
DISCORD_LINK_MAX_FAILURES = 10
DISCORD_LINK_FAILURE_WINDOW = timedelta(minutes=15)
# No 0/O or 1/I: the code is read off a page and typed into Discord. 10 characters: ~50 bits.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 10
_CODE_SHAPE = re.compile(rf"^[{_CODE_ALPHABET}]{{{_CODE_LENGTH}}}$")


def discord_code_digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _code_normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code or "")).upper()


def discord_link_code_issue(*, user: User, request: HttpRequest | None = None,
                            now: datetime | None = None) -> tuple[DiscordLinkCode, str]:
    """A new one-time code that links the Discord account which sends it (`/link CODE`) to `user`.

    Returns the row and the code, shown once in the form XXXXX-XXXXX; only its digest is stored. Issuing a
    new code retires the user's earlier unused ones.
    """
    now = now or timezone.now()
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    with auth_context(reason="discord: issue a link code", user_id=user.pk):
        DiscordLinkCode.objects.filter(user=user, used_at__isnull=True).delete()
        row = DiscordLinkCode.objects.create(
            user=user, digest=discord_code_digest(raw), created_at=now, expires_at=now + DISCORD_LINK_CODE_LIFETIME
        )
    return row, f"{raw[:5]}-{raw[5:]}"


def _discord_audit_fields(account: SocialAccount) -> dict:
    extra = account.extra_data if isinstance(account.extra_data, dict) else {}
    return {"discord_user_id": account.uid, "username": extra.get("username", "")}


def discord_link_redeem(*, discord_user_id: str | int, code: str, username: str = "", global_name: str = "",
                        now: datetime | None = None) -> User:
    """Link the Discord account `discord_user_id` to the user who was shown `code`. Returns that user.

    A code works once and until it expires; a Discord account links to one Nexus account (allauth's unique
    (provider, uid)), and a Nexus account to one Discord account. Every refusal is a DomainError saying why.
    """
    now = now or timezone.now()
    uid = str(discord_user_id)
    failures_key = f"discord-link-failures:{uid}"
    if (cache.get(failures_key) or 0) >= DISCORD_LINK_MAX_FAILURES:
        raise DomainError("Too many wrong link codes from this Discord account. Wait 15 minutes, then get a new "
                          "code under Settings → Discord.", field="code")
    try:
        return _discord_link_redeem(uid=uid, code=code, username=username, global_name=global_name, now=now)
    except DomainError:
        cache.add(failures_key, 0, timeout=int(DISCORD_LINK_FAILURE_WINDOW.total_seconds()))
        cache.incr(failures_key)
        raise


def _discord_link_redeem(*, uid: str, code: str, username: str, global_name: str, now: datetime) -> User:
    normalised = _code_normalise(code)
    if not _CODE_SHAPE.match(normalised):
        raise DomainError(
            "That is not a link code: it has 10 letters and digits, like ABCDE-FGH23. Get one under "
            "Settings → Discord.", field="code"
        )
    with auth_context(reason="discord: redeem a link code before the user is known"):
        row = (DiscordLinkCode.objects.select_for_update().filter(digest=discord_code_digest(normalised))
               .first())
        if row is None:
            raise DomainError("That link code is not valid. Get a new one under Settings → Discord.", field="code")
        if row.used_at is not None:
            raise DomainError("That link code was already used; each code works once. Get a new one under "
                              "Settings → Discord.", field="code")
        if row.expires_at <= now:
            raise DomainError("That link code has expired (codes last 10 minutes). Get a new one under "
                              "Settings → Discord.", field="code")
        user = User.objects.get(pk=row.user_id)
        if not user.is_active:
            raise DomainError("That Nexus account is deactivated.", field="code")
        existing = SocialAccount.objects.filter(provider=DISCORD_PROVIDER, uid=uid).first()
        if existing is not None and existing.user_id != user.pk:
            raise DomainError("This Discord account is already linked to another Nexus account. Send /unlink "
                              "first, or unlink it under Settings → Discord on that account.", field="code")
        other = SocialAccount.objects.filter(provider=DISCORD_PROVIDER, user=user).exclude(uid=uid).first()
        if other is not None:
            raise DomainError("Your Nexus account is already linked to another Discord account. Unlink it "
                              "under Settings → Discord first.", field="code")
        row.used_at = now
        row.save(update_fields=["used_at"])
        if existing is not None:
            return user  # already linked to this very account: the code is spent, nothing changes
        extra = {"id": uid, "username": username, "global_name": global_name or None, "linked_with": "code"}
        try:
            with transaction.atomic():
                account = SocialAccount.objects.create(user=user, provider=DISCORD_PROVIDER, uid=uid,
                                                       extra_data=extra)
        except IntegrityError:
            raise DomainError("This Discord account was just linked to a Nexus account.", field="code") from None
        audit_record(action="account.discord_linked", user=user, actor=user, target=account,
                     actor_label=f"discord:{uid}", after={**_discord_audit_fields(account), "via": "code"})
    return user


def discord_unlink(*, user: User, request: HttpRequest | None = None, via: str = "web") -> bool:
    """Remove `user`'s Discord link (the bot stops answering with their data; Discord notifications stop).
    Returns whether there was one."""
    with auth_context(reason="discord: unlink", user_id=user.pk):
        accounts = list(SocialAccount.objects.filter(provider=DISCORD_PROVIDER, user=user))
        for account in accounts:
            account.delete()
            audit_record(action="account.discord_unlinked", user=user, actor=user, target=account,
                         before={**_discord_audit_fields(account), "via": via}, request=request)
    return bool(accounts)
