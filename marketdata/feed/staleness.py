"""Which symbols have gone silent for longer than their threshold, and which came back."""

from __future__ import annotations


class StalenessTracker:
    def __init__(self, *, thresholds: dict[str, float], now: float) -> None:
        self.thresholds = thresholds
        self.last_seen = dict.fromkeys(thresholds, now)
        self.stale: set[str] = set()

    def touch(self, symbol: str, now: float) -> bool:
        """Record a tick; True when the symbol was stale and has now recovered."""
        self.last_seen[symbol] = now
        if symbol in self.stale:
            self.stale.discard(symbol)
            return True
        return False

    def check(self, now: float) -> list[str]:
        """Symbols that have just gone stale (each reported once until it recovers)."""
        newly = [
            symbol
            for symbol, seen in self.last_seen.items()
            if symbol not in self.stale and now - seen > self.thresholds[symbol]
        ]
        self.stale.update(newly)
        return newly
