"""Reads: portfolios, positions, cash, transactions, valuation, performance, equity curve, watchlists.

Every selector filters by the user or portfolio it is given (row-level security is the backstop, the
filter is for the reader). `portfolio_holders` and `portfolio_keys_all` are the two cross-tenant reads;
they go through `core.rls.system_context` and return ids only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from core.money import ZERO, plain
from core.rls import system_context
from marketdata.selectors import quote_latest_map
from portfolios.choices import Period
from portfolios.ledger import mul
from portfolios.models import CashBalance, Lot, Portfolio, Position, Snapshot, Transaction, Watchlist
from portfolios.performance import Performance, SeriesPoint, performance, period_start
from portfolios.valuation import Valuation, conversion_rate, conversion_symbols, value_portfolio

# --- portfolios, positions, cash, transactions ------------------------------------------------------


def portfolio_list(*, user) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(user=user).order_by("created_at", "id")


def portfolio_get(*, user, pk) -> Portfolio:
    """The user's portfolio `pk`; Http404 (a 404 page, a problem+json 404 in the API) otherwise."""
    try:
        return Portfolio.objects.get(user=user, pk=int(pk))
    except (Portfolio.DoesNotExist, TypeError, ValueError):
        raise Http404("No such portfolio.") from None


def portfolio_default(*, user) -> Portfolio | None:
    return portfolio_list(user=user).first()


def position_list(*, portfolio: Portfolio, include_closed: bool = False) -> QuerySet[Position]:
    positions = Position.objects.filter(portfolio=portfolio).select_related("instrument")
    if not include_closed:
        positions = positions.exclude(quantity=0)
    return positions.order_by("instrument__symbol")


def lot_list(*, position: Position, include_closed: bool = False) -> QuerySet[Lot]:
    lots = Lot.objects.filter(position=position)
    if not include_closed:
        lots = lots.filter(closed_at__isnull=True)
    return lots.order_by("opened_at", "id")


def cash_balance(*, portfolio: Portfolio, currency: str) -> Decimal:
    amount = (
        CashBalance.objects.filter(portfolio=portfolio, currency=currency.upper())
        .values_list("amount", flat=True)
        .first()
    )
    return amount if amount is not None else ZERO


def cash_balance_list(*, portfolio: Portfolio) -> QuerySet[CashBalance]:
    return CashBalance.objects.filter(portfolio=portfolio).order_by("currency")


def transaction_list(*, portfolio: Portfolio, kind: str | None = None) -> QuerySet[Transaction]:
    transactions = Transaction.objects.filter(portfolio=portfolio).select_related("instrument")
    if kind:
        transactions = transactions.filter(kind=kind)
    return transactions.order_by("-executed_at", "-id")


def transaction_get(*, user, pk) -> Transaction:
    try:
        return Transaction.objects.select_related("portfolio", "instrument").get(user=user, pk=int(pk))
    except (Transaction.DoesNotExist, TypeError, ValueError):
        raise Http404("No such transaction.") from None


def external_ids_present(*, portfolio: Portfolio, external_ids: Iterable[str]) -> set[str]:
    wanted = [e for e in external_ids if e]
    if not wanted:
        return set()
    return {
        external_id
        for external_id in Transaction.objects.filter(portfolio=portfolio, external_id__in=wanted).values_list(
            "external_id", flat=True
        )
        if external_id
    }


# --- valuation ----------------------------------------------------------------------------------------


def portfolio_valuation(*, portfolio: Portfolio, quotes: Mapping | None = None) -> Valuation:
    """The portfolio valued now in its base currency (three queries: positions, cash, quotes).

    `quotes` (symbol -> QuoteSnapshot) may be given to value many portfolios against one quote map.
    """
    positions = list(position_list(portfolio=portfolio, include_closed=True))
    cash = list(cash_balance_list(portfolio=portfolio))
    if quotes is None:
        quotes = quote_latest_map(
            symbols=valuation_symbols(portfolio=portfolio, positions=positions, cash=cash)
        )
    return value_portfolio(
        portfolio=portfolio, positions=positions, cash=cash, quotes=quotes, at=timezone.now()
    )


