"""The offline planner reads price levels as traders write them, exactly (no float rounding)."""

from __future__ import annotations

import pytest

from bot.companion.providers.offline import _level


@pytest.mark.parametrize(
    ("question", "level"),
    [
        ("alert me when BTC goes above 70,000", "70000"),
        ("alert me when BTC goes above 70k", "70000"),
        ("alert me when BTC goes above 70.25k", "70250"),
        ("alert me when BTC goes above 1.0001k", "1000.1"),
        ("alert me when ETH drops below 1,234.5", "1234.5"),
    ],
)
def test_levels(question, level):
    assert _level(question.lower(), ["BTC"]) == level
