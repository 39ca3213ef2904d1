from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiToken, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def api_token_get(*, user: User, token_id: int) -> ApiToken:
    """One of `user`'s tokens; anyone else's (or none) is a 404."""
    return get_object_or_404(api_token_list(user=user), pk=token_id)
