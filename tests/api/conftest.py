"""Fixtures of the API tests: token-authenticated clients of two traders, listed pairs, funded paper accounts."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import api_token_for
from tests.trading.binance import recorded_binance  # noqa: F401  (fixture)
from tests.trading.conftest import btc_quote, instruments, paper_setup  # noqa: F401  (fixtures)


def token_client(user, **token_args) -> Client:
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user, **token_args)}"
    return client


@pytest.fixture
def api_a(user_a, instruments):  # noqa: F811
    return token_client(user_a)


@pytest.fixture
def api_b(user_b, instruments):  # noqa: F811
    return token_client(user_b)


@pytest.fixture
def paper_a(user_a, btc_quote):  # noqa: F811
    return paper_setup(user_a)


@pytest.fixture
def paper_b(user_b, btc_quote):  # noqa: F811
    return paper_setup(user_b)
