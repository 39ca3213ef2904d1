"""Valuation: positions and cash at live prices, converted to the portfolio's base currency.

Pure functions over rows already loaded (positions, cash balances, quotes); `portfolios.selectors`
loads them. The rules (price source, conversion, rounding) are in docs/portfolio-math.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from core.money import ZERO
from portfolios.choices import USD_EQUIVALENTS
from portfolios.ledger import CONTEXT, mul, rounded


class PriceSource:
    LIVE = "live"
    STALE = "stale"
    LAST_TRADE = "last trade"


@dataclass(frozen=True)
class PositionLine:
    position_id: int
    symbol: str
    base: str
    quote: str
    slug: str
    quantity: Decimal
    average_cost: Decimal | None
    cost_basis: Decimal  # quote currency
    realized_pnl: Decimal  # quote currency
    price: Decimal | None
    price_source: str
    change_pct: Decimal | None
    market_value: Decimal | None  # quote currency
    unrealized_pnl: Decimal | None  # quote currency
    unrealized_pct: Decimal | None
    value_base: Decimal | None  # base currency; None when the quote currency cannot be converted
    weight_pct: Decimal | None = None


@dataclass(frozen=True)
class CashLine:
    currency: str
    amount: Decimal
    value_base: Decimal | None
    weight_pct: Decimal | None = None


@dataclass(frozen=True)
class AllocationSlice:
    label: str
    value: Decimal
    pct: Decimal


@dataclass(frozen=True)
class Valuation:
    portfolio_id: int
    base_currency: str
    at: datetime
    total: Decimal
    positions_value: Decimal
    cash_value: Decimal
    cost_basis: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    lines: list[PositionLine]
    cash: list[CashLine]
    unpriced: list[str]
    rates: dict[str, Decimal] = field(default_factory=dict)

    @property
    def allocation(self) -> list[AllocationSlice]:
        """Share of the total per holding (and per cash currency), largest first; short positions excluded."""
        parts = [(line.base, line.value_base) for line in self.lines]
        parts += [(f"{cash.currency} cash", cash.value_base) for cash in self.cash]
        merged: dict[str, Decimal] = {}
        for label, value in parts:
            if value is not None and value > 0:
                merged[label] = merged.get(label, ZERO) + value
        whole = sum(merged.values(), ZERO)
        if not whole:
            return []
        slices = [AllocationSlice(label=k, value=v, pct=percent(v, whole)) for k, v in merged.items()]
        return sorted(slices, key=lambda s: s.value, reverse=True)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (CONTEXT.divide(part * 100, whole)).quantize(Decimal("0.01"), context=CONTEXT)


def conversion_rate(currency: str, base: str, quotes: Mapping) -> Decimal | None:
    """How many units of `base` one unit of `currency` is worth now, or None when unknown.

    1 for the same currency; the price of CURRENCY/BASE; 1 / price of BASE/CURRENCY; 1 between
    USD, USDT and USDC when no direct quote exists. Nothing else (no chains through a third currency).
    """
    if currency == base:
        return Decimal(1)
    direct = quotes.get(f"{currency}/{base}")
    if direct is not None and direct.price:
        return direct.price
    inverse = quotes.get(f"{base}/{currency}")
    if inverse is not None and inverse.price:
        return rounded(CONTEXT.divide(Decimal(1), inverse.price))
    if currency in USD_EQUIVALENTS and base in USD_EQUIVALENTS:
        return Decimal(1)
    return None


def conversion_symbols(currencies: Iterable[str], base: str) -> set[str]:
    """The quote symbols `conversion_rate` may look at for these currencies."""
    symbols = set()
    for currency in currencies:
        if currency != base:
            symbols.update({f"{currency}/{base}", f"{base}/{currency}"})
    return symbols


def value_portfolio(
    *, portfolio, positions: Iterable, cash: Iterable, quotes: Mapping, at: datetime
) -> Valuation:
    """Value positions (Position rows with .instrument) and cash (CashBalance rows) with `quotes`."""
    base = portfolio.base_currency
    rates: dict[str, Decimal | None] = {}

    def rate(currency: str) -> Decimal | None:
        if currency not in rates:
            rates[currency] = conversion_rate(currency, base, quotes)
        return rates[currency]

    lines: list[PositionLine] = []
    unpriced: list[str] = []
    positions_value = cost_basis = unrealized = realized = ZERO
    for position in positions:
        instrument = position.instrument
        to_base = rate(instrument.quote)
        if position.realized_pnl and to_base is not None:
            realized += mul(position.realized_pnl, to_base)
        if not position.quantity:
            continue
        quote = quotes.get(instrument.symbol)
        if quote is not None:
            price, source = quote.price, (PriceSource.STALE if quote.stale else PriceSource.LIVE)
            change = quote.change_pct
        else:
            price, source, change = position.last_price, PriceSource.LAST_TRADE, None
        market_value = mul(position.quantity, price) if price is not None else None
        line_unrealized = market_value - position.cost_basis if market_value is not None else None
        value_base = mul(market_value, to_base) if market_value is not None and to_base is not None else None
        if value_base is None:
            unpriced.append(instrument.symbol)
        else:
            positions_value += value_base
            cost_basis += mul(position.cost_basis, to_base)
            unrealized += mul(line_unrealized, to_base)
        lines.append(
            PositionLine(
                position_id=position.pk,
                symbol=instrument.symbol,
                base=instrument.base,
                quote=instrument.quote,
                slug=instrument.slug,
                quantity=position.quantity,
                average_cost=rounded(CONTEXT.divide(position.cost_basis, position.quantity)),
                cost_basis=position.cost_basis,
                realized_pnl=position.realized_pnl,
                price=price,
                price_source=source,
                change_pct=change,
                market_value=market_value,
                unrealized_pnl=line_unrealized,
                unrealized_pct=percent(line_unrealized, abs(position.cost_basis))
                if line_unrealized is not None
                else None,
                value_base=value_base,
            )
        )
    cash_lines: list[CashLine] = []
    cash_value = ZERO
    for balance in cash:
        if not balance.amount:
            continue
        to_base = rate(balance.currency)
        value_base = mul(balance.amount, to_base) if to_base is not None else None
        if value_base is None:
            unpriced.append(balance.currency)
        else:
            cash_value += value_base
        cash_lines.append(CashLine(currency=balance.currency, amount=balance.amount, value_base=value_base))
    total = positions_value + cash_value
    lines = [
        _with_weight(line, total)
        for line in sorted(lines, key=lambda item: item.value_base or ZERO, reverse=True)
    ]
    cash_lines = [
        CashLine(
            currency=c.currency,
            amount=c.amount,
            value_base=c.value_base,
            weight_pct=percent(c.value_base, total) if c.value_base is not None else None,
        )
        for c in cash_lines
    ]
    return Valuation(
        portfolio_id=portfolio.pk,
        base_currency=base,
        at=at,
        total=total,
        positions_value=positions_value,
        cash_value=cash_value,
        cost_basis=cost_basis,
        unrealized_pnl=unrealized,
        realized_pnl=realized,
        lines=lines,
        cash=cash_lines,
        unpriced=unpriced,
        rates={k: v for k, v in rates.items() if v is not None},
    )


def _with_weight(line: PositionLine, total: Decimal) -> PositionLine:
    if line.value_base is None:
        return line
    return replace(line, weight_pct=percent(line.value_base, total))
