"""Reads of the strategy tracker: what can be tracked (bots, strategies, playbook tags, replays), their
journals and statistics, side-by-side comparisons, and what the regime gatekeeper's blocks saved or cost.
Each filters by user (RLS is the backstop); another trader's bot, tag or replay is a 404.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from core.inputs import text_problem
from core.money import ZERO
from marketdata.selectors import candle_list, quote_latest_map
from trading.choices import OrderSide, OrderSource, Regime, ReplayStatus
from trading.common import quantize_down, user_id_of
from trading.decisions.candles import MINUTE
from trading.decisions.strategies import STRATEGIES
from trading.models import BlockedExecution, Bot, Fill, Order, RegimeReading, ReplayFill, ReplayRun
from trading.tracker.journal import Journal, JournalFill, RoundTrip, journal_build
from trading.tracker.stats import (
    CurveStats,
    EquityPoint,
    TradeStats,
    curve_stats,
    equity_points,
    exposure,
    trade_stats,
)

KINDS = ("bot", "strategy", "tag", "replay")
KIND_LABELS = {"bot": "Bot", "strategy": "Strategy", "tag": "Playbook tag", "replay": "Simulation"}
REGIME_ORDER = [Regime.BULLISH, Regime.BEARISH, Regime.SIDEWAYS, ""]
REGIME_LABELS = {**dict(Regime.choices), "": "Not classified"}
GATE_HORIZONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24), "72h": timedelta(hours=72)}
GATE_ROWS_MAX = 500
KEY_MAX_LENGTH = 64


@dataclass(frozen=True)
class Subject:
    kind: str
    key: str
    label: str
    detail: str = ""
    simulated: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.key}"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


# --- what can be tracked ------------------------------------------------------------------------------------


def replay_list(*, user) -> QuerySet[ReplayRun]:
    return ReplayRun.objects.filter(user_id=user_id_of(user)).select_related("instrument", "bot")


def replay_get(*, user, pk) -> ReplayRun:
    try:
        return replay_list(user=user).get(pk=int(pk))
    except (ReplayRun.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such simulation.") from None


def playbook_tags(*, user) -> list[str]:
    return sorted(
        set(
            Order.objects.filter(user_id=user_id_of(user)).exclude(playbook_tag="")
            .order_by().values_list("playbook_tag", flat=True).distinct()
        )
    )


def _strategy_label(key: str) -> str:
    strategy = STRATEGIES.get(key)
    return strategy.label if strategy else key


def subject_list(*, user) -> list[Subject]:
    """Every bot, every strategy the trader's bots run, every playbook tag and every finished replay."""
    bots = list(Bot.objects.filter(user_id=user_id_of(user)).select_related("instrument").order_by("name"))
    subjects = [
        Subject("bot", str(b.pk), b.name, f"{_strategy_label(b.strategy)} ({b.params_key}) on {b.instrument.symbol}")
        for b in bots
    ]
    for key in sorted({b.strategy for b in bots}):
        count = sum(1 for b in bots if b.strategy == key)
        subjects.append(Subject("strategy", key, _strategy_label(key), f"all {count} of your bots running it"))
    subjects += [Subject("tag", tag, tag, "manual orders with this playbook tag") for tag in playbook_tags(user=user)]
    subjects += [
        _replay_subject(run) for run in replay_list(user=user).filter(status=ReplayStatus.DONE).order_by("-created_at")
    ]
    return subjects


def _replay_subject(run: ReplayRun) -> Subject:
    return Subject(
        "replay", str(run.pk), f"Simulation: {run.name}",
        f"{_strategy_label(run.strategy)} ({run.params_key}) on {run.instrument.symbol}, replayed", simulated=True,
    )


