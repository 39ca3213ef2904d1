"""Every statistic of docs/strategy-math.md on its worked example, exactly; and the page prints these numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from trading.tracker.journal import JournalFill, journal_build
from trading.tracker.selectors import breakdowns
from trading.tracker.stats import (
    curve_stats,
    equity_points,
    exposure,
    sharpe_ratio,
    sortino_ratio,
    trade_stats,
)

DOC = (Path(__file__).resolve().parents[3] / "docs" / "strategy-math.md").read_text()
CENT = D("0.01")
CLOSES = {
    date(2023, 3, 1): D("20500"), date(2023, 3, 2): D("21200"), date(2023, 3, 3): D("20300"),
    date(2023, 3, 4): D("20400"), date(2023, 3, 5): D("22100"),
}


def _fill(day, hour, side, quantity, price, fee, regime=""):
    return JournalFill(
        at=datetime(2023, 3, day, hour, tzinfo=UTC), symbol="BTC/USDT", base="BTC", quote="USDT", side=side,
        quantity=D(quantity), price=D(price), fee=D(fee), fee_currency="USDT", regime=regime,
        reason=f"{side} {day}", book="bot:1", ref=f"{day:02}{hour:02}",
    )


FILLS = [
    _fill(1, 10, "buy", "1", "20000", "20", "bullish"),
    _fill(2, 10, "sell", "1", "21000", "21"),
    _fill(2, 12, "buy", "1", "21000", "21", "sideways"),
    _fill(3, 12, "sell", "1", "20500", "20.5"),
    _fill(4, 0, "buy", "0.5", "20000", "10", "bullish"),
    _fill(5, 0, "sell", "0.5", "22000", "11"),
]


@pytest.fixture
def journal():
    return journal_build(FILLS, marks={}, closes=lambda symbol, day: CLOSES.get(day))


def test_round_trips_are_fifo_with_fees_in_cost_and_proceeds(journal):
    trips = journal.trips
    assert [(t.quantity, t.cost, t.pnl, t.fees) for t in trips] == [
        (D("1"), D("20020"), D("959"), D("41")),
        (D("1"), D("21021"), D("-541.5"), D("41.5")),
        (D("0.5"), D("10010"), D("979"), D("21")),
    ]
    assert [t.regime for t in trips] == ["bullish", "sideways", "bullish"]
    assert trips[0].entry_reason == "buy 1" and trips[0].exit_reason == "sell 2"
    assert all(t.closed for t in trips) and journal.realized == D("1396.5") and journal.unrealized == 0


def test_trade_statistics_match_the_worked_example(journal):
    stats = trade_stats([t.pnl for t in journal.closed], [t.fees for t in journal.closed])
    assert (stats.trades, stats.wins, stats.losses) == (3, 2, 1)
    assert stats.net_pnl == D("1396.5")
    assert stats.fees == D("103.5")
    assert stats.win_rate.quantize(D("0.0001")) == D("0.6667")
    assert stats.average_win == D("969")
    assert stats.average_loss == D("-541.5")
    assert stats.profit_factor.quantize(CENT) == D("3.58")
    assert stats.expectancy == D("465.5")
    for printed in ("1,396.50", "66.67 %", "**969**", "**−541.50**", "**3.58**", "**465.50**"):
        assert printed in DOC


def test_curve_statistics_match_the_worked_example(journal):
    assert journal.pnl_by_day == [
        (date(2023, 3, 1), D("480")), (date(2023, 3, 2), D("1138")), (date(2023, 3, 3), D("417.5")),
        (date(2023, 3, 4), D("607.5")), (date(2023, 3, 5), D("1396.5")),
    ]
    assert journal.capital == D("21021")
    curve = curve_stats(equity_points(journal.pnl_by_day, journal.capital), journal.capital)
    assert [r.quantize(D("0.0001")) for r in curve.daily_returns] == [
        D("0.0228"), D("0.0306"), D("-0.0325"), D("0.0089"), D("0.0365"),
    ]
    assert curve.max_drawdown == D("720.5")
    assert curve.max_drawdown_pct.quantize(D("0.0001")) == D("-0.0325")
    assert curve.sharpe.quantize(CENT) == D("9.17")
    assert curve.sortino.quantize(CENT) == D("17.41")
    assert exposure(journal.exposure_intervals, journal.start, journal.end).quantize(D("0.0001")) == D("0.8372")
    for printed in ("**21,021**", "**720.50**", "**−3.25 %**", "**9.17**", "**17.41**", "**83.72 %**"):
        assert printed in DOC


def test_breakdowns_per_regime_pair_and_week(journal):
    by_regime, by_pair, by_period = breakdowns(journal.closed)
    assert [(b.label, b.stats.trades, b.stats.net_pnl) for b in by_regime] == [
        ("Bullish", 2, D("1938")), ("Bearish", 0, D("0")), ("Sideways", 1, D("-541.5")),
    ]
    assert [(b.label, b.stats.trades) for b in by_pair] == [("BTC/USDT", 3)]
    assert [(b.label, b.stats.trades) for b in by_period] == [("Week of 2023-02-27", 3)]


def test_an_open_lot_is_an_open_trade_marked_to_market_and_a_partial_sell_splits_a_lot():
    fills = [FILLS[0], _fill(1, 12, "sell", "0.25", "22000", "5.5")]
    journal = journal_build(fills, marks={"BTC/USDT": D("21000")}, closes=lambda symbol, day: None)
    closed, still_open = journal.closed, journal.open
    assert [(t.quantity, t.cost, t.pnl) for t in closed] == [(D("0.25"), D("5005"), D("489.5"))]
    assert [(t.quantity, t.cost, t.pnl, t.mark_price) for t in still_open] == [
        (D("0.75"), D("15015"), D("735"), D("21000"))
    ]


def test_ratios_need_two_days_and_variation_or_a_losing_day():
    assert sharpe_ratio([D("0.01")]) is None
    assert sharpe_ratio([D("0.01"), D("0.01")]) is None
    assert sortino_ratio([D("0.01"), D("0.02")]) is None
    assert trade_stats([]).win_rate is None and trade_stats([D("5")]).profit_factor is None
