"""Plan limits: the one call site in trading (trading.entitlements) asks billing before a bot or a real connection is added."""

from __future__ import annotations

import pytest

from billing.services import PlanLimitExceeded
from core.rls import tenant
from tests.trading.binance import binance_connection
from tests.trading.conftest import make_bot
from trading.models import Bot, ExchangeConnection


def test_the_free_plan_allows_one_bot(user_a, paper_a):
    make_bot(user_a, paper_a, name="First")
    with pytest.raises(PlanLimitExceeded, match="trading bot"):
        make_bot(user_a, paper_a, name="Second")
    with tenant(user_a.pk):
        assert list(Bot.objects.values_list("name", flat=True)) == ["First"]


def test_the_free_plan_allows_one_real_exchange_connection_and_paper_is_free(user_a, paper_a, recorded_binance):
    binance_connection(user_a, label="Binance")
    with pytest.raises(PlanLimitExceeded, match="exchange connection"):
        binance_connection(user_a, label="Binance 2")
    with tenant(user_a.pk):
        assert sorted(ExchangeConnection.objects.values_list("venue", flat=True)) == ["binance", "paper"]
