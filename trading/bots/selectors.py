"""Reads of bots. Each filters by user (RLS is the backstop, not the filter)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from trading.common import user_id_of
from trading.models import Bot


def bot_list(*, user) -> QuerySet[Bot]:
    return Bot.objects.filter(user_id=user_id_of(user)).select_related("instrument", "connection", "portfolio")


def bot_get(*, user, pk) -> Bot:
    try:
        return bot_list(user=user).get(pk=int(pk))
    except (Bot.DoesNotExist, TypeError, ValueError):
        raise Http404("No such bot.") from None
