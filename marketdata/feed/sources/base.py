"""What every source hands the feed: raw trades, and candles for history or a gap."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from marketdata.types import CandleBar


@dataclass(frozen=True, slots=True)
class RawTick:
    """One trade as a source saw it. `at` is market time (UTC)."""

    symbol: str
    price: Decimal
    volume: Decimal
    at: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None


EmitTick = Callable[[RawTick], None]


class EmitCandles(Protocol):
    """Candles that are authoritative for their minutes (history, a gap fill after a drop); `current`
    is the minute in progress, which live ticks continue."""

    def __call__(
        self, symbol: str, bars: Sequence[CandleBar], *, current: CandleBar | None = None
    ) -> None: ...


class Source(Protocol):
    name: str

    async def run(self, *, emit_tick: EmitTick, emit_candles: EmitCandles) -> None:
        """Produce ticks until cancelled; reconnecting is the source's own business."""
