"""The tick evaluator: price and percent-move alerts, checked on every published tick in O(log n + k).

Design (docs/alerts.md has the long form):

- In memory, per series, a `CrossingIndex` of sorted Decimal thresholds: a series is ("price", symbol)
  or ("move", symbol, window_minutes). A tick p0 -> p1 finds the crossed alerts with two binary
  searches, whatever the number of armed alerts.
- Loaded from PostgreSQL through `system_context` (the alerts of every user: cross-tenant by nature) and
  kept current from the Redis change stream (alerts/changes.py), read once per batch of ticks, plus a
  full reload every RELOAD_EVERY in case an announcement was lost.
- Percent moves compare the price with the price `window` ago, from per-minute closes kept in memory
  (primed from the one-minute candles at load). The move is a series like a price, so crossing -5%
  is found the same way.
- Every candidate goes through `alerts.services.alert_fire`, which re-checks it against the locked row
  and records it under the (alert, occurrence) unique constraint: two evaluators, or the same tick
  twice, record one firing and one notification.
- It runs as the `alerts` tick consumer, a process of its own reading the feed's tick stream
  (`manage.py run_tick_consumer alerts`), so the feed never waits on alert writes.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.utils import timezone

from alerts.changes import alert_changes_head, alert_changes_since
from alerts.choices import WINDOW_LABELS, AlertKind, AlertState, directions_for
from alerts.crossing import CrossingIndex, Entry
from alerts.selectors import TickAlertRow, evaluator_state
from alerts.services import FireResult, alert_fire, value_alerts_evaluate
from marketdata.tick_consumers import TickHandler
from marketdata.types import TickEvent

logger = structlog.get_logger(__name__)

RELOAD_EVERY = 600.0  # seconds
# A portfolio is revalued for its value / P&L alerts at most this often (seconds of wall time).
VALUE_EVERY = 1.0
MOVE_PLACES = Decimal("0.0001")
HISTORY_MINUTES = max(WINDOW_LABELS) + 1


def entry_for(row: TickAlertRow) -> Entry | None:
    """The index entry of an alert that may fire on a tick, or None."""
    if row.state == AlertState.ARMED:
        not_before = None
    elif row.state == AlertState.TRIGGERED and row.repeat and row.rearm_at is not None:
        not_before = row.rearm_at
    else:
        return None
    if row.kind == AlertKind.PERCENT_MOVE:
        series = ("move", row.symbol, row.window_minutes)
    elif row.kind in (AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.PRICE_CROSS):
        series = ("price", row.symbol)
    else:
        return None
    return Entry(
        alert_id=row.id,
        user_id=row.user_id,
        series=series,
        threshold=row.threshold,
        directions=directions_for(row.kind, row.threshold),
        not_before=not_before,
        expires_at=row.expires_at,
    )


class MinuteCloses:
    """The last price of each minute, per symbol, for as long as the longest percent-move window."""

    def __init__(self) -> None:
        self._minutes: dict[str, list[int]] = {}
        self._closes: dict[str, list[Decimal]] = {}

    @staticmethod
    def _minute(at: datetime) -> int:
        return int(at.timestamp()) // 60

    def record(self, symbol: str, at: datetime, price: Decimal) -> None:
        minute = self._minute(at)
        minutes = self._minutes.setdefault(symbol, [])
        closes = self._closes.setdefault(symbol, [])
        if minutes and minutes[-1] == minute:
            closes[-1] = price
        elif not minutes or minutes[-1] < minute:
            minutes.append(minute)
            closes.append(price)
            if len(minutes) > 2 * HISTORY_MINUTES:
                del minutes[:-HISTORY_MINUTES]
                del closes[:-HISTORY_MINUTES]

    def has(self, symbol: str) -> bool:
        return bool(self._minutes.get(symbol))

    def price_at(self, symbol: str, at: datetime) -> Decimal | None:
        """The close of the last minute that started at or before `at` (None before the history)."""
        minutes = self._minutes.get(symbol)
        if not minutes:
            return None
        position = bisect_right(minutes, self._minute(at))
        return self._closes[symbol][position - 1] if position else None


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: Entry
    occurrence_key: str
    value: Decimal
    previous_value: Decimal


class Evaluator:
    """One process's view of the tick-evaluated alerts. Not thread-safe: one thread drives it."""

    def __init__(
        self,
        *,
        fire: Callable[..., FireResult] = alert_fire,
        candles: Callable[[str, int], Iterable[tuple[datetime, Decimal]]] | None = None,
        value_every: float = VALUE_EVERY,
    ) -> None:
        self.index = CrossingIndex()
        self.history = MinuteCloses()
        self._fire = fire
        self._candles = candles if candles is not None else _minute_candles
        self._moves: dict[tuple[str, int], Decimal] = {}
        self._windows: dict[str, set[int]] = {}
        self._stream_id: str | None = None
        self._loaded_at = 0.0
        self._value_portfolios: dict[int, int] = {}
        self._valued_at: dict[int, float] = {}
        self._value_pending: set[int] = set()
        self._value_every = value_every

    # --- keeping the index current ---------------------------------------------------------------------

    def load(self) -> None:
        head = alert_changes_head()  # before the query: changes committed meanwhile are replayed
        index = CrossingIndex()
        rows, self._value_portfolios = evaluator_state()
        for row in rows:
            entry = entry_for(row)
            if entry is not None:
                index.add(entry)
        self.index = index
        self._stream_id = head
        self._loaded_at = time.monotonic()
        self._reindex_windows()
        logger.info("alerts.evaluator_loaded", alerts=len(index))

    def refresh(self) -> None:
        if self._stream_id is None or time.monotonic() - self._loaded_at > RELOAD_EVERY:
            self.load()
            return
        self._stream_id, changed = alert_changes_since(self._stream_id)
        if changed:
            self.apply(changed)

    def apply(self, alert_ids: Iterable[int]) -> None:
        """Re-read these alerts from the database and index them as they are now."""
        alert_ids = set(alert_ids)
        found, self._value_portfolios = evaluator_state(ids=alert_ids)
        rows = {row.id: row for row in found}
        for alert_id in alert_ids:
            self.index.remove(alert_id)
            row = rows.get(alert_id)
            entry = entry_for(row) if row is not None else None
            if entry is not None:
                self.index.add(entry)
        self._reindex_windows()

    def _reindex_windows(self) -> None:
        windows: dict[str, set[int]] = {}
        for series in self.index.series():
            if series[0] == "move":
                windows.setdefault(series[1], set()).add(series[2])
        for symbol in windows.keys() - self._windows.keys():
            if not self.history.has(symbol):
                for at, close in self._candles(symbol, HISTORY_MINUTES):
                    self.history.record(symbol, at, close)
        self._windows = windows

    # --- evaluation ------------------------------------------------------------------------------------

    def candidates(self, tick: TickEvent, *, now: datetime) -> list[Candidate]:
        """The live alerts this tick crosses. Pure memory: O(log n + k) per series of the symbol."""
        key = f"{tick.symbol}@{tick.at.isoformat()}={tick.price}"
        found: list[Candidate] = []
        if tick.previous_price is not None:
            for entry in self.index.crossed(("price", tick.symbol), tick.previous_price, tick.price):
                if entry.live_at(now):
                    found.append(Candidate(entry, key, tick.price, tick.previous_price))
        self.history.record(tick.symbol, tick.at, tick.price)
        for window in self._windows.get(tick.symbol, ()):
            reference = self.history.price_at(tick.symbol, tick.at - timedelta(minutes=window))
            if not reference:
                continue
            move = ((tick.price - reference) / reference * 100).quantize(MOVE_PLACES)
            previous = self._moves.get((tick.symbol, window))
            self._moves[(tick.symbol, window)] = move
            if previous is None:
                continue
            for entry in self.index.crossed(("move", tick.symbol, window), previous, move):
                if entry.live_at(now):
                    found.append(Candidate(entry, key, move, previous))
        return found

    def process(self, ticks: Iterable[TickEvent], *, now: datetime | None = None) -> list[FireResult]:
        self.refresh()
        now = now or timezone.now()
        results: list[FireResult] = []
        touched: set[int] = set()
        for tick in ticks:
            for candidate in self.candidates(tick, now=now):
                touched.add(candidate.entry.alert_id)
                try:
                    results.append(
                        self._fire(
                            alert_id=candidate.entry.alert_id,
                            user_id=candidate.entry.user_id,
                            occurrence_key=candidate.occurrence_key,
                            value=candidate.value,
                            previous_value=candidate.previous_value,
                            now=now,
                        )
                    )
                except Exception:
                    logger.exception("alerts.fire_failed", alert_id=candidate.entry.alert_id)
        if touched:
            # Fired one-shots leave the index, repeating ones wait for their cooldown, deleted ones go.
            # Reading the stream first and the rows after covers the announcements of these firings too,
            # so the next batch does not re-read them on its way to the next toast.
            self._stream_id, changed = alert_changes_since(self._stream_id)
            self.apply(touched | changed)
        results += self.evaluate_values({tick.symbol for tick in ticks}, now=now)
        return results

    def evaluate_values(self, symbols: set[str], *, now: datetime) -> list[FireResult]:
        """Revalue the portfolios holding these symbols that have value / P&L alerts (throttled)."""
        if not self._value_portfolios:
            return []
        from portfolios.selectors import portfolio_holders

        for portfolio_ids in portfolio_holders(symbols=symbols).values():
            self._value_pending.update(p for p in portfolio_ids if p in self._value_portfolios)
        results: list[FireResult] = []
        clock = time.monotonic()
        for portfolio_id in sorted(self._value_pending):
            if clock - self._valued_at.get(portfolio_id, float("-inf")) < self._value_every:
                continue  # evaluated on a later batch, with the prices of then
            self._value_pending.discard(portfolio_id)
            self._valued_at[portfolio_id] = clock
            user_id = self._value_portfolios.get(portfolio_id)
            if user_id is None:
                continue
            try:
                results += value_alerts_evaluate(portfolio_id=portfolio_id, user_id=user_id, now=now)
            except Exception:
                logger.exception("alerts.value_evaluate_failed", portfolio_id=portfolio_id)
        return results


def _minute_candles(symbol: str, minutes: int) -> list[tuple[datetime, Decimal]]:
    from core.errors import DomainError
    from marketdata.selectors import candle_list

    try:
        return [
            (bar.open_time, bar.close) for bar in candle_list(symbol=symbol, timeframe="1m", limit=minutes)
        ]
    except DomainError:
        return []


class TickEvaluation(TickHandler):
    """The `alerts` tick consumer (`manage.py run_tick_consumer alerts`): every published batch, in
    order, through one Evaluator. A batch that fails is handled again (the consumer does not acknowledge
    it) by a fresh Evaluator loaded from the database; firing is idempotent per occurrence, so a tick
    handled twice fires nothing twice."""

    def __init__(self) -> None:
        self.evaluator = Evaluator()

    def start(self) -> None:
        self.evaluator.load()

    def handle(self, ticks: list[TickEvent]) -> None:
        try:
            self.evaluator.process(ticks)
        except Exception:
            self.evaluator = Evaluator()  # reloads from the database on the next batch
            raise
