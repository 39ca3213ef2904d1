"""The heart of the feed: every tick goes into the candles; each symbol is published at most once per
coalescing interval (the first tick at once, later ones at the end of the interval), and a publish is:
store (one transaction), one channel-layer message per symbol to `market.<slug>` and `market.all`,
then the `candle_closed` signal and one entry on the tick stream for the other apps (whose tick consumers
run in processes of their own: marketdata/tick_consumers.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis
import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from core.rls import system_context
from marketdata import metrics, services
from marketdata.events import candle_closed
from marketdata.feed.candles import CandleBuilder
from marketdata.feed.leader import FeedDeposed, FeedLease, Resume
from marketdata.feed.sources.base import RawTick
from marketdata.feed.staleness import StalenessTracker
from marketdata.models import Instrument, Quote
from marketdata.render import ALL_GROUP, channel_message, group_name, tick_payload, with_stale
from marketdata.tickstream import tick_batches_append, tick_stream_key, ticks_encode
from marketdata.types import CandleBar, TickEvent

logger = structlog.get_logger(__name__)
DAY = timedelta(hours=24)
RETRY_SECONDS = 1.0


@dataclass
class SymbolState:
    instrument_id: int
    symbol: str
    slug: str
    precision: int
    stale_after: int
    price: Decimal | None = None
    published_price: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    at: datetime | None = None
    received_at: float = 0.0
    dirty: bool = False
    last_published: float = float("-inf")
    pending_ticks: list[RawTick] = field(default_factory=list)
    stats: services.WindowStats | None = None
    stats_until: datetime | None = None
    stats_due: bool = True
    last_closed: datetime | None = None
    last_data: dict | None = None
    # The previous leader published this symbol's ticks up to here (marketdata/feed/leader.py): ticks up to
    # it still build the candle but are not published again.
    resume_after: datetime | None = None


def _batch_at(state: SymbolState, ticks: list[RawTick]) -> datetime:
    """The market time of a publish: its last tick's."""
    if ticks:
        return ticks[-1].at
    if state.at is None:
        raise RuntimeError(f"{state.symbol} published before its first tick")
    return state.at


