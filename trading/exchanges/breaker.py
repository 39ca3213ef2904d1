"""A per-venue circuit breaker shared by every process through the Redis cache.

Rate-limit answers (429), IP bans (418) and server errors (5xx) are counted in a fixed window; a burst of
`TRADING_BREAKER_THRESHOLD` of them (or a single 418) opens the breaker for `TRADING_BREAKER_COOLDOWN_SECONDS`.
While open, adapters refuse to call the venue and the pages show it as degraded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from trading.events import venue_degraded


@dataclass(frozen=True)
class VenueHealth:
    venue: str
    degraded: bool
    retry_after_seconds: int = 0


def _failures_key(venue: str) -> str:
    window = int(time.time() // settings.TRADING_BREAKER_WINDOW_SECONDS)
    return f"trading:breaker:{venue}:failures:{window}"


def _open_key(venue: str) -> str:
    return f"trading:breaker:{venue}:open_until"


def breaker_record_failure(*, venue: str, http_status: int | None) -> bool:
    """Count one failure; returns True when this failure opened the breaker."""
    key = _failures_key(venue)
    cache.add(key, 0, timeout=settings.TRADING_BREAKER_WINDOW_SECONDS * 2)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=settings.TRADING_BREAKER_WINDOW_SECONDS * 2)
        count = 1
    tripped = http_status == 418 or count >= settings.TRADING_BREAKER_THRESHOLD
    cooldown = settings.TRADING_BREAKER_COOLDOWN_SECONDS
    if tripped and cache.add(_open_key(venue), time.time() + cooldown, timeout=cooldown):
        venue_degraded.send_robust(sender=VenueHealth, venue=venue, retry_after_seconds=cooldown)
        return True
    return False


def breaker_health(*, venue: str) -> VenueHealth:
    open_until = cache.get(_open_key(venue))
    if open_until is None:
        return VenueHealth(venue=venue, degraded=False)
    remaining = max(0, int(open_until - time.time()))
    return VenueHealth(venue=venue, degraded=True, retry_after_seconds=remaining)


def breaker_reset(*, venue: str) -> None:
    cache.delete(_open_key(venue))
