from __future__ import annotations

import pytest

from tests.bot.seed import market_seed, trader_seed


@pytest.fixture
def market(db):
    return market_seed()


@pytest.fixture
def seeded_a(user_a, market):
    return trader_seed(user_a, instruments=market)


@pytest.fixture
def seeded_b(user_b, market):
    return trader_seed(user_b, instruments=market)
