"""Reads of exchange connections. Each filters by user (RLS is the backstop, not the filter)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from trading.common import user_id_of
from trading.exchanges.breaker import VenueHealth, breaker_health
from trading.exchanges.registry import adapter_class
from trading.models import ExchangeConnection


def connection_list(*, user) -> QuerySet[ExchangeConnection]:
    return ExchangeConnection.objects.filter(user_id=user_id_of(user)).order_by("created_at", "id")


def connection_get(*, user, pk) -> ExchangeConnection:
    try:
        return connection_list(user=user).get(pk=int(pk))
    except (ExchangeConnection.DoesNotExist, TypeError, ValueError):
        raise Http404("No such exchange connection.") from None


def connection_trades_portfolio(*, connection: ExchangeConnection, portfolio) -> bool:
    """Paper connections trade paper portfolios, real exchanges the trader's other portfolios."""
    return adapter_class(connection.venue).trades_portfolio(portfolio)


def venue_health(*, venue: str) -> VenueHealth:
    """A venue's circuit breaker (never tripped for the paper exchange, which nothing can rate-limit)."""
    return breaker_health(venue=venue)
