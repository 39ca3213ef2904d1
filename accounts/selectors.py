from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiToken, User
from core.rls import auth_context, tenant


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def api_token_get(*, user: User, token_id: int) -> ApiToken:
    """One of `user`'s tokens; anyone else's (or none) is a 404."""
    return get_object_or_404(api_token_list(user=user), pk=token_id)


@dataclass(frozen=True)
class DiscordLink:
    discord_user_id: str
    username: str


def discord_user_resolve(*, discord_user_id: str | int) -> User | None:
    """The active Nexus user a Discord account is linked to, or None. The bot asks before it knows anyone,
    so this reads the link in the auth context; everything after runs in that user's tenant."""
    with auth_context(reason="discord: which user sent this command"):
        account = (
            SocialAccount.objects.filter(provider="discord", uid=str(discord_user_id))
            .select_related("user")
            .defer("user__password")
            .first()
        )
    if account is None or not account.user.is_active:
        return None
    return account.user


def discord_link_get(*, user: User) -> DiscordLink | None:
    """`user`'s linked Discord account (the name is in extra_data, which only the auth context reads)."""
    with auth_context(reason="discord: show the linked account", user_id=user.pk):
        account = SocialAccount.objects.filter(provider="discord", user=user).first()
    if account is None:
        return None
    extra = account.extra_data if isinstance(account.extra_data, dict) else {}
    name = extra.get("global_name") or extra.get("username") or ""
    return DiscordLink(discord_user_id=account.uid, username=name)


def discord_uid(*, user_id: int) -> str | None:
    """The Discord user id `user_id` is linked to, or None (the runtime role reads its own link rows, though
    not their extra data; works in any context)."""
    with tenant(user_id):
        return (
            SocialAccount.objects.filter(provider="discord", user_id=user_id)
            .values_list("uid", flat=True)
            .first()
        )


def member_contacts(*, joined_before=None) -> QuerySet[User, tuple[int, str]]:
    """Active accounts with an email address, as (id, email) rows in id order: a mailing's audience.

    Every member's row: call it inside `system_context(...)` (the newsletter's send worker)."""
    members = User.objects.filter(is_active=True).exclude(email="")
    if joined_before is not None:
        members = members.filter(date_joined__lte=joined_before)
    return members.order_by("id").values_list("id", "email")


def user_by_email(*, email: str) -> User | None:
    """The account with this login email; any account's row: call it inside `system_context(...)`."""
    return User.objects.filter(email__iexact=email).first()


def account_exists(*, user_id: int) -> bool:
    """Whether the account still exists: its own row, read as that user (call inside `tenant(user_id)`)."""
    return User.objects.filter(pk=user_id).exists()
