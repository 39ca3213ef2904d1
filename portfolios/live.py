"""The dashboard, live: revalue on price ticks and on new transactions, push HTMX out-of-band fragments.

Prices: the `revaluation` tick consumer, a process of its own (`manage.py run_tick_consumer
revaluation`), reads the batches of ticks the market feed publishes. It takes everything waiting as one
change batch: it finds who holds those symbols (one cross-tenant query, ids only), reads one quote map,
and then, inside each user's tenant, renders each affected portfolio ONCE and sends one message to the
user's group. Ticks that arrive while a batch is being rendered are read together afterwards, so a slow
round coalesces instead of queueing.

Transactions: the services call `portfolio_push` after their commit (rendered only for an open dashboard).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.template.loader import render_to_string
from django.utils import timezone

from core.api_events import api_events_send
from core.consumers import user_group
from core.rls import tenant
from marketdata.selectors import instrument_list, quote_latest_map
from marketdata.tick_consumers import TickHandler, register_tick_consumer
from marketdata.types import TickEvent
from portfolios.choices import Period
from portfolios.models import Portfolio
from portfolios.presence import viewers_among
from portfolios.selectors import (
    LiveState,
    history_compute,
    portfolio_history,
    portfolio_holders,
    portfolio_valuation,
    portfolios_live_state,
    transaction_list,
)
from portfolios.valuation import value_portfolio

logger = structlog.get_logger(__name__)
RECENT_TRANSACTIONS = 8
# Rendering is bound by database round trips, not CPU: a few threads overlap them.
REVALUE_THREADS = 4
PARALLEL_MIN_USERS = 64
SEND_CONCURRENCY = 100


def live_context(*, portfolio: Portfolio, quotes=None, periods=(Period.DAY,)) -> dict:
    """What the live parts of the dashboard show: valuation, day change, equity-curve live point."""
    valuation = portfolio_valuation(portfolio=portfolio, quotes=quotes)
    history = portfolio_history(portfolio=portfolio, valuation=valuation, periods=periods)
    return {
        "portfolio": portfolio,
        "valuation": valuation,
        "history": history,
        "day": history.day,
        "live_point": history.equity_curve()[-1],
    }


def state_fragment(*, state: LiveState, quotes, today) -> str:
    """The same fragment as `portfolio_fragment`, from the state read in one query (the tick path)."""
    valuation = value_portfolio(
        portfolio=state.portfolio,
        positions=state.positions,
        cash=state.cash,
        quotes=quotes,
        at=timezone.now(),
    )
    history = history_compute(
        portfolio=state.portfolio,
        valuation=valuation,
        today=today,
        periods=[Period.DAY],
        snapshots=state.snapshots,
        flows=state.flows,
        invested_before=state.invested_before,
    )
    context = {
        "portfolio": state.portfolio,
        "valuation": valuation,
        "history": history,
        "day": history.day,
        "live_point": history.equity_curve()[-1],
    }
    return render_to_string("portfolios/partials/live_update.html", context)


def portfolio_fragment(*, portfolio: Portfolio, quotes=None, include_recent: bool = False) -> str:
    context = live_context(portfolio=portfolio, quotes=quotes)
    if include_recent:
        context.update(
            {"include_recent": True, "recent": transaction_list(portfolio=portfolio)[:RECENT_TRANSACTIONS]}
        )
    return render_to_string("portfolios/partials/live_update.html", context)


def _send_all(messages: list[tuple[str, str]]) -> None:
    layer = get_channel_layer()

    async def send() -> None:
        for start in range(0, len(messages), SEND_CONCURRENCY):
            await asyncio.gather(
                *(
                    layer.group_send(group, {"type": "user.html", "html": html})
                    for group, html in messages[start : start + SEND_CONCURRENCY]
                )
            )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(send)()
        return
    # The caller's thread runs an event loop (the Discord bot, a browser-test driver) and async_to_sync
    # refuses to block it, so the sends run on a thread of their own, which this one waits for.
    sender = threading.Thread(target=asyncio.run, args=(send(),), name="portfolios-push")
    sender.start()
    sender.join()


def portfolio_push(*, portfolio_id: int, user_id: int) -> None:
    """Render one portfolio's live fragment as its owner and send it to their open dashboard.

    Skipped when they have no dashboard open: exchange fills fanned out to thousands of bots must not
    each pay for a render nobody sees.
    """
    portfolios_push(portfolios=[(portfolio_id, user_id)])


def portfolios_push(*, portfolios: list[tuple[int, int]]) -> None:
    """`portfolio_push` for many (portfolio id, owner id) pairs: one presence lookup for all of them.
    Programs with an API socket get a `position` event per portfolio (its positions changed)."""
    api_events_send(
        [(user_id, "positions", {"portfolio_id": portfolio_id}) for portfolio_id, user_id in portfolios]
    )
    watching = viewers_among(user_ids={user_id for _, user_id in portfolios})
    for portfolio_id, user_id in portfolios:
        if user_id in watching:
            _push_one(portfolio_id=portfolio_id, user_id=user_id)


def _push_one(*, portfolio_id: int, user_id: int) -> None:
    with tenant(user_id):
        portfolio = Portfolio.objects.filter(pk=portfolio_id, user_id=user_id).first()
        if portfolio is None:
            return
        html = portfolio_fragment(portfolio=portfolio, include_recent=True)
    _send_all([(user_group(user_id), html)])


@dataclass(frozen=True)
class RevalueResult:
    symbols: tuple[str, ...]
    users: int
    portfolios: int
    seconds: float


def _render_users(
    holders: list[tuple[int, list[int]]], quotes, *, own_connection: bool
) -> list[tuple[str, str, int]]:
    """(group, html, portfolios rendered) per user, each user's reads inside their own tenant."""
    out = []
    today = timezone.now().date()
    try:
        for user_id, portfolio_ids in holders:
            with tenant(user_id):
                states = portfolios_live_state(user_id=user_id, portfolio_ids=portfolio_ids, today=today)
            parts = [state_fragment(state=state, quotes=quotes, today=today) for state in states]
            out.append((user_group(user_id), "".join(parts), len(parts)))
    finally:
        if own_connection:  # a pool thread: its connection must not outlive the batch
            connections.close_all()
    return out


