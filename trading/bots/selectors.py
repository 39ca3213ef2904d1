"""Reads of bots. Each filters by user (RLS is the backstop, not the filter)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from trading.common import user_id_of
from trading.models import Bot


def bot_list(*, user, status: str | None = None, symbol: str | None = None) -> QuerySet[Bot]:
    bots = Bot.objects.filter(user_id=user_id_of(user)).select_related("instrument", "connection", "portfolio")
    if status:
        bots = bots.filter(status=status)
    if symbol:
        bots = bots.filter(instrument__symbol=symbol)
    return bots


def bot_get(*, user, pk) -> Bot:
    try:
        return bot_list(user=user).get(pk=int(pk))
    except (Bot.DoesNotExist, TypeError, ValueError):
        raise Http404("No such bot.") from None
