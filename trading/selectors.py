"""Reads of the trading domain. Each filters by user (RLS is the backstop, not the filter)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404

from trading.choices import OPEN_ORDER_STATUSES, Venue
from trading.exchanges import Balance
from trading.exchanges.breaker import VenueHealth, breaker_health
from trading.models import BlockedExecution, Bot, ExchangeConnection, ExecutionPlan, Order, RegimeReading


def _user_id(user) -> int:
    return user if isinstance(user, int) else user.pk


def connection_list(*, user) -> QuerySet[ExchangeConnection]:
    return ExchangeConnection.objects.filter(user_id=_user_id(user)).order_by("created_at", "id")


def connection_get(*, user, pk) -> ExchangeConnection:
    try:
        return connection_list(user=user).get(pk=int(pk))
    except (ExchangeConnection.DoesNotExist, TypeError, ValueError):
        raise Http404("No such exchange connection.") from None


def venue_health(*, venue: str) -> VenueHealth:
    if venue == Venue.PAPER:
        return VenueHealth(venue=venue, degraded=False)
    return breaker_health(venue=venue)


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
) -> QuerySet[Order]:
    orders = Order.objects.filter(user_id=_user_id(user)).select_related("instrument", "connection", "bot")
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


def bot_list(*, user) -> QuerySet[Bot]:
    return Bot.objects.filter(user_id=_user_id(user)).select_related("instrument", "connection", "portfolio")


def bot_get(*, user, pk) -> Bot:
    try:
        return bot_list(user=user).get(pk=int(pk))
    except (Bot.DoesNotExist, TypeError, ValueError):
        raise Http404("No such bot.") from None


def plan_list(*, user, bot: Bot | None = None) -> QuerySet[ExecutionPlan]:
    plans = ExecutionPlan.objects.filter(user_id=_user_id(user)).select_related("signal", "order", "bot")
    if bot is not None:
        plans = plans.filter(bot=bot)
    return plans.order_by("-created_at", "-id")


def blocked_execution_list(*, user, bot: Bot | None = None) -> QuerySet[BlockedExecution]:
    rows = BlockedExecution.objects.filter(user_id=_user_id(user)).select_related(
        "bot", "signal", "signal__instrument"
    )
    if bot is not None:
        rows = rows.filter(bot=bot)
    return rows.order_by("-created_at", "-id")


def regime_latest_map() -> dict[str, RegimeReading]:
    """The latest regime reading per symbol (market-wide)."""
    readings = RegimeReading.objects.select_related("instrument").order_by("instrument_id", "-as_of").distinct(
        "instrument_id"
    )
    return {reading.instrument.symbol: reading for reading in readings}


def paper_balances(*, portfolio) -> dict[str, Balance]:
    from portfolios.selectors import cash_balance_list, position_list

    zero = Decimal("0")
    balances = {
        row.currency: Balance(currency=row.currency, free=row.amount, used=zero)
        for row in cash_balance_list(portfolio=portfolio)
    }
    for position in position_list(portfolio=portfolio):
        base = position.instrument.base
        balances[base] = Balance(currency=base, free=position.quantity, used=zero)
    return balances
