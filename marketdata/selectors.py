"""Reads of market data: instruments, latest quotes, candles. No users here, so no tenant filter."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import DomainError
from core.inputs import text_problem
from core.memo import VersionedMemo
from marketdata.feed.sources.replay import load_recording, recording_path
from marketdata.models import Candle, Instrument, Quote
from marketdata.render import tick_payload
from marketdata.types import CandleBar, QuoteSnapshot, change_pct

TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
CANDLE_LIMIT_MAX = 5000
SYMBOL_MAX_LENGTH = Instrument._meta.get_field("symbol").max_length


def canonical_symbol(symbol: str) -> str:
    """ "btc-usdt", "BTC/USDT" -> "BTC/USDT"."""
    return str(symbol).strip().upper().replace("-", "/")


def instrument_list(*, active: bool | None = True) -> QuerySet[Instrument]:
    instruments = Instrument.objects.all()
    if active is not None:
        instruments = instruments.filter(active=active)
    return instruments.order_by("symbol")


def instrument_get(*, symbol: str) -> Instrument:
    """The instrument for "BTC/USDT" or "BTC-USDT"; DomainError when Nexus does not list it."""
    symbol = str(symbol)
    problem = text_problem(symbol, max_length=SYMBOL_MAX_LENGTH)
    if problem:  # from a URL, a query string or a socket message: nothing a listed symbol could match
        raise DomainError(f"The symbol {problem}.", field="symbol")
    try:
        return Instrument.objects.get(symbol=canonical_symbol(symbol))
    except Instrument.DoesNotExist:
        known = ", ".join(instrument_list().values_list("symbol", flat=True)) or "none yet"
        raise DomainError(
            f"Unknown instrument {symbol!r}. Known instruments: {known}.", field="symbol"
        ) from None


def quote_snapshot(*, quote: Quote, instrument: Instrument, now=None) -> QuoteSnapshot:
    now = now or timezone.now()
    return QuoteSnapshot(
        symbol=instrument.symbol,
        price=quote.price,
        bid=quote.bid,
        ask=quote.ask,
        change_pct=change_pct(price=quote.price, reference=quote.open_24h),
        updated_at=quote.updated_at,
        stale=now - quote.updated_at > timedelta(seconds=instrument.stale_after_seconds),
        volume_24h=quote.volume_24h,
        open_24h=quote.open_24h,
    )


def quote_latest_map(*, symbols: Iterable[str]) -> dict[str, QuoteSnapshot]:
    """Latest quote per symbol, keyed by canonical symbol ("BTC/USDT"). Symbols without a quote are absent."""
    wanted = {canonical_symbol(s) for s in symbols}
    if not wanted:
        return {}
    now = timezone.now()
    quotes = Quote.objects.filter(instrument__symbol__in=wanted).select_related("instrument")
    return {q.instrument.symbol: quote_snapshot(quote=q, instrument=q.instrument, now=now) for q in quotes}


# What is computed from a pair's candles, kept per web process until candles_store writes that pair's again
# (scope: the instrument's id).
candles_memo = VersionedMemo("marketdata.candles")


def candle_list(
    *, symbol: str, timeframe: str = "1m", limit: int = 500, start: datetime | None = None,
    end: datetime | None = None,
) -> list[CandleBar]:
    """The most recent `limit` bars, oldest first. 5m / 1h / 1d are aggregated from the 1m candles (UTC).

    `start` / `end` bound the range: bars whose open time is at or after `start` (the bucket holding it,
    for aggregated bars) and before `end`; the newest `limit` of them."""
    if timeframe not in TIMEFRAMES:
        raise DomainError(f"Timeframe must be one of {', '.join(TIMEFRAMES)}.", field="timeframe")
    if not 1 <= limit <= CANDLE_LIMIT_MAX:
        raise DomainError(f"Limit must be between 1 and {CANDLE_LIMIT_MAX}.", field="limit")
    if start is not None and end is not None and start >= end:
        raise DomainError("The range's start must be before its end.", field="start")
    instrument = instrument_get(symbol=symbol)
    if timeframe == "1m":
        rows = Candle.objects.filter(instrument=instrument)
        if start is not None:
            rows = rows.filter(open_time__gte=start)
        if end is not None:
            rows = rows.filter(open_time__lt=end)
        rows = rows.order_by("-open_time").values_list("open_time", "open", "high", "low", "close", "volume")
        return [CandleBar(*row) for row in reversed(rows[:limit])]
    step = TIMEFRAMES[timeframe]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH latest AS (SELECT max(open_time) AS t FROM marketdata_candle
                             WHERE instrument_id = %(id)s AND (%(end)s::timestamptz IS NULL OR open_time < %(end)s))
            SELECT date_bin(%(step)s, c.open_time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
                   (array_agg(c.open ORDER BY c.open_time))[1],
                   max(c.high), min(c.low),
                   (array_agg(c.close ORDER BY c.open_time DESC))[1],
                   sum(c.volume)
              FROM marketdata_candle c, latest
             WHERE c.instrument_id = %(id)s
               AND c.open_time >= date_bin(%(step)s, latest.t, TIMESTAMPTZ '2000-01-03 00:00:00+00')
                                  - %(step)s * (%(limit)s - 1)
               AND c.open_time <= latest.t
               AND (%(start)s::timestamptz IS NULL
                    OR c.open_time >= date_bin(%(step)s, %(start)s, TIMESTAMPTZ '2000-01-03 00:00:00+00'))
             GROUP BY bucket
             ORDER BY bucket DESC
             LIMIT %(limit)s
            """,
            {"id": instrument.pk, "step": step, "limit": limit, "start": start, "end": end},
        )
        rows = cursor.fetchall()
    return [
        CandleBar(open_time=r[0], open=r[1], high=r[2], low=r[3], close=r[4], volume=r[5])
        for r in reversed(rows)
    ]