def subject_get(*, user, kind: str, key: str) -> Subject:
    """The subject `kind:key` if it is the trader's own; Http404 otherwise."""
    key = str(key)
    if text_problem(key, max_length=KEY_MAX_LENGTH):  # from a URL: nothing of the trader's could match it
        raise Http404("Nothing of that name is tracked.")
    if kind == "bot":
        try:
            bot = Bot.objects.select_related("instrument").get(user_id=user_id_of(user), pk=int(key))
        except (Bot.DoesNotExist, TypeError, ValueError, OverflowError):
            raise Http404("No such bot.") from None
        return Subject("bot", str(bot.pk), bot.name, f"{_strategy_label(bot.strategy)} ({bot.params_key}) on {bot.instrument.symbol}")
    if kind == "strategy":
        if not Bot.objects.filter(user_id=user_id_of(user), strategy=key).exists():
            raise Http404("None of your bots runs that strategy.")
        return Subject("strategy", key, _strategy_label(key), "all your bots running it")
    if kind == "tag":
        if not Order.objects.filter(user_id=user_id_of(user), playbook_tag=key).exists():
            raise Http404("No order of yours has that playbook tag.")
        return Subject("tag", key, key, "manual orders with this playbook tag")
    if kind == "replay":
        return _replay_subject(replay_get(user=user, pk=key))
    raise Http404("Nothing of that kind is tracked.")


def subject_parse(*, user, ref: str) -> Subject:
    kind, _, key = str(ref).partition(":")
    return subject_get(user=user, kind=kind, key=key)


# --- fills ----------------------------------------------------------------------------------------------------


def _regime_at(instrument_id: int, at: datetime, cache: dict) -> str:
    """The gatekeeper's reading of the pair at `at` (the latest hourly reading at or before it), "" if none."""
    key = (instrument_id, at.replace(minute=0, second=0, microsecond=0))
    if key not in cache:
        cache[key] = (
            RegimeReading.objects.filter(instrument_id=instrument_id, timeframe="1h", as_of__lte=at)
            .order_by("-as_of").values_list("regime", flat=True).first() or ""
        )
    return cache[key]


def _order_fills(*, user, orders: QuerySet[Order], book: Callable[[Order], str]) -> list[JournalFill]:
    rows = (
        Fill.objects.filter(user_id=user_id_of(user), order__in=orders)
        .select_related("order", "order__instrument", "order__plan", "order__plan__signal")
        .order_by("executed_at", "id")
    )
    regimes: dict = {}
    out = []
    for fill in rows:
        order = fill.order
        plan = getattr(order, "plan", None)
        if plan is not None:
            regime, reason = plan.signal.regime, plan.signal.reason
        else:
            regime = _regime_at(order.instrument_id, fill.executed_at, regimes)
            reason = f"{order.get_source_display()}: {order.playbook_tag}" if order.playbook_tag else order.get_source_display()
        instrument = order.instrument
        out.append(JournalFill(
            at=fill.executed_at, symbol=instrument.symbol, base=instrument.base, quote=instrument.quote,
            side=order.side, quantity=fill.quantity, price=fill.price, fee=fill.fee, fee_currency=fill.fee_currency,
            reason=reason, regime=regime, book=book(order), ref=f"{fill.executed_at.isoformat()}:{fill.pk}",
        ))
    return out


def _replay_fills(run: ReplayRun) -> list[JournalFill]:
    instrument = run.instrument
    return [
        JournalFill(
            at=f.executed_at, symbol=instrument.symbol, base=instrument.base, quote=instrument.quote, side=f.side,
            quantity=f.quantity, price=f.price, fee=f.fee, fee_currency=instrument.quote, reason=f.reason,
            regime=f.regime, book=f"replay:{run.pk}", ref=f"{f.executed_at.isoformat()}:{f.pk}",
        )
        for f in ReplayFill.objects.filter(user_id=run.user_id, run=run).order_by("executed_at", "id")
    ]


def subject_fills(*, user, subject: Subject) -> list[JournalFill]:
    uid = user_id_of(user)
    orders = Order.objects.filter(user_id=uid)
    if subject.kind == "bot":
        return _order_fills(user=user, orders=orders.filter(bot_id=int(subject.key)), book=lambda o: f"bot:{o.bot_id}")
    if subject.kind == "strategy":
        return _order_fills(
            user=user, orders=orders.filter(bot__strategy=subject.key), book=lambda o: f"bot:{o.bot_id}"
        )
    if subject.kind == "tag":
        return _order_fills(
            user=user, orders=orders.filter(playbook_tag=subject.key).exclude(source=OrderSource.BOT),
            book=lambda o: f"tag:{o.portfolio_id}",
        )
    return _replay_fills(replay_get(user=user, pk=subject.key))


# --- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breakdown:
    label: str
    stats: TradeStats