def valuation_symbols(
    *, portfolio: Portfolio, positions: Iterable[Position], cash: Iterable[CashBalance]
) -> set[str]:
    positions = list(positions)
    currencies = {p.instrument.quote for p in positions} | {c.currency for c in cash}
    symbols = {p.instrument.symbol for p in positions if p.quantity}
    return symbols | conversion_symbols(currencies, portfolio.base_currency)


def _rates_for(currencies: set[str], *, base: str, known: Mapping[str, Decimal]) -> dict[str, Decimal]:
    rates = {c: known[c] for c in currencies if c in known}
    missing = currencies - set(rates)
    if missing:
        quotes = quote_latest_map(symbols=conversion_symbols(missing, base))
        for currency in missing:
            rate = conversion_rate(currency, base, quotes)
            if rate is not None:
                rates[currency] = rate
    return rates


def flows_cumulative(*, portfolio: Portfolio) -> dict[str, Decimal]:
    """Money added minus taken out over the portfolio's whole history, per currency (one query)."""
    totals: dict[str, Decimal] = {}
    rows = (
        Transaction.objects.filter(portfolio=portfolio)
        .filter(~Q(flow_amount=0) | ~Q(fee_funding=0))
        .values("flow_currency", "fee_currency")
        .annotate(flow=Sum("flow_amount"), fee_flow=Sum("fee_funding"))
    )
    for row in rows:
        if row["flow"]:
            totals[row["flow_currency"]] = totals.get(row["flow_currency"], ZERO) + row["flow"]
        if row["fee_flow"]:
            totals[row["fee_currency"]] = totals.get(row["fee_currency"], ZERO) + row["fee_flow"]
    return totals


def flows_between(
    *,
    portfolio: Portfolio,
    before: Mapping[str, Decimal],
    after: Mapping[str, Decimal],
    rates: Mapping[str, Decimal],
) -> Decimal:
    """The money added between two cumulative flow records, in the base currency at `rates`.

    Each currency's difference is converted at the rate of the later point (docs/portfolio-math.md).
    """
    changes = {c: after.get(c, ZERO) - before.get(c, ZERO) for c in set(before) | set(after)}
    changes = {c: amount for c, amount in changes.items() if amount}
    if not changes:
        return ZERO
    known = _rates_for(set(changes), base=portfolio.base_currency, known=rates)
    return sum((mul(amount, known[c]) for c, amount in changes.items() if c in known), ZERO)


def flows_decode(stored: Mapping[str, str]) -> dict[str, Decimal]:
    return {currency: Decimal(amount) for currency, amount in (stored or {}).items()}


def flows_encode(flows: Mapping[str, Decimal]) -> dict[str, str]:
    return {currency: plain(amount) for currency, amount in sorted(flows.items()) if amount}


# --- snapshots, performance, equity curve -------------------------------------------------------------


def snapshot_latest(*, portfolio: Portfolio, before: date | None = None) -> Snapshot | None:
    snapshots = Snapshot.objects.filter(portfolio=portfolio)
    if before is not None:
        snapshots = snapshots.filter(date__lt=before)
    return snapshots.order_by("-date").first()


def snapshot_list(*, portfolio: Portfolio) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(portfolio=portfolio).order_by("date")


@dataclass(frozen=True)
class History:
    """The daily series plus the live point, and the figures computed from it."""

    points: list[SeriesPoint]
    performance: list[Performance]
    invested_before: Decimal = ZERO  # money added before the first point (when the series is partial)

    @property
    def day(self) -> Performance:
        return self.performance[0]

    def equity_curve(self) -> list[dict]:
        """Value and cumulative net money added per day, for the chart (the live point last)."""
        invested = self.invested_before
        curve = []
        for point in self.points:
            invested += point.flow
            curve.append(
                {"time": point.day.isoformat(), "value": str(point.value), "invested": str(invested)}
            )
        return curve


