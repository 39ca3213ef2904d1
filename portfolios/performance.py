"""Performance figures from a value series: total return, time-weighted return, max drawdown, volatility.

Pure functions; docs/portfolio-math.md gives the formulas with a worked example (tests check it).
A series is the closing value of each day (the snapshots) plus, last, the live value now. Each point
carries the net money added since the previous point; it is assumed to arrive at the START of the
interval, so it earns (or loses) the interval's return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from core.money import ZERO
from portfolios.choices import Period
from portfolios.ledger import CONTEXT

ONE = Decimal(1)
HUNDRED = Decimal(100)
PCT = Decimal("0.01")
# Crypto markets trade every day of the year.
PERIODS_PER_YEAR = Decimal(365)


@dataclass(frozen=True)
class SeriesPoint:
    day: date
    value: Decimal
    flow: Decimal = ZERO
    live: bool = False


@dataclass(frozen=True)
class Performance:
    period: str
    start: date | None  # the day whose close is the starting value; None: since the first point
    start_value: Decimal
    end_value: Decimal
    net_flow: Decimal
    inflow: Decimal
    gain: Decimal
    total_return_pct: Decimal | None
    twr_pct: Decimal | None
    max_drawdown_pct: Decimal | None
    volatility_pct: Decimal | None
    intervals: int

    @property
    def label(self) -> str:
        return Period(self.period).label


def _months_back(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def period_start(period: str, today: date) -> date | None:
    """The day whose closing value a period starts from (UTC). None for all time."""
    if period == Period.DAY:
        return today - timedelta(days=1)
    if period == Period.WEEK:
        return today - timedelta(days=7)
    if period == Period.MONTH:
        return _months_back(today, 1)
    if period == Period.YTD:
        return date(today.year - 1, 12, 31)
    if period == Period.YEAR:
        return _months_back(today, 12)
    if period == Period.ALL:
        return None
    raise ValueError(f"unknown period {period!r}")


def _pct(fraction: Decimal | None) -> Decimal | None:
    if fraction is None:
        return None
    return (fraction * HUNDRED).quantize(PCT, context=CONTEXT)


def interval_returns(start_value: Decimal, points: list[SeriesPoint]) -> list[Decimal | None]:
    """r_i = V_i / (V_{i-1} + F_i) - 1; None where nothing was invested during the interval."""
    returns: list[Decimal | None] = []
    previous = start_value
    for point in points:
        invested = previous + point.flow
        returns.append(CONTEXT.divide(point.value, invested) - ONE if invested > 0 else None)
        previous = point.value
    return returns


def time_weighted_return(returns: list[Decimal | None]) -> Decimal | None:
    known = [r for r in returns if r is not None]
    if not known:
        return None
    growth = ONE
    for r in known:
        growth = CONTEXT.multiply(growth, ONE + r)
    return growth - ONE


def max_drawdown(returns: list[Decimal | None]) -> Decimal | None:
    """Largest fall of the time-weighted index from its running peak (<= 0); None without returns."""
    known = [r for r in returns if r is not None]
    if not known:
        return None
    index = peak = ONE
    worst = ZERO
    for r in known:
        index = CONTEXT.multiply(index, ONE + r)
        peak = max(peak, index)
        worst = min(worst, CONTEXT.divide(index, peak) - ONE)
    return worst


def volatility(daily_returns: list[Decimal]) -> Decimal | None:
    """Annualized: sample standard deviation of daily returns times sqrt(365); None below two returns."""
    n = len(daily_returns)
    if n < 2:
        return None
    mean = CONTEXT.divide(sum(daily_returns, ZERO), Decimal(n))
    variance = CONTEXT.divide(
        sum((CONTEXT.multiply(r - mean, r - mean) for r in daily_returns), ZERO), Decimal(n - 1)
    )
    return CONTEXT.multiply(variance.sqrt(CONTEXT), PERIODS_PER_YEAR.sqrt(CONTEXT))


def performance(
    *, period: str, start: date | None, start_value: Decimal, points: list[SeriesPoint]
) -> Performance:
    """Figures for the points after `start` (whose close was `start_value`)."""
    returns = interval_returns(start_value, points)
    end_value = points[-1].value if points else start_value
    net_flow = sum((p.flow for p in points), ZERO)
    inflow = sum((p.flow for p in points if p.flow > 0), ZERO)
    gain = end_value - start_value - net_flow
    capital = start_value + inflow
    daily = [r for r, p in zip(returns, points, strict=True) if r is not None and not p.live]
    return Performance(
        period=period,
        start=start,
        start_value=start_value,
        end_value=end_value,
        net_flow=net_flow,
        inflow=inflow,
        gain=gain,
        total_return_pct=_pct(CONTEXT.divide(gain, capital)) if capital > 0 else None,
        twr_pct=_pct(time_weighted_return(returns)),
        max_drawdown_pct=_pct(max_drawdown(returns)),
        volatility_pct=_pct(volatility(daily)),
        intervals=sum(1 for r in returns if r is not None),
    )
