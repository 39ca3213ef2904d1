"""Which thresholds a move crosses, in O(log n + k): sorted thresholds and two binary searches.

For a move from p0 to p1 the thresholds that fire are exactly
    "up"   thresholds t with p0 < t <= p1   (the price rose onto or through t)
    "down" thresholds t with p1 <= t < p0   (the price fell onto or through t)
so a jump across many levels fires all of them, and a level is not fired again while the price rests on
it. `crosses()` is the same rule for one threshold: the services re-check a candidate with it against
the database row before recording a firing, and the property test uses it as the brute-force reference.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

UP = "up"
DOWN = "down"


def crosses(direction: str, threshold: Decimal, previous: Decimal, current: Decimal) -> bool:
    if direction == UP:
        return previous < threshold <= current
    return current <= threshold < previous


class _Book:
    """Thresholds of one (series, direction) in ascending order, with the alert ids in step."""

    __slots__ = ("thresholds", "ids")

    def __init__(self) -> None:
        self.thresholds: list[Decimal] = []
        self.ids: list[int] = []

    def add(self, threshold: Decimal, alert_id: int) -> None:
        position = bisect_right(self.thresholds, threshold)
        self.thresholds.insert(position, threshold)
        self.ids.insert(position, alert_id)

    def remove(self, threshold: Decimal, alert_id: int) -> None:
        position = bisect_left(self.thresholds, threshold)
        while position < len(self.ids) and self.thresholds[position] == threshold:
            if self.ids[position] == alert_id:
                del self.thresholds[position]
                del self.ids[position]
                return
            position += 1

    def crossed_up(self, previous: Decimal, current: Decimal) -> list[int]:
        return self.ids[bisect_right(self.thresholds, previous) : bisect_right(self.thresholds, current)]

    def crossed_down(self, previous: Decimal, current: Decimal) -> list[int]:
        return self.ids[bisect_left(self.thresholds, current) : bisect_left(self.thresholds, previous)]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(slots=True)
class Entry:
    alert_id: int
    user_id: int
    series: Hashable
    threshold: Decimal
    directions: tuple[str, ...]
    # A repeating alert in its cooldown stays indexed and is skipped until then.
    not_before: datetime | None = None
    expires_at: datetime | None = None

    def live_at(self, now: datetime) -> bool:
        if self.not_before is not None and now < self.not_before:
            return False
        return self.expires_at is None or now < self.expires_at


class CrossingIndex:
    """Per series (("price", "BTC/USDT"), ("move", "BTC/USDT", 60), ...) an up book and a down book."""

    def __init__(self) -> None:
        self._books: dict[tuple[Hashable, str], _Book] = {}
        self._entries: dict[int, Entry] = {}

    def add(self, entry: Entry) -> None:
        self.remove(entry.alert_id)
        for direction in entry.directions:
            self._books.setdefault((entry.series, direction), _Book()).add(entry.threshold, entry.alert_id)
        self._entries[entry.alert_id] = entry

    def remove(self, alert_id: int) -> None:
        entry = self._entries.pop(alert_id, None)
        if entry is None:
            return
        for direction in entry.directions:
            book = self._books.get((entry.series, direction))
            if book is not None:
                book.remove(entry.threshold, alert_id)
                if not book:
                    del self._books[(entry.series, direction)]

    def get(self, alert_id: int) -> Entry | None:
        return self._entries.get(alert_id)

    def crossed(self, series: Hashable, previous: Decimal, current: Decimal) -> list[Entry]:
        """Entries whose threshold the move previous -> current crosses (live or not)."""
        if current > previous:
            book = self._books.get((series, UP))
            ids = book.crossed_up(previous, current) if book else []
        elif current < previous:
            book = self._books.get((series, DOWN))
            ids = book.crossed_down(previous, current) if book else []
        else:
            return []
        return [self._entries[alert_id] for alert_id in ids]

    def series(self) -> set[Hashable]:
        return {series for series, _ in self._books}

    def entries(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, alert_id: int) -> bool:
        return alert_id in self._entries