@dataclass
class Report:
    subject: Subject
    journal: Journal
    stats: TradeStats
    curve: CurveStats
    points: list[EquityPoint]
    exposure: Decimal | None
    by_regime: list[Breakdown]
    by_pair: list[Breakdown]
    by_period: list[Breakdown]
    run: ReplayRun | None = None

    @property
    def total_pnl(self) -> Decimal:
        return self.journal.realized + self.journal.unrealized

    @property
    def last_pnl(self) -> Decimal | None:
        return self.points[-1].pnl if self.points else None

    @property
    def curve_chart(self) -> dict:
        return svg_polyline([p.pnl for p in self.points])


def _stats(trips: Iterable[RoundTrip]) -> TradeStats:
    trips = list(trips)
    return trade_stats([t.pnl for t in trips], [t.fees for t in trips])


def breakdowns(closed: Sequence[RoundTrip]) -> tuple[list[Breakdown], list[Breakdown], list[Breakdown]]:
    """Closed trades per regime at entry, per pair, and per week of their exit (Monday, UTC)."""
    regimes = [
        Breakdown(REGIME_LABELS[r], _stats(t for t in closed if t.regime == r))
        for r in REGIME_ORDER
        if r or any(t.regime == "" for t in closed)
    ]
    pairs: dict[str, list[RoundTrip]] = defaultdict(list)
    weeks: dict[date, list[RoundTrip]] = defaultdict(list)
    for trip in closed:
        pairs[trip.symbol].append(trip)
        exit_day = trip.exit_at.date()  # type: ignore[union-attr]
        weeks[exit_day - timedelta(days=exit_day.weekday())].append(trip)
    return (
        regimes,
        [Breakdown(symbol, _stats(trips)) for symbol, trips in sorted(pairs.items())],
        [Breakdown(f"Week of {monday:%Y-%m-%d}", _stats(trips)) for monday, trips in sorted(weeks.items())],
    )


def _daily_closes(symbols: Iterable[str], first: date, last: date) -> Callable[[str, date], Decimal | None]:
    closes: dict[tuple[str, date], Decimal] = {}
    days = (last - first).days + 2
    for symbol in symbols:
        start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        for bar in candle_list(symbol=symbol, timeframe="1d", limit=min(max(days, 1), 5000), start=start, end=end):
            closes[(symbol, bar.open_time.date())] = bar.close
    return lambda symbol, day: closes.get((symbol, day))


def report_build(*, user, subject: Subject, now: datetime | None = None) -> Report:
    fills = subject_fills(user=user, subject=subject)
    run = replay_get(user=user, pk=subject.key) if subject.kind == "replay" else None
    symbols = sorted({f.symbol for f in fills})
    closes: Callable[[str, date], Decimal | None]
    if run is not None:
        marks = {run.instrument.symbol: run.mark_price} if run.mark_price is not None else {}
        closes_by_day = {date.fromisoformat(day): Decimal(close) for day, close in run.daily_closes.items()}
        closes = lambda symbol, day: closes_by_day.get(day)  # noqa: E731 - one pair per replay
        end = run.data_to + MINUTE if run.data_to else None
    else:
        marks = {symbol: quote.price for symbol, quote in quote_latest_map(symbols=symbols).items()}
        end = None
        first_day = min((f.at for f in fills), default=now or timezone.now()).date()
        closes = _daily_closes(symbols, first_day, (now or timezone.now()).date())
    journal = journal_build(fills, marks=marks, closes=closes, end=end)
    points = equity_points(journal.pnl_by_day, journal.capital)
    closed = journal.closed
    by_regime, by_pair, by_period = breakdowns(closed)
    return Report(
        subject=subject,
        journal=journal,
        stats=_stats(closed),
        curve=curve_stats(points, journal.capital),
        points=points,
        exposure=exposure(journal.exposure_intervals, journal.start, journal.end),
        by_regime=by_regime,
        by_pair=by_pair,
        by_period=by_period,
        run=run,
    )


def report_compare(*, user, refs: Sequence[str]) -> list[Report]:
    """Reports of 2 to 4 subjects side by side (the first four distinct ones named)."""
    seen: list[str] = []
    for ref in refs:
        if ref not in seen:
            seen.append(ref)
    return [report_build(user=user, subject=subject_parse(user=user, ref=ref)) for ref in seen[:4]]


