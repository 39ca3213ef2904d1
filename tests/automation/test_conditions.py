"""A rule's conditions: what the rule form accepts (field errors naming the field), and what each kind sees
in the trader's live data when a run starts (the observed value is what the run page shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from automation.conditions import condition_clean, condition_describe, condition_evaluate
from core.errors import DomainError
from core.rls import system_context, tenant
from portfolios.choices import TransactionKind
from portfolios.services import transaction_record
from tests.factories import UserFactory
from trading.models import RegimeReading

pytestmark = pytest.mark.django_db

# Monday 2026-11-30 13:30 UTC (14:30 in Paris, 08:30 in New York)
MONDAY_1330 = datetime(2026, 11, 30, 13, 30, tzinfo=UTC)


def _clean(user, **raw) -> dict:
    with tenant(user.pk):
        return condition_clean(user=user, raw=raw)


def _evaluate(user, condition: dict, now: datetime = MONDAY_1330) -> dict:
    with tenant(user.pk):
        return condition_evaluate(user=user, condition=condition, now=now)


def _field_error(user, **raw) -> tuple[str, str]:
    with pytest.raises(DomainError) as raised:
        _clean(user, **raw)
    return raised.value.field, str(raised.value)


def test_bad_conditions_are_refused_naming_the_field(user_a, user_b, paper):
    portfolio, _ = paper
    assert _field_error(user_a, kind="moon")[0] == "condition_kind"
    assert _field_error(user_a, kind="portfolio_value", portfolio_id=999_999, op=">", value="1") == (
        "condition_portfolio", "Choose one of your portfolios."
    )
    # another trader's portfolio is not one of yours
    assert _field_error(user_b, kind="portfolio_value", portfolio_id=portfolio.pk, op=">", value="1")[0] == (
        "condition_portfolio"
    )
    assert _field_error(user_a, kind="portfolio_value", portfolio_id=portfolio.pk, op="~", value="1")[0] == (
        "condition_op"
    )
    assert _field_error(user_a, kind="portfolio_value", portfolio_id=portfolio.pk, op=">", value="lots")[0] == (
        "condition_value"
    )
    assert _field_error(user_a, kind="time_window", start="25:00", end="10:00")[0] == "condition_start"
    assert _field_error(user_a, kind="time_window", start="09:00", end="09:00") == (
        "condition_end", "The window must not start and end at the same time."
    )
    assert _field_error(user_a, kind="time_window", start="09:00", end="17:00", days=["9"])[0] == "condition_days"
    assert _field_error(user_a, kind="time_window", start="09:00", end="17:00", days=["x"])[0] == "condition_days"
    assert _field_error(user_a, kind="regime", symbol="BTC/USDT", regime="euphoric")[0] == "condition_regime"


def test_clean_conditions_are_stored_normalised_and_described(user_a, paper):
    portfolio, _ = paper
    size = _clean(user_a, kind="position_size", portfolio_id=str(portfolio.pk), op=">=", value="0.50",
                  symbol="BTC/USDT")
    assert size == {"kind": "position_size", "portfolio_id": portfolio.pk, "op": ">=", "value": "0.5",
                    "symbol": "BTC/USDT"}
    assert condition_describe(size) == "BTC/USDT position is at least 0.5"
    window = _clean(user_a, kind="time_window", start="9:05", end="17:00", days=["4", "0", "0"])
    assert window == {"kind": "time_window", "start": "09:05", "end": "17:00", "days": [0, 4]}
    assert condition_describe(window) == "Between 09:05 and 17:00 (Mon, Fri, your time zone)"
    every_day = _clean(user_a, kind="time_window", start="22:00", end="02:00")
    assert condition_describe(every_day) == "Between 22:00 and 02:00 (every day, your time zone)"
    regime = _clean(user_a, kind="regime", symbol="BTC/USDT", regime="bullish")
    assert condition_describe(regime) == "BTC/USDT regime is bullish"


def test_a_time_window_is_read_in_the_traders_time_zone_and_may_cross_midnight(paper):
    paris = UserFactory(time_zone="Europe/Paris")
    business_hours = {"kind": "time_window", "start": "14:00", "end": "15:00", "days": [0, 1, 2, 3, 4]}
    seen = _evaluate(paris, business_hours)
    assert seen["passed"] is True and seen["observed"] == "Mon 14:30 CET"
    assert _evaluate(paris, {**business_hours, "days": [5, 6]})["passed"] is False  # weekends only
    assert _evaluate(paris, business_hours, MONDAY_1330 + timedelta(hours=1))["passed"] is False  # 15:30

    overnight = {"kind": "time_window", "start": "22:00", "end": "02:00", "days": list(range(7))}
    assert _evaluate(paris, overnight)["passed"] is False
    assert _evaluate(paris, overnight, MONDAY_1330 + timedelta(hours=9))["passed"] is True  # 23:30 Paris
    assert _evaluate(paris, overnight, MONDAY_1330 + timedelta(hours=11, minutes=29))["passed"] is True  # 01:59
    assert _evaluate(paris, overnight, MONDAY_1330 + timedelta(hours=11, minutes=30))["passed"] is False  # 02:00


def test_position_size_compares_the_held_quantity(user_a, paper):
    portfolio, _ = paper
    at_least_half = {"kind": "position_size", "portfolio_id": portfolio.pk, "op": ">=", "value": "0.5",
                     "symbol": "BTC/USDT"}
    none_held = _evaluate(user_a, at_least_half)
    assert none_held == {**none_held, "observed": "0", "passed": False}

    from marketdata.selectors import instrument_get

    with tenant(user_a.pk):
        transaction_record(
            user=user_a, portfolio=portfolio, kind=TransactionKind.BUY, instrument=instrument_get(symbol="BTC/USDT"),
            quantity=Decimal("0.5"), price=Decimal("20000"), executed_at=timezone.now(), external_id="buy-1",
        )
    held = _evaluate(user_a, at_least_half)
    assert held["observed"] == "0.5" and held["passed"] is True
    assert _evaluate(user_a, {**at_least_half, "op": ">"})["passed"] is False


def test_portfolio_value_is_the_valuation_in_the_base_currency(user_a, paper):
    portfolio, _ = paper  # 10,000 USDT cash
    above = {"kind": "portfolio_value", "portfolio_id": portfolio.pk, "op": ">", "value": "9999.99"}
    seen = _evaluate(user_a, above)
    assert seen["observed"] == "10000 USDT" and seen["passed"] is True
    assert _evaluate(user_a, {**above, "op": "<"})["passed"] is False


def test_a_condition_that_cannot_be_read_fails_and_says_why(user_a, user_b, paper):
    portfolio, _ = paper
    foreign = {"kind": "portfolio_value", "portfolio_id": portfolio.pk, "op": ">", "value": "0"}
    seen = _evaluate(user_b, foreign)  # the portfolio is user_a's: invisible to user_b, never read
    assert seen["passed"] is False and seen["observed"].startswith("unavailable")


def test_a_regime_condition_reads_the_latest_reading(user_a, instruments):
    condition = {"kind": "regime", "symbol": "BTC/USDT", "regime": "bullish"}
    assert _evaluate(user_a, condition) | {"description": ""} == {
        "kind": "regime", "description": "", "observed": "no reading yet", "passed": False
    }
    with system_context(reason="tests: the gatekeeper's readings"):
        for minutes, regime in ((10, "bearish"), (5, "bullish")):
            RegimeReading.objects.create(
                instrument=instruments["BTC/USDT"], timeframe="1h", as_of=MONDAY_1330 - timedelta(minutes=minutes),
                regime=regime, sma_slope_pct=Decimal("0.1"), adx=Decimal("30"),
            )
    seen = _evaluate(user_a, condition)
    assert seen["observed"] == "bullish" and seen["passed"] is True
    assert _evaluate(user_a, {**condition, "regime": "bearish"})["passed"] is False
