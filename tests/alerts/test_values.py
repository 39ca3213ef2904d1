"""Portfolio value and position P&L alerts, evaluated from the ticks of the symbols the portfolio holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.choices import AlertKind, AlertState, PnlUnit
from alerts.evaluator import Evaluator
from alerts.models import Alert, AlertFiring
from alerts.services import alert_create
from core.errors import DomainError
from core.rls import system_context, tenant
from marketdata.models import Quote
from portfolios.services import portfolio_create, transaction_record
from tests.alerts.conftest import Ticker


def _quote(instrument, price) -> None:
    now = timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.update_or_create(
            instrument=instrument,
            defaults={"price": Decimal(price), "source": "test", "at": now, "updated_at": now},
        )


@pytest.fixture
def portfolio(user_a, btc):
    """Main: 0.5 BTC bought at 20,000 USDT, valued in USDT."""
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        transaction_record(
            user=user_a,
            portfolio=portfolio,
            kind="buy",
            instrument=btc,
            quantity=Decimal("0.5"),
            price=Decimal("20000"),
            executed_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
    return portfolio


def _fired(results) -> list[tuple[str, str]]:
    return [(r.firing.alert.kind, r.firing.message) for r in results if r.status == "fired"]


def test_portfolio_value_and_position_pnl_alerts_fire_on_the_crossing(user_a, btc, portfolio):
    value = alert_create(user=user_a, kind=AlertKind.PORTFOLIO_ABOVE, portfolio=portfolio, threshold="11000")
    loss = alert_create(
        user=user_a,
        kind=AlertKind.POSITION_PNL_BELOW,
        portfolio=portfolio,
        symbol="BTC/USDT",
        pnl_unit=PnlUnit.PERCENT,
        threshold="-10",
        note="cut it",
    )
    gain = alert_create(
        user=user_a,
        kind=AlertKind.POSITION_PNL_ABOVE,
        portfolio=portfolio,
        symbol="BTC/USDT",
        pnl_unit=PnlUnit.ABSOLUTE,
        threshold="1500",
    )
    assert str(loss) == "BTC/USDT P&L in Main falls below -10%"
    evaluator = Evaluator(value_every=0)
    ticker = Ticker("BTC/USDT", "20000")
    _quote(btc, "20000")
    assert evaluator.process([ticker.to("20000.5")]) == []  # first sighting: value recorded, nothing crossed
    _quote(btc, "22100")  # value 11,050; P&L +1,050
    assert _fired(evaluator.process([ticker.to("22100")])) == [
        ("portfolio_above", "Main rose above 11,000.00 USDT (now 11,050.00 USDT)."),
    ]
    _quote(btc, "23100")  # P&L +1,550
    assert _fired(evaluator.process([ticker.to("23100")])) == [
        ("position_pnl_above", "BTC/USDT P&L in Main rose above 1,500.00 USDT (now 1,550.00 USDT)."),
    ]
    _quote(btc, "17900")  # -10.5%
    assert _fired(evaluator.process([ticker.to("17900")])) == [
        ("position_pnl_below", "BTC/USDT P&L in Main fell below -10% (now -10.50%). Note: cut it"),
    ]
    with tenant(user_a.pk):
        assert {a.pk: a.state for a in Alert.objects.all()} == {
            value.pk: AlertState.TRIGGERED,
            loss.pk: AlertState.TRIGGERED,
            gain.pk: AlertState.TRIGGERED,
        }


def test_two_evaluators_see_one_sequence_of_values(user_a, btc, portfolio):
    alert_create(user=user_a, kind=AlertKind.PORTFOLIO_BELOW, portfolio=portfolio, threshold="9000")
    first, second = Evaluator(value_every=0), Evaluator(value_every=0)
    ticker = Ticker("BTC/USDT", "20000")
    _quote(btc, "20000")
    first.process([ticker.to("20001")])
    _quote(btc, "17000")
    tick = ticker.to("17000")
    assert len(_fired(first.process([tick]))) == 1
    assert _fired(second.process([tick])) == []
    with system_context(reason="test"):
        assert AlertFiring.objects.count() == 1


def test_other_symbols_ticks_and_throttling_do_not_revalue(user_a, btc, eth, portfolio):
    alert_create(user=user_a, kind=AlertKind.PORTFOLIO_ABOVE, portfolio=portfolio, threshold="11000")
    evaluator = Evaluator(value_every=3600)
    _quote(btc, "20000")
    evaluator.process([Ticker("BTC/USDT", "20000").to("20001")])
    _quote(btc, "30000")
    assert evaluator.process([Ticker("ETH/USDT", "1600").to("1700")]) == []  # Main holds no ETH
    assert evaluator.process([Ticker("BTC/USDT", "20001").to("30000")]) == []  # revalued at most once an hour
    with tenant(user_a.pk):
        assert Alert.objects.get().last_value == Decimal("10000.00000000")


def test_bad_portfolio_alert_input(user_a, user_b, btc, eth, portfolio):
    with pytest.raises(DomainError, match="Choose a portfolio."):
        alert_create(user=user_a, kind=AlertKind.PORTFOLIO_ABOVE, threshold="100")
    with pytest.raises(DomainError, match="No such portfolio."):
        alert_create(user=user_b, kind=AlertKind.PORTFOLIO_ABOVE, portfolio=portfolio, threshold="100")
    with pytest.raises(DomainError, match="The portfolio value must be greater than zero."):
        alert_create(user=user_a, kind=AlertKind.PORTFOLIO_BELOW, portfolio=portfolio, threshold="-1")
    with pytest.raises(DomainError, match="Main has no ETH/USDT position."):
        alert_create(
            user=user_a,
            kind=AlertKind.POSITION_PNL_ABOVE,
            portfolio=portfolio,
            symbol="ETH/USDT",
            pnl_unit=PnlUnit.ABSOLUTE,
            threshold="10",
        )
    with pytest.raises(DomainError, match="amount or a percent"):
        alert_create(
            user=user_a,
            kind=AlertKind.POSITION_PNL_ABOVE,
            portfolio=portfolio,
            symbol="BTC/USDT",
            threshold="10",
        )
