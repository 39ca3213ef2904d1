"""The statistics traders check, in Decimal (docs/strategy-math.md defines each with a worked example).

Pure functions, no queries. Money is Decimal throughout; ratios (win rate, profit factor, Sharpe, Sortino,
returns) are Decimal too, computed with 34 significant digits (square roots by `Decimal.sqrt`) and rounded
only for display.

Assumptions: daily returns are annualised with sqrt(365) (crypto markets trade every day) and the risk-free
rate is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal, localcontext

from core.money import ZERO

CONTEXT = Context(prec=34)
DAYS_PER_YEAR = 365
RISK_FREE_RATE = ZERO


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    net_pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    fees: Decimal
    win_rate: Decimal | None
    average_win: Decimal | None
    average_loss: Decimal | None
    profit_factor: Decimal | None
    expectancy: Decimal | None


def trade_stats(pnls: Sequence[Decimal], fees: Sequence[Decimal] = ()) -> TradeStats:
    """Over closed round trips' P&L (fees already in them). A trade that made exactly 0 is neither a win nor
    a loss but counts in the number of trades."""
    with localcontext(CONTEXT):
        wins = [p for p in pnls if p > 0]
        losses = [p for p in pnls if p < 0]
        gross_profit = sum(wins, ZERO)
        gross_loss = sum(losses, ZERO)
        net = gross_profit + gross_loss
        n = len(pnls)
        return TradeStats(
            trades=n,
            wins=len(wins),
            losses=len(losses),
            net_pnl=net,
            gross_profit=gross_profit,
            gross_loss=gross_loss,
            fees=sum(fees, ZERO),
            win_rate=Decimal(len(wins)) / n if n else None,
            average_win=gross_profit / len(wins) if wins else None,
            average_loss=gross_loss / len(losses) if losses else None,
            profit_factor=gross_profit / -gross_loss if losses else None,
            expectancy=net / n if n else None,
        )


@dataclass(frozen=True)
class EquityPoint:
    day: date
    pnl: Decimal  # realized so far + open positions valued at the day's close
    equity: Decimal  # capital + pnl


@dataclass(frozen=True)
class CurveStats:
    capital: Decimal
    daily_returns: tuple[Decimal, ...]
    max_drawdown: Decimal  # the largest fall from a peak, in money (>= 0)
    max_drawdown_pct: Decimal | None  # the same as a fraction of the peak (<= 0)
    sharpe: Decimal | None
    sortino: Decimal | None


def equity_points(pnl_by_day: Sequence[tuple[date, Decimal]], capital: Decimal) -> list[EquityPoint]:
    return [EquityPoint(day=day, pnl=pnl, equity=capital + pnl) for day, pnl in pnl_by_day]


def curve_stats(points: Sequence[EquityPoint], capital: Decimal) -> CurveStats:
    """Drawdown, Sharpe and Sortino of the daily equity `capital + P&L`, starting from `capital`."""
    with localcontext(CONTEXT):
        returns: list[Decimal] = []
        previous = capital
        peak = capital
        drawdown = ZERO
        drawdown_pct: Decimal | None = ZERO if capital > 0 else None
        for point in points:
            if previous > 0:
                returns.append((point.equity - previous) / previous)
            previous = point.equity
            peak = max(peak, point.equity)
            drawdown = max(drawdown, peak - point.equity)
            if peak > 0 and drawdown_pct is not None:
                drawdown_pct = min(drawdown_pct, point.equity / peak - 1)
        return CurveStats(
            capital=capital,
            daily_returns=tuple(returns),
            max_drawdown=drawdown,
            max_drawdown_pct=drawdown_pct,
            sharpe=sharpe_ratio(returns),
            sortino=sortino_ratio(returns),
        )


def _annualise() -> Decimal:
    return Decimal(DAYS_PER_YEAR).sqrt(CONTEXT)


def sharpe_ratio(returns: Sequence[Decimal]) -> Decimal | None:
    """mean(r - rf) / sample standard deviation(r) * sqrt(365); None with fewer than two days or no variation."""
    n = len(returns)
    if n < 2:
        return None
    with localcontext(CONTEXT):
        mean = sum(returns, ZERO) / n
        variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (n - 1)
        if variance == 0:
            return None
        return (mean - RISK_FREE_RATE) / variance.sqrt() * _annualise()


def sortino_ratio(returns: Sequence[Decimal]) -> Decimal | None:
    """mean(r - rf) / downside deviation * sqrt(365), the downside deviation being sqrt(sum(min(r, 0)^2) / n)
    over all n days; None with fewer than two days or no losing day."""
    n = len(returns)
    if n < 2:
        return None
    with localcontext(CONTEXT):
        downside = sum((min(r, ZERO) ** 2 for r in returns), ZERO) / n
        if downside == 0:
            return None
        mean = sum(returns, ZERO) / n
        return (mean - RISK_FREE_RATE) / downside.sqrt() * _annualise()


def exposure(intervals: Sequence[tuple], start, end) -> Decimal | None:
    """The share of [start, end] during which a position was open (intervals are (opened, closed) and do not
    overlap)."""
    if start is None or end is None or end <= start:
        return None
    with localcontext(CONTEXT):
        held = sum((_micros(min(b, end) - max(a, start)) for a, b in intervals if b > a), 0)
        return Decimal(held) / Decimal(_micros(end - start))


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)