def portfolios_revalue(*, symbols) -> RevalueResult:
    """One change batch: revalue every portfolio holding any of `symbols` whose owner has a dashboard
    open (portfolios.presence), and push it to them.

    Each user costs a few database round trips (their tenant, positions, cash, last close), so a large
    batch is spread over REVALUE_THREADS threads, each with its own connection; a small one runs here.
    """
    started = time.perf_counter()
    symbols = tuple(sorted(set(symbols)))
    holders = portfolio_holders(symbols=symbols)
    watching = viewers_among(user_ids=holders)
    holders = [(user_id, ids) for user_id, ids in holders.items() if user_id in watching]
    if not holders:
        return RevalueResult(symbols=symbols, users=0, portfolios=0, seconds=time.perf_counter() - started)
    # One quote map for the whole batch. Quotes exist only for listed instruments, and every conversion
    # rate is an instrument's quote, so the map of all instruments serves every portfolio.
    wanted = set(instrument_list(active=None).values_list("symbol", flat=True))
    quotes = quote_latest_map(symbols=wanted)
    if len(holders) < PARALLEL_MIN_USERS:
        rendered = _render_users(holders, quotes, own_connection=False)
    else:
        chunks = [holders[n::REVALUE_THREADS] for n in range(REVALUE_THREADS)]
        with ThreadPoolExecutor(max_workers=REVALUE_THREADS, thread_name_prefix="portfolios-render") as pool:
            results = pool.map(lambda chunk: _render_users(chunk, quotes, own_connection=True), chunks)
            rendered = [item for chunk in results for item in chunk]
    _send_all([(group, html) for group, html, _ in rendered])
    return RevalueResult(
        symbols=symbols,
        users=len(holders),
        portfolios=sum(count for _, _, count in rendered),
        seconds=time.perf_counter() - started,
    )


class TickRevaluation(TickHandler):
    """The `revaluation` tick consumer (`manage.py run_tick_consumer revaluation`): each read takes every
    entry waiting (up to a thousand) as one change batch, so a slow round coalesces instead of queueing.
    Latest state wins: the quotes are read when the batch is rendered, and a restarted process starts
    from the newest entry instead of the backlog.

    Rounds start at most once every PORTFOLIO_REVALUATION_INTERVAL seconds (default 1): the feed publishes
    several batches a second, and re-rendering every open dashboard (and forwarding each fragment through
    the web processes) for each one is work no one reads faster than once a second. A round that comes
    sooner waits out the rest of the interval, then renders with the quotes of that moment; the ticks that
    arrive meanwhile are read together in the next round. When a round itself takes longer than the
    interval (many dashboards open) rounds already run back to back and this changes nothing."""

    clock = staticmethod(time.monotonic)
    pause = staticmethod(time.sleep)

    def __init__(self) -> None:
        self._last_round: float | None = None

    def handle(self, ticks: list[TickEvent]) -> None:
        interval = float(settings.PORTFOLIO_REVALUATION_INTERVAL)
        if self._last_round is not None and interval > 0:
            wait = self._last_round + interval - self.clock()
            if wait > 0:
                self.pause(wait)
        self._last_round = self.clock()
        result = portfolios_revalue(symbols={tick.symbol for tick in ticks})
        logger.debug(
            "portfolios.revalued",
            symbols=result.symbols,
            users=result.users,
            portfolios=result.portfolios,
            seconds=round(result.seconds, 4),
        )


def tick_consumer_register() -> None:
    register_tick_consumer("revaluation", handler=TickRevaluation, latest_only=True, read_count=1000)