def latest_candles(*, instruments: Iterable[Instrument]) -> dict[int, CandleBar]:
    """The newest one-minute candle per instrument (the live one while the feed runs)."""
    ids = [i.pk for i in instruments]
    rows = (
        Candle.objects.filter(instrument_id__in=ids)
        .order_by("instrument_id", "-open_time")
        .distinct("instrument_id")
    )
    return {c.instrument_id: CandleBar(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in rows}


def recent_closes(*, instruments: Iterable[Instrument], points: int = 60) -> dict[int, list[Decimal]]:
    """The last `points` one-minute closes per instrument, oldest first (sparklines)."""
    ids = [i.pk for i in instruments]
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.id, c.open_time, c.close
              FROM unnest(%s::bigint[]) AS i(id),
                   LATERAL (SELECT open_time, close FROM marketdata_candle
                             WHERE instrument_id = i.id ORDER BY open_time DESC LIMIT %s) c
             ORDER BY i.id, c.open_time
            """,
            [ids, points],
        )
        closes: dict[int, list[Decimal]] = {}
        for instrument_id, _, close in cursor.fetchall():
            closes.setdefault(instrument_id, []).append(close)
    return closes


def live_payloads(*, instruments: Iterable[Instrument]) -> list[dict]:
    """The stored state of each instrument with a quote, in the shape the feed publishes (render.py)."""
    instruments = list(instruments)
    quotes = {q.instrument_id: q for q in Quote.objects.filter(instrument__in=instruments)}
    candles = latest_candles(instruments=instruments)
    now = timezone.now()
    payloads = []
    for instrument in instruments:
        quote = quotes.get(instrument.pk)
        if quote is None:
            continue
        payloads.append(
            tick_payload(
                symbol=instrument.symbol,
                seq=int(quote.updated_at.timestamp() * 1_000_000),
                price=quote.price,
                previous_price=None,
                bid=quote.bid,
                ask=quote.ask,
                open_24h=quote.open_24h,
                high_24h=quote.high_24h,
                low_24h=quote.low_24h,
                volume_24h=quote.volume_24h,
                at=quote.at,
                updated_at=quote.updated_at,
                stale=now - quote.updated_at > timedelta(seconds=instrument.stale_after_seconds),
                stale_after=instrument.stale_after_seconds,
                precision=instrument.price_precision,
                candle=candles.get(instrument.pk),
            )
        )
    return payloads


def candle_first_reaching(
    *, symbol: str, start: datetime, end: datetime, high_at_least: Decimal, low_at_most: Decimal
) -> CandleBar | None:
    """The first stored one-minute candle opening in [start, end) whose high reaches `high_at_least` or
    whose low reaches `low_at_most` (a thesis's target and stop), or None."""
    instrument = instrument_get(symbol=symbol)
    candle = (
        Candle.objects.filter(instrument=instrument, open_time__gte=start, open_time__lt=end)
        .filter(Q(high__gte=high_at_least) | Q(low__lte=low_at_most))
        .order_by("open_time")
        .first()
    )
    if candle is None:
        return None
    return CandleBar(candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)


def candle_latest_open_time(*, symbol: str) -> datetime | None:
    """When the newest stored one-minute candle of `symbol` opened: how far the stored history reaches."""
    instrument = instrument_get(symbol=symbol)
    return (
        Candle.objects.filter(instrument=instrument).order_by("-open_time").values_list("open_time", flat=True).first()
    )


def replay_bar_list(*, symbol: str, start: datetime, end: datetime) -> list[CandleBar]:
    """The recorded one-minute bars the replay source plays for the minutes in [start, end), re-dated to
    them (the recording is aligned to the wall clock, marketdata/feed/sources/replay.py); [] when there is
    no recording of `symbol`. For demo data that should agree with what the replayed market does."""
    path = recording_path(symbol=canonical_symbol(symbol), directory=settings.MARKET_REPLAY_DIR)
    if path is None:
        return []
    recording = load_recording(path)
    first = start.replace(second=0, microsecond=0)
    minutes = int((end - first).total_seconds() // 60)
    bars = []
    for k in range(max(minutes, 0)):
        minute = first + timedelta(minutes=k)
        bar = recording[int(minute.timestamp() // 60) % len(recording)]
        bars.append(CandleBar(minute, bar.open, bar.high, bar.low, bar.close, bar.volume))
    return bars
def recorded_candles(*, symbol: str) -> list[CandleBar]:
    """The recorded one-minute candles of `symbol` that the replay feed plays (`MARKET_REPLAY_DIR`, e.g. March
    2023), at their recorded times, oldest first; [] when there is no recording of the pair."""
    path = recording_path(symbol=symbol, directory=settings.MARKET_REPLAY_DIR)
    return load_recording(path) if path is not None else []
