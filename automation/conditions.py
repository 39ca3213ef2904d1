"""A rule's conditions: each checked against live data, reported with the value it saw.

Stored as a list of dicts (kind + settings); `condition_clean` validates one when a rule is saved and
`condition_evaluate` checks it when a run starts. Every condition must hold for the actions to run.
"""

from __future__ import annotations

import operator
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.http import Http404

from automation.choices import Comparison, ConditionKind
from core.errors import DomainError
from core.money import decimal_parse, plain
from marketdata.selectors import instrument_get
from portfolios.selectors import portfolio_get, portfolio_valuation, position_list
from trading.choices import Regime
from trading.decisions.selectors import regime_latest

COMPARE = {
    Comparison.GT: operator.gt, Comparison.GTE: operator.ge, Comparison.LT: operator.lt,
    Comparison.LTE: operator.le, Comparison.EQ: operator.eq,
}
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
VALUE = {"max_digits": 24, "decimal_places": 8}


def _portfolio(user, value, *, field: str):
    try:
        return portfolio_get(user=user, pk=value)
    except Http404:
        raise DomainError("Choose one of your portfolios.", field=field) from None


def _time(value, *, field: str) -> time:
    text = str(value).strip()
    try:
        return datetime.strptime(text, "%H:%M").time()  # also 9:30
    except ValueError:
        pass
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise DomainError("Enter a time as HH:MM, e.g. 09:30.", field=field) from None


def condition_clean(*, user, raw: dict, prefix: str = "condition") -> dict:
    kind = raw.get("kind")
    if kind not in ConditionKind.values:
        raise DomainError("Choose what the condition checks.", field=f"{prefix}_kind")
    if kind in (ConditionKind.POSITION_SIZE, ConditionKind.PORTFOLIO_VALUE):
        portfolio = _portfolio(user, raw.get("portfolio_id"), field=f"{prefix}_portfolio")
        op = raw.get("op")
        if op not in Comparison.values:
            raise DomainError("Choose a comparison.", field=f"{prefix}_op")
        value = decimal_parse(raw.get("value"), field=f"{prefix}_value", label="a number", **VALUE)
        clean = {"kind": kind, "portfolio_id": portfolio.pk, "op": op, "value": plain(value)}
        if kind == ConditionKind.POSITION_SIZE:
            clean["symbol"] = instrument_get(symbol=raw.get("symbol") or "").symbol
        return clean
    if kind == ConditionKind.TIME_WINDOW:
        start = _time(raw.get("start"), field=f"{prefix}_start")
        end = _time(raw.get("end"), field=f"{prefix}_end")
        if start == end:
            raise DomainError("The window must not start and end at the same time.", field=f"{prefix}_end")
        given = raw.get("days") or list(range(7))
        try:
            days = sorted({int(str(day)) for day in given}) if isinstance(given, list) else []
        except ValueError:
            days = []
        if not days or any(day < 0 or day > 6 for day in days):
            raise DomainError("Choose at least one day.", field=f"{prefix}_days")
        return {"kind": kind, "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "days": days}
    regime = raw.get("regime")
    if regime not in Regime.values:
        raise DomainError("Choose a regime.", field=f"{prefix}_regime")
    return {"kind": kind, "symbol": instrument_get(symbol=raw.get("symbol") or "").symbol, "regime": regime}


def condition_describe(condition: dict) -> str:
    kind = condition["kind"]
    if kind == ConditionKind.POSITION_SIZE:
        return f"{condition['symbol']} position {Comparison(condition['op']).label} {condition['value']}"
    if kind == ConditionKind.PORTFOLIO_VALUE:
        return f"Portfolio value {Comparison(condition['op']).label} {condition['value']}"
    if kind == ConditionKind.TIME_WINDOW:
        days = condition.get("days") or list(range(7))
        label = "every day" if len(days) == 7 else ", ".join(DAY_NAMES[day] for day in days)
        return f"Between {condition['start']} and {condition['end']} ({label}, your time zone)"
    return f"{condition['symbol']} regime is {condition['regime']}"


def condition_evaluate(*, user, condition: dict, now: datetime) -> dict:
    """{"description", "observed", "passed"} for one stored condition; a condition it cannot read fails."""
    result = {"kind": condition["kind"], "description": condition_describe(condition)}
    try:
        observed, passed = _observe(user=user, condition=condition, now=now)
    except (DomainError, Http404) as exc:
        observed, passed = f"unavailable: {exc}", False
    return {**result, "observed": observed, "passed": passed}


def _observe(*, user, condition: dict, now: datetime) -> tuple[str, bool]:
    kind = condition["kind"]
    if kind == ConditionKind.TIME_WINDOW:
        local = now.astimezone(ZoneInfo(user.time_zone or "UTC"))
        start, end = time.fromisoformat(condition["start"]), time.fromisoformat(condition["end"])
        clock = local.time().replace(second=0, microsecond=0)
        inside = start <= clock < end if start < end else (clock >= start or clock < end)  # across midnight
        on_day = local.weekday() in (condition.get("days") or range(7))
        return f"{DAY_NAMES[local.weekday()]} {local:%H:%M} {local.tzname()}", inside and on_day
    if kind == ConditionKind.REGIME:
        reading = regime_latest(instrument=instrument_get(symbol=condition["symbol"]))
        if reading is None:
            return "no reading yet", False
        return reading.regime, reading.regime == condition["regime"]
    portfolio = portfolio_get(user=user, pk=condition["portfolio_id"])
    target = Decimal(condition["value"])
    compare = COMPARE[Comparison(condition["op"])]
    if kind == ConditionKind.POSITION_SIZE:
        position = position_list(portfolio=portfolio, include_closed=True).filter(
            instrument__symbol=condition["symbol"]
        ).first()
        quantity = position.quantity if position is not None else Decimal(0)
        return plain(quantity), compare(quantity, target)
    valuation = portfolio_valuation(portfolio=portfolio)
    if valuation.unpriced:
        return f"unpriced ({', '.join(valuation.unpriced)})", False
    return f"{plain(valuation.total.quantize(Decimal('0.01')))} {valuation.base_currency}", compare(valuation.total, target)
