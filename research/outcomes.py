"""A published thesis's outcome, from the stored one-minute candles after it was first published.

- Long: the target is hit when a candle's high reaches it, the stop when a low reaches it; short mirrors it.
- The first candle (from the first publication on, before the horizon ends) that reaches either decides.
  When one candle reaches both, the order inside that minute is unknown: it counts as a stop hit (the
  record never flatters an author).
- Not reached by the end of the horizon day (UTC), and the stored candles cover that whole day: expired.
  Otherwise open (also while the candles have not reached the horizon's end yet: no data, no verdict).
- The entry is the author's planned price; the outcome does not wait for it to trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from marketdata.selectors import candle_first_reaching, candle_latest_open_time
from research.choices import Direction, Outcome

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Verdict:
    outcome: str
    at: datetime | None = None
    price: Decimal | None = None


def horizon_end(horizon: date) -> datetime:
    """The thesis expires at the end of its horizon day, UTC."""
    return datetime.combine(horizon + timedelta(days=1), time(0, 0), tzinfo=UTC)


def thesis_verdict(
    *,
    symbol: str,
    direction: str,
    target: Decimal,
    stop: Decimal,
    horizon: date,
    since: datetime,
    now: datetime,
) -> Verdict:
    end = min(horizon_end(horizon), now)
    if direction == Direction.LONG:
        high_level, low_level = target, stop
    else:
        high_level, low_level = stop, target
    bar = None
    if since < end:
        # A candle that opened before the publication may have traded the level before it: start at the next.
        first_minute = since.replace(second=0, microsecond=0)
        if first_minute < since:
            first_minute += MINUTE
        bar = candle_first_reaching(
            symbol=symbol, start=first_minute, end=end, high_at_least=high_level, low_at_most=low_level
        )
    if bar is not None:
        if direction == Direction.LONG:
            stopped, won = bar.low <= stop, bar.high >= target
        else:
            stopped, won = bar.high >= stop, bar.low <= target
        if stopped:
            return Verdict(Outcome.STOP_HIT, bar.open_time, stop)
        if won:
            return Verdict(Outcome.TARGET_HIT, bar.open_time, target)
    expiry = horizon_end(horizon)
    latest = candle_latest_open_time(symbol=symbol)
    if now >= expiry and latest is not None and latest + MINUTE >= expiry:
        return Verdict(Outcome.EXPIRED, expiry, None)
    return Verdict(Outcome.OPEN)
