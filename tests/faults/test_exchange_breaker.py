"""Drill: the exchange answers 5xx or times out while orders are being sent.

Six market orders go to Binance (the recorded venue at the HTTP boundary, as in tests/trading) the way the
`trading.order_submit` task sends them, retries included. The venue is down: the first order's answer is
lost after the venue took it (a timeout), the next calls answer 503. The breaker must open after
TRADING_BREAKER_THRESHOLD failures and then keep every further call away from the venue; the trader's trade
page must show the venue degraded. When the cool-down is over (ended by the drill) and the venue is back, the same retries must
leave exactly one order at the venue per order and one fill, one portfolio transaction each: nothing lost,
nothing twice.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from core.rls import system_context, tenant
from portfolios.choices import PortfolioKind
from portfolios.models import Transaction
from portfolios.services import portfolio_create
from tests.trading.binance import binance_connection, order_body, query_order_body
from trading.connections.selectors import venue_health
from trading.exchanges.base import ExchangeUnavailable, OrderStatusUnknown
from trading.exchanges.breaker import breaker_reset
from trading.models import Fill, Order
from trading.orders import services

ORDERS = 6


class Venue:
    """Binance's order endpoints with an outage switch; remembers every order it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.lose_next_answer = True
        self.accepted: dict[str, int] = {}  # client order id -> venue order id
        self.placements: list[str] = []  # every accepted placement, duplicates included

    def place(self, params):
        client_id = params["newClientOrderId"]
        if self.down and not self.lose_next_answer:
            return 503, {"code": -1008, "msg": "Service Unavailable."}
        self.placements.append(client_id)
        self.accepted.setdefault(client_id, 30000 + len(self.accepted))
        if self.lose_next_answer:  # the venue took it; the answer never arrives
            self.lose_next_answer = False
            raise requests.Timeout("read timed out")
        return 200, self._body(order_body, client_id)

    def query(self, params):
        client_id = params["origClientOrderId"]
        if self.down:
            return 503, {"code": -1008, "msg": "Service Unavailable."}
        if client_id not in self.accepted:
            return 400, {"code": -2013, "msg": "Order does not exist."}
        return 200, self._body(query_order_body, client_id)

    def _body(self, build, client_id: str) -> dict:
        order_id = self.accepted[client_id]
        body = build(client_order_id=client_id, order_id=order_id)
        for fill in body.get("fills", []):
            fill["tradeId"] = order_id
        return body


def submit(order_id) -> str:
    """What the task does once: the outcome (its autoretry retries ExchangeUnavailable / OrderStatusUnknown)."""
    try:
        return services.order_submit(order_id=order_id).status
    except (ExchangeUnavailable, OrderStatusUnknown) as error:
        return "retry: degraded" if "degraded" in str(error) else f"retry: {type(error).__name__}"


@pytest.mark.django_db(transaction=True)
def test_the_breaker_opens_and_no_order_is_lost_or_doubled(
    user_a, recorded_binance, btc_quote, client, settings, drill_report
):
    settings.TRADING_BREAKER_COOLDOWN_SECONDS = 600  # it stays open until the drill ends the cool-down
    venue = Venue()
    recorded_binance.handlers[("POST", "/api/v3/order")] = venue.place
    recorded_binance.handlers[("GET", "/api/v3/order")] = venue.query
    connection = binance_connection(user_a)
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Binance account", base_currency="USDT",
                                     kind=PortfolioKind.EXCHANGE, exchange_connection_id=connection.pk)
        orders = [
            services.order_place(user=user_a, portfolio=portfolio, connection=connection, symbol="BTC/USDT",
                                 side="buy", type="market", quantity=Decimal("0.01"))
            for _ in range(ORDERS)
        ]

    # The outage: every order is tried once, as the task's first run does.
    sent_before = len(recorded_binance.requests)
    with tenant(user_a.pk):
        outcomes = [submit(order.pk) for order in orders]
    venue_calls_in_outage = len(recorded_binance.requests) - sent_before
    assert venue_health(venue="binance").degraded
    refused_by_breaker = outcomes.count("retry: degraded")
    assert refused_by_breaker >= ORDERS - settings.TRADING_BREAKER_THRESHOLD
    client.force_login(user_a)
    page = client.get("/trading/").content.decode()
    assert "binance: degraded" in page, "the trader sees the venue degraded"

    # More retries while it is open reach nobody.
    sent_open = len(recorded_binance.requests)
    with tenant(user_a.pk):
        assert all(submit(order.pk) == "retry: degraded" for order in orders)
    assert len(recorded_binance.requests) == sent_open, "nothing is sent while the breaker is open"

    # The venue is back and the cool-down is over (its expiry is the cache entry's; ended here rather than
    # waited for, so the drill does not depend on how fast the host runs it). The task's retries run until
    # every order is settled.
    venue.down = False
    remaining = venue_health(venue="binance").retry_after_seconds
    breaker_reset(venue="binance")
    assert not venue_health(venue="binance").degraded
    with tenant(user_a.pk):
        for _ in range(3):
            pending = [order for order in orders if Order.objects.get(pk=order.pk).status == "new"]
            for order in pending:
                submit(order.pk)
    with system_context(reason="drill: what reached the portfolio"):
        statuses = [Order.objects.get(pk=order.pk).status for order in orders]
        fills = Fill.objects.filter(order__in=[o.pk for o in orders]).count()
        transactions = Transaction.objects.filter(portfolio=portfolio, kind="buy").count()
    duplicates = len(venue.placements) - len(set(venue.placements))
    drill_report.update(
        orders=ORDERS,
        venue_calls_during_outage=venue_calls_in_outage,
        refused_by_breaker=refused_by_breaker,
        breaker_threshold=settings.TRADING_BREAKER_THRESHOLD,
        cooldown_left_when_ended_s=remaining,
        filled=statuses.count("filled"),
        orders_at_venue=len(venue.accepted),
        duplicate_placements=duplicates,
        fills=fills,
        portfolio_transactions=transactions,
    )
    assert statuses == ["filled"] * ORDERS
    assert len(venue.accepted) == ORDERS and duplicates == 0
    assert fills == ORDERS and transactions == ORDERS
