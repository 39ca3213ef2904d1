"""Build the sources from the settings and run them with the publisher in one asyncio process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import structlog
from channels.layers import get_channel_layer
from django.db.models import Max

from marketdata import metrics
from marketdata.feed.leader import FeedDeposed, FeedLease, usable_resume_points
from marketdata.feed.publisher import Publisher
from marketdata.feed.sources.base import RawTick
from marketdata.feed.sources.clock import MarketClock
from marketdata.feed.sources.replay import ReplaySource, load_recording, recording_path
from marketdata.feed.sources.simulated import SimulatedSource
from marketdata.models import Candle, Instrument, Quote

logger = structlog.get_logger(__name__)
SOURCES = ("replay", "simulated", "ccxt")


@dataclass(frozen=True)
class FeedOptions:
    source: str = "replay"
    replay_dir: Path | None = None
    speed: float = 1.0
    ticks_per_minute: int = 60
    backfill_minutes: int = 0
    coalesce_seconds: float = 0.25
    exchange: str = "binance"
    ccxt_config: dict | None = None
    watchdog_seconds: float = 1.0


def _counted(emit, source_name: str):
    counter = metrics.UPSTREAM_MESSAGES.labels(source_name)

    def emit_counted(tick: RawTick) -> None:
        counter.inc()
        emit(tick)

    return emit_counted


def build_sources(*, instruments: list[Instrument], options: FeedOptions) -> list:
    """Replay for every instrument with a recording, simulated for the rest; or ccxt for all."""
    if options.source not in SOURCES:
        raise ValueError(f"unknown market source {options.source!r}; choose one of {', '.join(SOURCES)}")
    if options.source == "ccxt":
        from marketdata.feed.sources.exchange import CcxtSource

        return [
            CcxtSource(
                exchange_id=options.exchange,
                symbols=[i.symbol for i in instruments],
                config=options.ccxt_config or {},
                backfill_minutes=options.backfill_minutes,
            )
        ]
    clock = MarketClock(speed=options.speed)
    recordings = {}
    if options.source == "replay":
        for instrument in instruments:
            path = recording_path(symbol=instrument.symbol, directory=options.replay_dir)
            if path is not None:
                recordings[instrument.symbol] = load_recording(path)
        if not recordings:
            logger.warning("marketdata.no_recordings", directory=str(options.replay_dir))
    precisions = {i.symbol: i.price_precision for i in instruments}
    sources: list = []
    if recordings:
        sources.append(
            ReplaySource(
                recordings=recordings,
                precisions=precisions,
                clock=clock,
                ticks_per_minute=options.ticks_per_minute,
                backfill_minutes=options.backfill_minutes,
            )
        )
    simulated = [i for i in instruments if i.symbol not in recordings]
    if simulated:
        last_close = {q.instrument_id: q.price for q in Quote.objects.filter(instrument__in=simulated)}
        history_from = dict(
            Candle.objects.filter(instrument__in=simulated)
            .values("instrument_id")
            .annotate(t=Max("open_time"))
            .values_list("instrument_id", "t")
        )
        sources.append(
            SimulatedSource(
                start_prices={
                    i.symbol: last_close.get(i.pk) or i.reference_price or Decimal("100") for i in simulated
                },
                precisions=precisions,
                notionals={i.symbol: i.min_notional for i in simulated},
                clock=clock,
                ticks_per_minute=options.ticks_per_minute,
                history_from={i.symbol: history_from.get(i.pk) for i in simulated},
                backfill_minutes=options.backfill_minutes,
            )
        )
    return sources


async def _watchdog(publisher: Publisher, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await publisher.mark_stale()


async def run_feed(
    *, instruments: list[Instrument], sources: list, options: FeedOptions, fence: FeedLease | None = None
) -> None:
    """Run until cancelled; on the way out, publish what is pending so no tick is lost. With `fence` (the
    lease this process leads by), resume after what the previous leader published and stop with
    FeedDeposed as soon as another process leads."""
    resume = None
    if fence is not None:
        resume = usable_resume_points(await asyncio.to_thread(fence.resume_points), now=datetime.now(tz=UTC))
        if resume:
            logger.info("marketdata.feed_resumes", marks={s: str(p.tick_at) for s, p in resume.items()})
            marks = [point.tick_at for point in resume.values() if point.tick_at is not None]
            for source in sources:
                if isinstance(source, ReplaySource) and marks:
                    source.resume_after = min(marks)
    publisher = Publisher(
        instruments=instruments,
        source_name=sources[0].name if len(sources) == 1 else "+".join(s.name for s in sources),
        channel_layer=get_channel_layer(),
        coalesce_seconds=options.coalesce_seconds,
        fence=fence,
        resume=resume,
    )
    publishing = asyncio.create_task(publisher.run(), name="publisher")
    feeding = [
        asyncio.create_task(
            source.run(
                emit_tick=_counted(publisher.accept_tick, source.name), emit_candles=publisher.accept_candles
            ),
            name=f"source-{source.name}",
        )
        for source in sources
    ]
    feeding.append(asyncio.create_task(_watchdog(publisher, options.watchdog_seconds), name="watchdog"))
    logger.info(
        "marketdata.feed_started",
        sources=[s.name for s in sources],
        symbols=[i.symbol for i in instruments],
        speed=options.speed,
    )
    try:
        done, _ = await asyncio.wait([publishing, *feeding], return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        # Sources first, then let the publisher finish its batch and publish what is pending.
        for task in feeding:
            task.cancel()
        await asyncio.gather(*feeding, return_exceptions=True)
        if not publishing.done():
            publisher.stop()
            try:
                await asyncio.shield(publishing)
            except FeedDeposed:
                logger.warning("marketdata.pending_dropped", reason="deposed: the new leader publishes them")
