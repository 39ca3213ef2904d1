"""Market time for recorded and generated data: wall-clock time at speed 1, faster for demos and tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta


class MarketClock:
    """Maps market time to wall time from a common start, so a restart at speed 1 resumes where it was."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed <= 0:
            raise ValueError("replay speed must be positive")
        self.speed = speed
        self._now = now
        self._sleep = sleep
        self.wall_start = now()
        self.market_start = datetime.fromtimestamp(self.wall_start, tz=UTC)

    def wall_for(self, market: datetime) -> float:
        return self.wall_start + (market - self.market_start).total_seconds() / self.speed

    async def sleep_until(self, market: datetime) -> None:
        delay = self.wall_for(market) - self._now()
        if delay > 0:
            await self._sleep(delay)

    def start_minute(self) -> datetime:
        return self.market_start.replace(second=0, microsecond=0)

    @staticmethod
    def minutes(n: int) -> timedelta:
        return timedelta(minutes=n)