def portfolio_history(
    *,
    portfolio: Portfolio,
    valuation: Valuation,
    today: date | None = None,
    periods: Iterable[str] = Period.values,
) -> History:
    """Snapshots + live value -> performance for each period (1D first). Two queries (three with a
    currency conversion the valuation did not need)."""
    today = today or timezone.now().date()
    periods = list(periods)
    snapshots = _snapshots_for(
        portfolio=portfolio, today=today, starts=[period_start(p, today) for p in periods]
    )
    invested_before = ZERO
    if snapshots and None not in {period_start(p, today) for p in periods}:  # a partial series
        invested_before = (
            Snapshot.objects.filter(portfolio=portfolio, date__lt=snapshots[0][0]).aggregate(
                total=Sum("net_flow")
            )["total"]
            or ZERO
        )
    return history_compute(
        portfolio=portfolio,
        valuation=valuation,
        today=today,
        periods=periods,
        snapshots=snapshots,
        flows=flows_cumulative(portfolio=portfolio),
        invested_before=invested_before,
    )


def history_compute(
    *,
    portfolio,
    valuation: Valuation,
    today: date,
    periods: list[str],
    snapshots: list[tuple],
    flows: Mapping[str, Decimal],
    invested_before: Decimal = ZERO,
) -> History:
    """The figures from already loaded closes (date, value, net_flow, flows) and cumulative flows;
    `invested_before` is the money added before the first of those closes."""
    last_flows = flows_decode(snapshots[-1][3]) if snapshots else {}
    live = SeriesPoint(
        day=today,
        value=valuation.total,
        flow=flows_between(portfolio=portfolio, before=last_flows, after=flows, rates=valuation.rates),
        live=True,
    )
    series = [SeriesPoint(day=d, value=v, flow=f) for d, v, f, _ in snapshots] + [live]
    figures = []
    for period in periods:
        start = period_start(period, today)
        opening = None
        if start is not None:
            opening = next((p for p in reversed(series[:-1]) if p.day <= start), None)
        if opening is None or start is None:
            figures.append(performance(period=period, start=None, start_value=ZERO, points=series))
        else:
            after = [p for p in series if p.day > start]
            figures.append(
                performance(period=period, start=opening.day, start_value=opening.value, points=after)
            )
    return History(points=series, performance=figures, invested_before=invested_before)


# The live push reads everything one portfolio's day change needs in ONE statement per user (it runs
# for every holder on every tick; six ORM queries cost several times more). Run inside the user's
# tenant: row-level security applies to every table in it.
LIVE_STATE_SQL = """
SELECT p.id, p.base_currency,
  (SELECT coalesce(json_agg(json_build_array(pos.id, i.id, i.symbol, i.base, i.quote, pos.quantity::text,
                                             pos.cost_basis::text, pos.realized_pnl::text, pos.last_price::text)
                            ORDER BY i.symbol),
                   '[]')
     FROM portfolios_position pos JOIN marketdata_instrument i ON i.id = pos.instrument_id
    WHERE pos.portfolio_id = p.id),
  (SELECT coalesce(json_agg(json_build_array(c.currency, c.amount::text) ORDER BY c.currency), '[]')
     FROM portfolios_cashbalance c WHERE c.portfolio_id = p.id),
  (SELECT json_build_array(s.date, s.value::text, s.net_flow::text, s.flows)
     FROM portfolios_snapshot s WHERE s.portfolio_id = p.id AND s.date < %(today)s
    ORDER BY s.date DESC LIMIT 1),
  (SELECT coalesce(sum(s.net_flow), 0)::text
     FROM portfolios_snapshot s WHERE s.portfolio_id = p.id AND s.date < %(today)s),
  (SELECT coalesce(json_agg(json_build_array(f.currency, f.amount::text)), '[]') FROM (
      SELECT t.flow_currency AS currency, sum(t.flow_amount) AS amount FROM portfolios_transaction t
       WHERE t.portfolio_id = p.id AND t.flow_amount <> 0 GROUP BY t.flow_currency
      UNION ALL
      SELECT t.fee_currency, sum(t.fee_funding) FROM portfolios_transaction t
       WHERE t.portfolio_id = p.id AND t.fee_funding <> 0 GROUP BY t.fee_currency) f)
  FROM portfolios_portfolio p
 WHERE p.user_id = %(user_id)s AND p.id = ANY(%(ids)s)
 ORDER BY p.id
"""


@dataclass(frozen=True)
class LiveState:
    portfolio: SimpleNamespace  # pk, user_id, base_currency: what valuation and the fragment use
    positions: list[SimpleNamespace]
    cash: list[SimpleNamespace]
    snapshots: list[tuple]  # the last close before today, if any
    flows: dict[str, Decimal]
    invested_before: Decimal  # money added before that close