def svg_polyline(values: Sequence[Decimal], *, width: int = 600, height: int = 160) -> dict:
    """Points of a polyline for the equity chart (an inline SVG; the table beside it is its text version),
    plus where the zero line is."""
    if not values:
        return {"points": "", "zero_y": None, "width": width, "height": height}
    low, high = min(min(values), ZERO), max(max(values), ZERO)
    span = (high - low) or Decimal(1)
    step = Decimal(width) / max(len(values) - 1, 1)
    coords = []
    for i, value in enumerate(values):
        x = step * i
        y = Decimal(height) - (value - low) / span * height
        coords.append(f"{x:.1f},{y:.1f}")
    if len(values) == 1:
        coords.append(f"{width},{coords[0].split(',')[1]}")
    zero_y = Decimal(height) - (ZERO - low) / span * height
    return {"points": " ".join(coords), "zero_y": f"{zero_y:.1f}", "width": width, "height": height}


# --- what the gate saved --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateOutcome:
    blocked: BlockedExecution
    quantity: Decimal
    price: Decimal
    mark_price: Decimal | None
    mark_at: datetime | None
    horizon_reached: bool
    pnl: Decimal | None  # what the blocked trade would have made by the mark (fees in); None without candles

    @property
    def saved(self) -> Decimal | None:
        return -self.pnl if self.pnl is not None else None


@dataclass(frozen=True)
class GateTotal:
    label: str
    blocked: int
    marked: int
    would_have_made: Decimal

    @property
    def saved(self) -> Decimal:
        return -self.would_have_made


def gate_outcome(*, blocked: BlockedExecution, horizon: timedelta) -> GateOutcome:
    """Mark one blocked execution to market: the trade the bot would have made (its allocation at the signal's
    price, within its maximum position) valued at the close of the last stored one-minute candle at or before
    the signal's bar + `horizon` (or the newest one, when the horizon has not passed yet), less the paper fee on
    entry and exit. A buy makes quantity x (mark - price); a sell avoided quantity x (price - mark)."""
    signal, bot = blocked.signal, blocked.bot
    instrument = signal.instrument
    price = signal.price
    quantity = quantize_down(min(bot.allocation / price, bot.max_position), instrument.quantity_precision) if price else ZERO
    target = signal.candle_open_time + horizon
    bars = candle_list(symbol=instrument.symbol, timeframe="1m", limit=1, end=target + MINUTE)
    if not bars or bars[-1].open_time <= signal.candle_open_time or not quantity:
        return GateOutcome(blocked, quantity, price, None, None, False, None)
    bar = bars[-1]
    direction = 1 if blocked.side == OrderSide.BUY else -1
    fee = Decimal(settings.TRADING_PAPER_FEE_RATE) * quantity * (price + bar.close)
    pnl = direction * quantity * (bar.close - price) - fee
    return GateOutcome(blocked, quantity, price, bar.close, bar.open_time + MINUTE, bar.open_time >= target, pnl)


def gate_outcomes(*, user, horizon: timedelta, bot: Bot | None = None) -> list[GateOutcome]:
    """The newest GATE_ROWS_MAX blocked executions of the trader, each marked to market."""
    rows = BlockedExecution.objects.filter(user_id=user_id_of(user)).select_related(
        "bot", "signal", "signal__instrument"
    )
    if bot is not None:
        rows = rows.filter(bot=bot)
    return [gate_outcome(blocked=row, horizon=horizon) for row in rows.order_by("-created_at", "-id")[:GATE_ROWS_MAX]]


def gate_totals(outcomes: Sequence[GateOutcome], *, by: str) -> list[GateTotal]:
    """Totals per strategy (`by="strategy"`) or per bot (`by="bot"`)."""
    groups: dict[str, list[GateOutcome]] = defaultdict(list)
    for outcome in outcomes:
        bot = outcome.blocked.bot
        groups[_strategy_label(bot.strategy) if by == "strategy" else bot.name].append(outcome)
    return [
        GateTotal(
            label=label,
            blocked=len(rows),
            marked=sum(1 for r in rows if r.pnl is not None),
            would_have_made=sum((r.pnl for r in rows if r.pnl is not None), ZERO),
        )
        for label, rows in sorted(groups.items())
    ]