class Publisher:
    def __init__(
        self,
        *,
        instruments: Sequence[Instrument],
        source_name: str,
        channel_layer,
        coalesce_seconds: float = 0.25,
        now=time.monotonic,
        fence: FeedLease | None = None,
        resume: dict[str, Resume] | None = None,
    ) -> None:
        self.states = {
            i.symbol: SymbolState(
                instrument_id=i.pk,
                symbol=i.symbol,
                slug=i.slug,
                precision=i.price_precision,
                stale_after=i.stale_after_seconds,
            )
            for i in instruments
        }
        self.source_name = source_name
        self.channel_layer = channel_layer
        self.coalesce_seconds = coalesce_seconds
        self.now = now
        self.builder = CandleBuilder()
        self.staleness = StalenessTracker(
            thresholds={s: i.stale_after for s, i in self.states.items()}, now=now()
        )
        self.closed: list[tuple[str, CandleBar]] = []
        self.history: list[tuple[str, CandleBar]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.unannounced: list[tuple[str, CandleBar]] = []
        self.unstreamed: list[list[TickEvent]] = []  # published batches not yet on the tick stream
        self._seq = 0
        # With a fence (the feed's lease), every publish is claimed first and a deposed leader's is refused.
        self.fence = fence
        for symbol, point in (resume or {}).items():
            state = self.states.get(symbol)
            if state is not None:
                state.resume_after, state.last_closed = point.tick_at, point.closed_at

    # --- input, called on the event loop by the sources --------------------------------------------
    def accept_tick(self, tick: RawTick) -> None:
        state = self.states.get(tick.symbol)
        if state is None:
            return
        closed = self.builder.add(tick.symbol, price=tick.price, volume=tick.volume, at=tick.at)
        if closed is None and self.builder.current[tick.symbol].open_time > tick.at:
            return  # a late trade for a minute already closed: dropped with the candle it belonged to
        if closed is not None and not (state.last_closed is not None and closed.open_time <= state.last_closed):
            self.closed.append((tick.symbol, closed))
        state.price, state.at, state.received_at = tick.price, tick.at, time.time()
        if tick.bid is not None:
            state.bid, state.ask = tick.bid, tick.ask
        if state.resume_after is not None and tick.at <= state.resume_after:
            state.published_price = tick.price  # the previous leader published it
            return
        state.pending_ticks.append(tick)
        state.dirty = True
        if self.staleness.touch(tick.symbol, self.now()):
            metrics.SYMBOL_STALE.labels(tick.symbol).set(0)
            logger.info("marketdata.recovered", symbol=tick.symbol)
        metrics.TICKS_PROCESSED.labels(tick.symbol).inc()
        self._wake.set()

    def accept_candles(
        self, symbol: str, bars: Sequence[CandleBar], *, current: CandleBar | None = None
    ) -> None:
        """Authoritative candles (history, a gap fill), stored as given; `current` continues the live minute."""
        state = self.states.get(symbol)
        if state is None:
            return
        self.history.extend((symbol, bar) for bar in bars)
        if current is not None:
            self.builder.seed(symbol, current)
        state.stats_due = True
        self._wake.set()

    # --- the publishing loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Publish as ticks come, until stop(); then publish what is still pending. Never cancel this
        task mid-publish: a batch taken out for publishing would be lost."""
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.publish_due()
            except FeedDeposed:
                raise  # another feed leads now: stop at once (run_marketfeed goes back to standby)
            except Exception:  # the database or Redis is away: keep the batch, retry, never stop the feed
                logger.exception("marketdata.publish_failed")
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()
        await self.publish_due()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def publish_due(self) -> None:
        """Publish every symbol whose interval has passed; wait for the rest, then publish them too."""
        while True:
            now = self.now()
            due = [
                s for s in self.states.values() if s.dirty and now - s.last_published >= self.coalesce_seconds
            ]
            if due or self.history or self.closed:
                await self.publish(due)
                continue
            if self.unstreamed:  # Redis was away when they were published
                await sync_to_async(self._stream_ticks)()
            waiting = [
                s.last_published + self.coalesce_seconds - now for s in self.states.values() if s.dirty
            ]
            if not waiting:
                return
            await asyncio.sleep(max(0.0, min(waiting)))

    async def publish(self, due: Sequence[SymbolState]) -> None:
        """Pages first, then the database, then the other apps. A failed step keeps what it had not done
        for the next attempt (closed candles are stored and announced exactly once, and each batch of
        ticks is appended to the tick stream once it is stored)."""
        now = self.now()
        batch = []
        for state in due:
            state.dirty = False
            state.last_published = now
            batch.append(
                (
                    state,
                    state.price,
                    state.published_price,
                    state.pending_ticks,
                    self.builder.live(state.symbol),
                )
            )
            state.pending_ticks = []
        closed, self.closed = self.closed, []
        history, self.history = self.history, []
        closed = sorted(closed + self._filled_while_live(history), key=lambda item: item[1].open_time)
        try:
            if closed or history:  # once a minute: the 24-hour figures must include the minute just closed
                await sync_to_async(self._store_candles)(closed, history)
            messages, events, quotes = await sync_to_async(self._render)(batch)
        except Exception:
            self.closed[:0], self.history[:0] = closed, history
            self._put_back(batch)
            raise
        self.unannounced += closed
        if self.fence is not None:
            # Still the leader? Checked (with the marks a successor resumes from) before anything goes out.
            marks = {st.symbol: _batch_at(st, ticks) for st, _, _, ticks, _ in batch}
            try:
                await sync_to_async(self.fence.claim)(ticks=marks)
            except FeedDeposed:
                raise
            except Exception:  # Redis away: the batch waits for the next attempt, as for the database
                self._put_back(batch)
                raise
        await self._broadcast(messages)
        try:
            await sync_to_async(self._store_live)(batch, quotes)
        except Exception:
            self._put_back(batch)
            raise
        for state, price, *_ in batch:
            state.published_price = price
        announce, self.unannounced = self.unannounced, []
        if events:
            self.unstreamed.append(events)
        await sync_to_async(self._send_signals)(announce)

    def _put_back(self, batch) -> None:
        for state, _, _, ticks, _ in batch:
            state.pending_ticks[:0] = ticks
            state.dirty = True
        self._wake.set()

    def _filled_while_live(self, history: list[tuple[str, CandleBar]]) -> list[tuple[str, CandleBar]]:
        """Minutes a gap fill restored after the feed had been live: they closed while we were away, so
        they are announced (in order), unlike the history loaded at start."""
        filled = []
        for symbol, bar in sorted(history, key=lambda item: item[1].open_time):
            state, live = self.states[symbol], self.builder.live(symbol)
            if state.last_closed is None or bar.open_time <= state.last_closed:
                continue
            if live is not None and bar.open_time >= live.open_time:
                continue
            filled.append((symbol, bar))
            state.last_closed = bar.open_time
        return filled

    @staticmethod
    def _fresh_connection() -> None:
        if not connection.in_atomic_block:  # a long-lived process: drop a connection the server closed
            close_old_connections()

    def _store_candles(self, closed, history) -> None:
        self._fresh_connection()
        with system_context(reason="market feed: store closed candles"):
            services.candles_store(
                rows=[(self.states[s].instrument_id, bar) for s, bar in [*history, *closed]]
            )
        for symbol, _ in [*history, *closed]:
            self.states[symbol].stats_due = True
        for symbol, bar in closed:
            state = self.states[symbol]
            state.last_closed = max(bar.open_time, state.last_closed or bar.open_time)

    def _render(self, batch) -> tuple[list[dict], list[TickEvent], list[Quote]]:
        """The payloads and fragments, rendered once per symbol (no database unless the 24-hour figures
        need refreshing, once a minute)."""
        wall = datetime.now(tz=UTC)
        quotes, messages, events = [], [], []
        for state, price, previous, ticks, candle in batch:
            # The batch's own time, not state.at: a tick accepted while this renders (in a thread) belongs
            # to the next publish.
            at = _batch_at(state, ticks)
            stats = self._stats(state, candle, at)
            quotes.append(
                Quote(
                    instrument_id=state.instrument_id,
                    price=price,
                    bid=state.bid,
                    ask=state.ask,
                    open_24h=stats["open"],
                    high_24h=stats["high"],
                    low_24h=stats["low"],
                    volume_24h=stats["volume"],
                    source=self.source_name,
                    at=at,
                    updated_at=wall,
                )
            )
            self._seq = max(self._seq + 1, time.time_ns() // 1000)
            data = tick_payload(
                symbol=state.symbol,
                seq=self._seq,
                price=price,
                previous_price=previous,
                bid=state.bid,
                ask=state.ask,
                open_24h=stats["open"],
                high_24h=stats["high"],
                low_24h=stats["low"],
                volume_24h=stats["volume"],
                at=at,
                updated_at=wall,
                stale=False,
                stale_after=state.stale_after,
                precision=state.precision,
                candle=candle,
                received_at=state.received_at,
            )
            state.last_data = data
            messages.append(channel_message(data))
            events.append(TickEvent(symbol=state.symbol, price=price, previous_price=previous, at=at))
        return messages, events, quotes

    def _store_live(self, batch, quotes: list[Quote]) -> None:
        """Quotes, the ticks and the live candles of this publish: one transaction."""
        self._fresh_connection()
        with system_context(reason="market feed: store candles, ticks and quotes"):
            services.candles_store(rows=[(st.instrument_id, candle) for st, *_, candle in batch if candle])
            services.ticks_store(
                rows=[
                    (st.instrument_id, t.price, t.volume, t.at) for st, _, _, ticks, _ in batch for t in ticks
                ]
            )
            services.quotes_store(quotes=quotes)

    def _stats(self, state: SymbolState, candle: CandleBar | None, at: datetime) -> dict:
        """24-hour open/high/low/volume: closed minutes from the database, refreshed once a minute, plus
        the live candle."""
        minute = candle.open_time if candle else at.replace(second=0, microsecond=0)
        if state.stats_due or state.stats_until != minute:
            state.stats = services.window_stats(
                instrument_id=state.instrument_id, start=minute - DAY, end=minute
            )
            state.stats_until, state.stats_due = minute, False
        stats = state.stats
        if candle is None:
            return {"open": stats.open, "high": stats.high, "low": stats.low, "volume": stats.volume}
        return {
            "open": stats.open if stats.open is not None else candle.open,
            "high": max(v for v in (stats.high, candle.high) if v is not None),
            "low": min(v for v in (stats.low, candle.low) if v is not None),
            "volume": stats.volume + candle.volume,
        }

    async def _broadcast(self, messages: list[dict]) -> None:
        await asyncio.gather(
            *(
                self.channel_layer.group_send(group, m)
                for m in messages
                for group in (ALL_GROUP, group_name(m["slug"]))
            )
        )
        sent = time.time()
        for message in messages:
            received = message["data"]["received_at"]
            if received:
                metrics.BROADCAST_LAG.observe(max(0.0, sent - received))
            metrics.PUBLISHES.labels(message["symbol"]).inc()

    def _send_signals(self, closed: list[tuple[str, CandleBar]]) -> None:
        for symbol, bar in closed:
            metrics.CANDLES_CLOSED.labels(symbol).inc()
            self._robust(candle_closed, "candle_closed", symbol=symbol, candle=bar)
        if closed and self.fence is not None:
            # After announcing: a leader killed in between has its successor announce the minute again
            # (signals_compute is idempotent), rather than nobody.
            latest: dict[str, datetime] = {}
            for symbol, bar in closed:
                latest[symbol] = max(bar.open_time, latest.get(symbol, bar.open_time))
            self.fence.claim(closed=latest)
        self._stream_ticks()

    def _robust(self, signal, name: str, **kwargs) -> None:
        for receiver, result in signal.send_robust(sender=Publisher, **kwargs):
            if isinstance(result, Exception):
                metrics.SIGNAL_ERRORS.labels(name).inc()
                logger.error(
                    "marketdata.signal_receiver_failed",
                    signal=name,
                    receiver=repr(receiver),
                    error=repr(result),
                    exc_info=result,
                )

    def _stream_ticks(self) -> None:
        """Append the published batches to the tick stream, oldest first. If Redis is away they are kept
        (and the publish fails, to be retried): the tick consumers get every batch, late rather than never."""
        if not self.unstreamed:
            return
        try:
            if self.fence is None:
                tick_batches_append(self.unstreamed)
            else:
                self.fence.stream_append(
                    tick_stream_key(),
                    [ticks_encode(ticks)["ticks"] for ticks in self.unstreamed],
                    maxlen=settings.MARKET_TICK_STREAM_MAXLEN,
                )
        except redis.RedisError:
            metrics.TICK_STREAM_FAILURES.inc()
            raise
        self.unstreamed = []

    # --- staleness ----------------------------------------------------------------------------------
    async def mark_stale(self) -> list[str]:
        """Tell every page about symbols that have gone silent (the feed's watchdog calls this)."""
        newly = self.staleness.check(self.now())
        for symbol in newly:
            metrics.SYMBOL_STALE.labels(symbol).set(1)
            logger.warning("marketdata.stale", symbol=symbol, silent_for=self.states[symbol].stale_after)
            data = self.states[symbol].last_data
            if data is not None:
                self._seq = max(self._seq + 1, time.time_ns() // 1000)
                message = await sync_to_async(channel_message)(
                    {**with_stale(data, stale=True), "seq": self._seq, "received_at": None}
                )
                await self.channel_layer.group_send(group_name(message["slug"]), message)
                await self.channel_layer.group_send(ALL_GROUP, message)
        return newly
