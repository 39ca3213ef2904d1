"""Demo research for the demo trader, created through the services (idempotent).

The replay feed plays the real March 2023 recording aligned to the wall clock, and backfills the past
week of it when it starts (marketdata/feed/sources/replay.py). So the demo theses take their levels from
the very bars the replay stores for the last few days (`marketdata.selectors.replay_bar_list`): one
reaches its target, one its stop, one expires, one stays open. Their outcomes appear once the feed has
stored those candles (the research-outcomes beat task recomputes open theses every five minutes).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.utils import timezone

from marketdata.selectors import instrument_get, replay_bar_list
from marketdata.types import CandleBar
from research.choices import Audience, ChartInterval, Direction
from research.models import Note
from research.selectors import published_open_thesis_ids
from research.services import NoteInput, note_create, note_publish, published_outcome_refresh

DEMO_SYMBOL = "BTC/USDT"
CENT = Decimal("0.01")
MARGIN = Decimal("0.995")  # levels that must not be reached sit half a percent beyond the range


def _down(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_DOWN)


def _up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_UP)


def _window(bars: list[CandleBar], start: datetime, hours: int) -> list[CandleBar]:
    end = start + timedelta(hours=hours)
    return [b for b in bars if start <= b.open_time < end]


def research_demo_seed(*, trader, stdout) -> None:
    if Note.objects.filter(user_id=trader.pk).exists():
        return
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(days=3)
    bars = replay_bar_list(symbol=DEMO_SYMBOL, start=start, end=now)
    if len(bars) < 3 * 24 * 60 - 1:
        stdout.write(f"Demo research: skipped (no replay recording of {DEMO_SYMBOL}).")
        return
    precision = instrument_get(symbol=DEMO_SYMBOL).price_precision
    made = []

    # A long whose target is the highest high of its first twelve hours; the stop below every low before it.
    t1 = start
    day = _window(bars, t1, 12)
    peak = max(range(len(day)), key=lambda i: day[i].high)
    entry = day[0].close
    if day[peak].high > entry:
        target = _down(day[peak].high)
        stop = _down(min(b.low for b in day[: peak + 1]) * MARGIN)
        made.append((
            t1,
            NoteInput(
                title=f"{DEMO_SYMBOL}: the morning range breaks up",
                body=(
                    "Buyers defended the overnight low twice and the hourly closes are rising.\n\n"
                    f"- Entry near **{entry:.{precision}f}**, target the session high, stop under the lows\n"
                    "- Invalidated if the range low gives way\n"
                ),
                tags=["breakout", "intraday"],
                symbols=[DEMO_SYMBOL],
                direction=Direction.LONG, thesis_symbol=DEMO_SYMBOL, entry=entry, target=target, stop=stop,
                horizon=(t1 + timedelta(days=2)).date(),
                chart_symbol=DEMO_SYMBOL, chart_interval=ChartInterval.H1, chart_start=t1 - timedelta(days=1),
                chart_end=t1 + timedelta(hours=12),
                chart_alt=f"Hourly {DEMO_SYMBOL} candles around the breakout: a tight range, then higher closes.",
            ),
            Audience.MEMBERS,
        ))

    # A short stopped out: the stop is the highest high of the next twelve hours, the target below every low.
    t2 = start + timedelta(days=1)
    day = _window(bars, t2, 12)
    peak = max(range(len(day)), key=lambda i: day[i].high)
    entry = day[0].close
    if day[peak].high > entry:
        made.append((
            t2,
            NoteInput(
                title=f"Fading the {DEMO_SYMBOL} bounce",
                body="Volume is thin on this bounce; I expect sellers to return below resistance.",
                tags=["mean-reversion"],
                symbols=[DEMO_SYMBOL],
                direction=Direction.SHORT, thesis_symbol=DEMO_SYMBOL, entry=entry,
                target=_down(min(b.low for b in day[: peak + 1]) * MARGIN), stop=_down(day[peak].high),
                horizon=(t2 + timedelta(days=1)).date(),
            ),
            Audience.MEMBERS,
        ))

    # Expires: levels outside everything its horizon day traded.
    t3 = start + timedelta(hours=1)
    horizon = t3.date()
    rest = [b for b in bars if t3 <= b.open_time and b.open_time.date() <= horizon]
    entry = rest[0].close
    made.append((
        t3,
        NoteInput(
            title=f"{DEMO_SYMBOL} trend day ahead?",
            body="A squeeze on the 5-minute chart. If it resolves today it should run far.",
            tags=["volatility"],
            symbols=[DEMO_SYMBOL],
            direction=Direction.LONG, thesis_symbol=DEMO_SYMBOL, entry=entry,
            target=_up(max(b.high for b in rest) / MARGIN), stop=_down(min(b.low for b in rest) * MARGIN),
            horizon=horizon,
        ),
        Audience.PAYING,
    ))

    # Open: a wide range over a month, beyond everything traded since it was published.
    t4 = start + timedelta(days=2)
    since = [b for b in bars if b.open_time >= t4]
    entry = since[0].close
    made.append((
        t4,
        NoteInput(
            title=f"{DEMO_SYMBOL} swing: accumulation under resistance",
            body="Weekly structure is constructive. A patient long with a wide stop.",
            tags=["swing", "macro"],
            symbols=[DEMO_SYMBOL],
            direction=Direction.LONG, thesis_symbol=DEMO_SYMBOL, entry=entry,
            target=_up(max(b.high for b in since) * Decimal("1.08")),
            stop=_down(min(b.low for b in since) * Decimal("0.92")),
            horizon=(now + timedelta(days=30)).date(),
        ),
        Audience.MEMBERS,
    ))

    for published_at, data, audience in made:
        note = note_create(user=trader, data=data)
        note_publish(user=trader, note=note, audience=audience, now=published_at)
    note_create(
        user=trader,
        data=NoteInput(
            title="Draft: levels to watch this week",
            body="Private draft. Publish it from the note's page when it is ready.",
            tags=["watchlist"],
            symbols=[DEMO_SYMBOL],
        ),
    )
    for published_id in published_open_thesis_ids():
        published_outcome_refresh(published_id=published_id)
    stdout.write(f"Demo research: {len(made)} published theses on {DEMO_SYMBOL} and a draft for {trader.email}")
