"""Reads of orders. Each filters by user (RLS is the backstop, not the filter)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404

from trading.choices import OPEN_ORDER_STATUSES
from trading.common import user_id_of
from trading.models import Bot, Fill, Order


def order_list(
    *,
    user,
    open_only: bool = False,
    status: str | None = None,
    symbol: str | None = None,
    side: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    bot: Bot | None = None,
) -> QuerySet[Order]:
    orders = Order.objects.filter(user_id=user_id_of(user)).select_related("instrument", "connection", "bot")
    if open_only:
        orders = orders.filter(status__in=OPEN_ORDER_STATUSES)
    if status:
        orders = orders.filter(status=status)
    if symbol:
        orders = orders.filter(instrument__symbol=symbol)
    if side:
        orders = orders.filter(side=side)
    if source:
        orders = orders.filter(source=source)
    if bot is not None:
        orders = orders.filter(bot=bot)
    if since:
        orders = orders.filter(created_at__gte=since)
    if until:
        orders = orders.filter(created_at__lt=until)
    return orders.order_by("-created_at")


def order_get(*, user, pk) -> Order:
    try:
        return order_list(user=user).get(pk=uuid.UUID(str(pk)))
    except (Order.DoesNotExist, ValueError, TypeError):
        raise Http404("No such order.") from None


def fill_list(*, user, order: Order) -> QuerySet[Fill]:
    """An order's executions, oldest first."""
    return Fill.objects.filter(user_id=user_id_of(user), order=order).order_by("executed_at", "id")