def portfolios_live_state(*, user_id: int, portfolio_ids: list[int], today: date) -> list[LiveState]:
    """The state the live push renders, for the user's portfolios `portfolio_ids` (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(LIVE_STATE_SQL, {"user_id": user_id, "ids": list(portfolio_ids), "today": today})
        rows = cursor.fetchall()
    states = []
    for portfolio_id, base_currency, positions, cash, last, closes_net_flow, flow_rows in rows:
        flows: dict[str, Decimal] = {}
        for currency, amount in flow_rows:
            flows[currency] = flows.get(currency, ZERO) + Decimal(amount)
        states.append(
            LiveState(
                portfolio=SimpleNamespace(pk=portfolio_id, user_id=user_id, base_currency=base_currency),
                positions=[
                    SimpleNamespace(
                        pk=pk,
                        instrument=SimpleNamespace(
                            pk=instrument_id,
                            symbol=symbol,
                            base=base,
                            quote=quote,
                            slug=symbol.replace("/", "-"),
                        ),
                        quantity=Decimal(quantity),
                        cost_basis=Decimal(cost),
                        realized_pnl=Decimal(realized),
                        last_price=Decimal(last_price) if last_price is not None else None,
                    )
                    for pk, instrument_id, symbol, base, quote, quantity, cost, realized, last_price in positions
                ],
                cash=[
                    SimpleNamespace(currency=currency, amount=Decimal(amount)) for currency, amount in cash
                ],
                snapshots=[(date.fromisoformat(last[0]), Decimal(last[1]), Decimal(last[2]), last[3])]
                if last
                else [],
                flows=flows,
                invested_before=Decimal(closes_net_flow) - (Decimal(last[2]) if last else ZERO),
            )
        )
    return states


def _snapshots_for(*, portfolio: Portfolio, today: date, starts: list[date | None]) -> list[tuple]:
    """The closes the periods need, oldest first: all of them for "all time"; otherwise those after the
    earliest start plus the one that opens it (when none opens it, those after it are all there are)."""
    closes = Snapshot.objects.filter(portfolio=portfolio, date__lt=today).values_list(
        "date", "value", "net_flow", "flows"
    )
    known = [start for start in starts if start is not None]
    if len(known) < len(starts):
        return list(closes.order_by("date"))
    earliest = min(known)
    opening = list(closes.filter(date__lte=earliest).order_by("-date")[:1])
    if earliest >= today - timedelta(days=1):  # 1D only: no close can fall between yesterday and today
        return opening
    return opening + list(closes.filter(date__gt=earliest).order_by("date"))


# --- cross-tenant reads (ids only) --------------------------------------------------------------------


def portfolio_holders(*, symbols: Iterable[str]) -> dict[int, list[int]]:
    """user id -> ids of their portfolios with an open position in any of `symbols`. Cross-tenant."""
    symbols = sorted(set(symbols))
    if not symbols:
        return {}
    holders: dict[int, list[int]] = {}
    with system_context(reason=f"portfolios: holders of {', '.join(symbols)} for live revaluation"):
        rows = (
            Position.objects.filter(instrument__symbol__in=symbols)
            .exclude(quantity=0)
            .values_list("user_id", "portfolio_id")
            .distinct()
            .order_by("user_id", "portfolio_id")
        )
        for user_id, portfolio_id in rows:
            holders.setdefault(user_id, []).append(portfolio_id)
    return holders


def portfolio_keys_all() -> list[tuple[int, int]]:
    """(portfolio id, user id) of every portfolio, for the daily snapshot fan-out. Cross-tenant."""
    with system_context(reason="portfolios: daily snapshot fan-out"):
        return list(Portfolio.objects.order_by("id").values_list("id", "user_id"))


# --- watchlists ---------------------------------------------------------------------------------------


def watchlist_list(*, user) -> QuerySet[Watchlist]:
    return (
        Watchlist.objects.filter(user=user).prefetch_related("items__instrument").order_by("created_at", "id")
    )


def watchlist_get(*, user, pk) -> Watchlist:
    try:
        return Watchlist.objects.get(user=user, pk=int(pk))
    except (Watchlist.DoesNotExist, TypeError, ValueError):
        raise Http404("No such watchlist.") from None
