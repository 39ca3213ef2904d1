"""Fixtures of the public API tests: a seeded trader (paper portfolio with cash, a transaction, an open
order, an Enterprise plan so the rate limit does not cut a long run short) and API clients with tokens."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from billing.choices import PlanCode
from core.rls import tenant
from tests.factories import SubscriptionFactory, UserFactory, api_token_for
from tests.trading.binance import recorded_binance  # noqa: F401 (fixture)
from tests.trading.conftest import btc_quote, instruments, paper_setup  # noqa: F401 (fixtures)


def token_client(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


@dataclass
class Trader:
    user: object
    token: str
    portfolio: object
    connection: object
    order_id: str

    @property
    def api(self) -> APIClient:
        return token_client(self.token)


def seed_trader(email: str, *, plan: str = PlanCode.ENTERPRISE) -> Trader:
    from trading.choices import OrderSide, OrderSource, OrderType
    from trading.orders.services import order_place

    user = UserFactory(email=email)
    if plan != PlanCode.FREE:
        SubscriptionFactory(user=user, plan=plan)
    portfolio, connection = paper_setup(user)
    with tenant(user.pk):
        order = order_place(
            user=user,
            connection=connection,
            portfolio=portfolio,
            symbol="BTC/USDT",
            side=OrderSide.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal("0.1"),
            price=Decimal("19000"),
            source=OrderSource.API,
        )
    return Trader(
        user=user,
        token=api_token_for(user),
        portfolio=portfolio,
        connection=connection,
        order_id=str(order.pk),
    )


@pytest.fixture
def trader(btc_quote) -> Trader:  # noqa: F811
    return seed_trader("trader@example.com")


@pytest.fixture
def other_trader(btc_quote) -> Trader:  # noqa: F811
    return seed_trader("other@example.com")


# --- the markets and trading API tests: two traders with token clients and funded paper accounts -----------


def user_client(user, **token_args) -> Client:
    """A client sending a new token of `user` (`scopes=` as api_token_for takes them)."""
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user, **token_args)}"
    return client


@pytest.fixture
def api_a(user_a, instruments):  # noqa: F811
    return user_client(user_a)


@pytest.fixture
def api_b(user_b, instruments):  # noqa: F811
    return user_client(user_b)


@pytest.fixture
def paper_a(user_a, btc_quote):  # noqa: F811
    return paper_setup(user_a)


@pytest.fixture
def paper_b(user_b, btc_quote):  # noqa: F811
    return paper_setup(user_b)
