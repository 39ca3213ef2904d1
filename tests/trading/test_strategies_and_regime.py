"""Strategies as pure functions, and the regime classifier on the real March 2023 BTC data."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import DomainError
from tests.trading.market_data import Bar, hourly_bars
from trading.decisions.regime import RegimeParams, regime_classify
from trading.decisions.strategies import dca, rsi_mean_reversion, sma_crossover, strategy_params_clean


def _bars(closes, start=datetime(2024, 1, 1, tzinfo=UTC), step=timedelta(minutes=1)):
    return [
        Bar(start + i * step, Decimal(c), Decimal(c), Decimal(c), Decimal(c), Decimal(1)) for i, c in enumerate(closes)
    ]


def _regimes_between(bars, start: datetime, end: datetime) -> Counter:
    params = RegimeParams()
    return Counter(
        regime_classify(bars[: i + 1], params).regime
        for i in range(params.candles_needed, len(bars))
        if start <= bars[i].open_time < end
    )


def test_the_march_8_to_10_decline_is_bearish_and_the_march_13_to_20_rally_bullish():
    bars = hourly_bars()
    at = {bar.open_time: i for i, bar in enumerate(bars)}

    def regime_at(day: int, hour: int) -> str:
        return regime_classify(bars[: at[datetime(2023, 3, day, hour, tzinfo=UTC)] + 1]).regime

    assert [regime_at(9, 12), regime_at(9, 23), regime_at(10, 12), regime_at(10, 23)] == ["bearish"] * 4
    assert [regime_at(13, 12), regime_at(14, 12), regime_at(18, 12), regime_at(19, 12), regime_at(20, 12)] == [
        "bullish"
    ] * 5

    decline = _regimes_between(bars, datetime(2023, 3, 8, 12, tzinfo=UTC), datetime(2023, 3, 11, tzinfo=UTC))
    rally = _regimes_between(bars, datetime(2023, 3, 13, 12, tzinfo=UTC), datetime(2023, 3, 21, tzinfo=UTC))
    assert decline["bullish"] == 0 and decline["bearish"] / decline.total() > 0.7
    assert rally["bearish"] == 0 and rally["bullish"] / rally.total() > 0.7


def test_a_flat_market_is_sideways_and_too_little_history_is_sideways():
    flat = _bars([100 + (i % 2) for i in range(200)], step=timedelta(hours=1))
    assert regime_classify(flat).regime == "sideways"
    assert regime_classify(flat[:10]).regime == "sideways"


def test_sma_crossover_buys_on_the_cross_up_and_sells_on_the_cross_down():
    falling_then_rising = [100 - i for i in range(30)] + [71 + 3 * i for i in range(12)]
    decisions = [sma_crossover(_bars(falling_then_rising[: n + 1]), fast=3, slow=8).action for n in range(len(falling_then_rising))]
    assert "buy" in decisions and "sell" not in decisions
    first_buy = decisions.index("buy")
    assert decisions.count("buy") == 1 and first_buy > 30
    rising_then_falling = [50 + i for i in range(30)] + [79 - 3 * i for i in range(12)]
    decisions = [sma_crossover(_bars(rising_then_falling[: n + 1]), fast=3, slow=8).action for n in range(len(rising_then_falling))]
    assert decisions.count("sell") == 1 and "buy" not in decisions


def test_rsi_mean_reversion_buys_when_oversold_recovers():
    closes = [100 - 2 * i for i in range(20)] + [70, 80, 90]
    actions = [rsi_mean_reversion(_bars(closes[: n + 1])).action for n in range(len(closes))]
    assert actions[-3:].count("buy") == 1 and "sell" not in actions


def test_dca_buys_on_its_schedule_only():
    bars = _bars([100] * 11)  # minute candles from 2024-01-01 00:00 UTC, a multiple of 5 minutes
    actions = [dca(bars[: n + 1], every=5).action for n in range(1, 11)]
    assert actions == ["hold", "hold", "hold", "hold", "buy", "hold", "hold", "hold", "hold", "buy"]


def test_strategy_parameters_are_validated_and_keyed():
    assert strategy_params_clean("sma_crossover", {"fast": "5"}) == ({"fast": 5, "slow": 21}, "fast=5,slow=21")
    with pytest.raises(DomainError, match="shorter"):
        strategy_params_clean("sma_crossover", {"fast": 30, "slow": 20})
    with pytest.raises(DomainError, match="no parameter"):
        strategy_params_clean("dca", {"fast": 3})
    with pytest.raises(DomainError, match="Unknown strategy"):
        strategy_params_clean("martingale", {})
