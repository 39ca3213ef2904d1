"""Writes of alerts: create, edit, pause, resume, delete, fire, and the expiry / re-arm sweep.

Every write that changes what an evaluator must know announces the alert ids on the change stream after
commit (alerts/changes.py). Firing goes through `alert_fire`, which locks the alert row, re-checks it
against the database (state, cooldown, expiry, the crossing itself) and records the firing under the
(alert, occurrence_key) unique constraint, so a second evaluator or a retry records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from alerts.changes import alert_changes_on_commit
from alerts.choices import (
    EVENT_KINDS,
    PORTFOLIO_KINDS,
    POSITION_KINDS,
    PRICE_KINDS,
    TICK_KINDS,
    WINDOW_LABELS,
    AlertKind,
    AlertState,
    PnlUnit,
    directions_for,
    notification_kind,
)
from alerts.crossing import crosses
from alerts.events import alert_fired
from alerts.models import THRESHOLD, Alert, AlertFiring
from alerts.selectors import active_q
from billing.choices import Feature
from billing.services import entitlement_check
from core.errors import DomainError
from core.money import decimal_parse
from core.notifications import notify
from core.rls import system_context, tenant
from marketdata.selectors import instrument_get, quote_latest_map
from portfolios.models import Portfolio
from portfolios.selectors import portfolio_valuation, position_list

MAX_COOLDOWN = timedelta(days=30)
MAX_PERCENT = Decimal("1000")


def alert_entitlement_check(*, user, increment: int = 1) -> None:
    """The one place alerts ask billing whether the plan allows `increment` more active alerts.

    Raises billing's PlanLimitExceeded (a DomainError saying what the plan allows and how to get more).
    Billing counts active alerts with the counter registered in AlertsConfig.ready(). Call it inside the
    transaction that arms the alert: billing's per-user lock lasts until that transaction ends.
    """
    entitlement_check(user=user, feature=Feature.ALERTS, increment=increment)


# --- Validation -----------------------------------------------------------------------------------------


def _clean(
    *,
    user,
    kind: str,
    symbol: str = "",
    portfolio=None,
    pnl_unit: str = "",
    threshold=None,
    window_minutes: int | None = None,
    venue: str = "",
    repeat: bool = False,
    cooldown: timedelta | None = None,
    expires_at: datetime | None = None,
    note: str = "",
    check_current_price: bool = True,
) -> dict:
    if kind not in AlertKind.values:
        raise DomainError("Choose what the alert watches.", field="kind")
    fields: dict = {
        "kind": kind,
        "instrument": None,
        "threshold": None,
        "window_minutes": None,
        "pnl_unit": "",
        "venue": "",
        "repeat": bool(repeat),
        "note": (note or "").strip(),
    }
    if len(fields["note"]) > 200:
        raise DomainError("Keep the note under 200 characters.", field="note")
    cooldown = timedelta(minutes=15) if cooldown is None else cooldown
    if cooldown < timedelta(0) or cooldown > MAX_COOLDOWN:
        raise DomainError("The cooldown must be between 0 minutes and 30 days.", field="cooldown")
    fields["cooldown"] = cooldown
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry must be in the future.", field="expires_at")
    fields["expires_at"] = expires_at

    if kind in PORTFOLIO_KINDS | POSITION_KINDS:
        if portfolio is None:
            raise DomainError("Choose a portfolio.", field="portfolio")
        if portfolio.user_id != user.pk:
            raise DomainError("No such portfolio.", field="portfolio")
        fields["portfolio"] = portfolio
    if kind in TICK_KINDS | POSITION_KINDS:
        if not symbol:
            raise DomainError("Choose a market, e.g. BTC/USDT.", field="symbol")
        instrument = instrument_get(symbol=symbol)
        fields["instrument"] = instrument
    if kind in PRICE_KINDS:
        level = decimal_parse(threshold, field="threshold", label="a price", **THRESHOLD)
        if level <= 0:
            raise DomainError("The price must be greater than zero.", field="threshold")
        fields["threshold"] = level
        if check_current_price:
            _check_not_already_past(
                kind=kind, symbol=instrument.symbol, level=level, precision=instrument.price_precision
            )
    elif kind == AlertKind.PERCENT_MOVE:
        move = decimal_parse(threshold, field="threshold", label="a percent move", **THRESHOLD)
        if move == 0:
            raise DomainError("Enter a move other than 0%, e.g. -5 for a 5% fall.", field="threshold")
        if move <= -100 or move > MAX_PERCENT:
            raise DomainError("A move must be above -100% and at most 1000%.", field="threshold")
        if window_minutes not in WINDOW_LABELS:
            raise DomainError("Choose a window for the move.", field="window_minutes")
        fields["threshold"], fields["window_minutes"] = move, int(window_minutes)
    elif kind in PORTFOLIO_KINDS:
        value = decimal_parse(threshold, field="threshold", label="a portfolio value", **THRESHOLD)
        if value <= 0:
            raise DomainError("The portfolio value must be greater than zero.", field="threshold")
        fields["threshold"] = value
    elif kind in POSITION_KINDS:
        if pnl_unit not in PnlUnit.values:
            raise DomainError("Choose whether the level is an amount or a percent.", field="pnl_unit")
        fields["threshold"] = decimal_parse(threshold, field="threshold", label="a P&L level", **THRESHOLD)
        fields["pnl_unit"] = pnl_unit
        if pnl_unit == PnlUnit.PERCENT and fields["threshold"] <= -100:
            raise DomainError("A position cannot lose more than 100%.", field="threshold")
        if not position_list(portfolio=portfolio, include_closed=True).filter(instrument=instrument).exists():
            raise DomainError(f"{portfolio.name} has no {instrument.symbol} position.", field="symbol")
    elif kind == AlertKind.EXCHANGE_DEGRADED:
        fields["venue"] = (venue or "").strip().lower()
    return fields


def _check_not_already_past(*, kind: str, symbol: str, level: Decimal, precision: int) -> None:
    """An alert fires when the price crosses its level: one already past it would wait for a round trip."""
    quote = quote_latest_map(symbols=[symbol]).get(symbol)
    if quote is None or quote.stale:
        return
    now = _price(quote.price, precision)
    if kind == AlertKind.PRICE_ABOVE and quote.price >= level:
        raise DomainError(
            f"{symbol} is already at {now}; an alert above needs a higher level (or use 'falls below').",
            field="threshold",
        )
    if kind == AlertKind.PRICE_BELOW and quote.price <= level:
        raise DomainError(
            f"{symbol} is already at {now}; an alert below needs a lower level (or use 'rises above').",
            field="threshold",
        )


# --- Trader actions -------------------------------------------------------------------------------------


def alert_create(
    *,
    user,
    kind: str,
    symbol: str = "",
    portfolio=None,
    pnl_unit: str = "",
    threshold=None,
    window_minutes: int | None = None,
    venue: str = "",
    repeat: bool = False,
    cooldown: timedelta | None = None,
    expires_at: datetime | None = None,
    note: str = "",
) -> Alert:
    with tenant(user.pk):
        fields = _clean(
            user=user,
            kind=kind,
            symbol=symbol,
            portfolio=portfolio,
            pnl_unit=pnl_unit,
            threshold=threshold,
            window_minutes=window_minutes,
            venue=venue,
            repeat=repeat,
            cooldown=cooldown,
            expires_at=expires_at,
            note=note,
        )
        alert_entitlement_check(user=user)
        alert = Alert.objects.create(user=user, state=AlertState.ARMED, **fields)
        alert_changes_on_commit([alert.pk])
    return alert


def alert_update(
    *,
    user,
    alert: Alert,
    kind: str,
    symbol: str = "",
    portfolio=None,
    pnl_unit: str = "",
    threshold=None,
    window_minutes: int | None = None,
    venue: str = "",
    repeat: bool = False,
    cooldown: timedelta | None = None,
    expires_at: datetime | None = None,
    note: str = "",
) -> Alert:
    """Change an alert; an edited alert is armed again (its new level has not been crossed)."""
    with tenant(user.pk):
        fields = _clean(
            user=user,
            kind=kind,
            symbol=symbol,
            portfolio=portfolio,
            pnl_unit=pnl_unit,
            threshold=threshold,
            window_minutes=window_minutes,
            venue=venue,
            repeat=repeat,
            cooldown=cooldown,
            expires_at=expires_at,
            note=note,
        )
        alert = _locked(user=user, alert=alert)
        if not Alert.objects.filter(pk=alert.pk).filter(active_q()).exists():
            alert_entitlement_check(user=user)
        for name, value in fields.items():
            setattr(alert, name, value)
        alert.state, alert.rearm_at, alert.last_value = AlertState.ARMED, None, None
        alert.save()
        alert_changes_on_commit([alert.pk])
    return alert


def alert_pause(*, user, alert: Alert) -> Alert:
    with tenant(user.pk):
        alert = _locked(user=user, alert=alert)
        alert.state, alert.rearm_at = AlertState.DISABLED, None
        alert.save(update_fields=["state", "rearm_at", "updated_at"])
        alert_changes_on_commit([alert.pk])
    return alert


def alert_resume(*, user, alert: Alert) -> Alert:
    with tenant(user.pk):
        alert = _locked(user=user, alert=alert)
        if alert.state == AlertState.ARMED:
            return alert
        if alert.expires_at is not None and alert.expires_at <= timezone.now():
            raise DomainError(
                "This alert has expired; edit it to set a new expiry first.", field="expires_at"
            )
        alert_entitlement_check(user=user)
        alert.state, alert.rearm_at, alert.last_value = AlertState.ARMED, None, None
        alert.save(update_fields=["state", "rearm_at", "last_value", "updated_at"])
        alert_changes_on_commit([alert.pk])
    return alert


def alert_delete(*, user, alert: Alert) -> None:
    with tenant(user.pk):
        alert = _locked(user=user, alert=alert)
        alert_id = alert.pk
        alert.delete()
        alert_changes_on_commit([alert_id])


def _locked(*, user, alert: Alert) -> Alert:
    locked = Alert.objects.select_for_update().filter(pk=alert.pk, user=user).first()
    if locked is None:
        raise DomainError("No such alert.")
    return locked


# --- Firing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FireResult:
    status: str  # fired | duplicate | inactive | not_crossed | missing
    firing: AlertFiring | None = None


def _may_fire(alert: Alert, now: datetime) -> bool:
    if alert.state == AlertState.ARMED:
        return True
    return (
        alert.state == AlertState.TRIGGERED
        and alert.repeat
        and alert.rearm_at is not None
        and alert.rearm_at <= now
    )


def _crossed(alert: Alert, previous: Decimal | None, current: Decimal | None) -> bool:
    if previous is None or current is None or alert.threshold is None:
        return False
    return any(
        crosses(d, alert.threshold, previous, current) for d in directions_for(alert.kind, alert.threshold)
    )


def alert_fire(
    *,
    alert_id: int,
    user_id: int,
    occurrence_key: str,
    value: Decimal | None = None,
    previous_value: Decimal | None = None,
    detail: str = "",
    link: str = "",
    now: datetime | None = None,
) -> FireResult:
    """Fire the alert for one occurrence, if it is still armed and (for crossings) the move crosses it."""
    now = now or timezone.now()
    with tenant(user_id):
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("instrument", "user", "portfolio")
            .defer("user__password")
            .filter(pk=alert_id)
            .first()
        )
        if alert is None:
            return FireResult("missing")
        if (
            alert.expires_at is not None
            and alert.expires_at <= now
            and alert.state in (AlertState.ARMED, AlertState.TRIGGERED)
        ):
            alert.state, alert.rearm_at = AlertState.EXPIRED, None
            alert.save(update_fields=["state", "rearm_at", "updated_at"])
            alert_changes_on_commit([alert.pk])
            return FireResult("inactive")
        if not _may_fire(alert, now):
            return FireResult("inactive")
        if alert.kind not in EVENT_KINDS and not _crossed(alert, previous_value, value):
            return FireResult("not_crossed")
        message = firing_message(alert=alert, value=value, detail=detail)
        try:
            with transaction.atomic():
                firing = AlertFiring.objects.create(
                    user_id=user_id,
                    alert=alert,
                    occurrence_key=occurrence_key[:200],
                    value=value,
                    previous_value=previous_value,
                    message=message,
                )
        except IntegrityError:
            return FireResult("duplicate")
        alert.state = AlertState.TRIGGERED
        alert.rearm_at = now + alert.cooldown if alert.repeat else None
        alert.fired_count += 1
        alert.last_fired_at = now
        alert.save(update_fields=["state", "rearm_at", "fired_count", "last_fired_at", "updated_at"])
        firing.notification = notify(
            user=alert.user,
            kind=notification_kind(alert.kind),
            message=message,
            link=link or reverse("alert_detail", args=[alert.pk]),
            dedup_key=f"alert-firing:{firing.pk}",
        )
        firing.save(update_fields=["notification"])
        alert_changes_on_commit([alert.pk])
        fired = {
            "firing_id": firing.pk, "alert_id": alert.pk, "user_id": user_id, "kind": alert.kind,
            "symbol": alert.instrument.symbol if alert.instrument else "", "value": value,
            "previous_value": previous_value, "message": message,
        }
        transaction.on_commit(lambda: alert_fired.send_robust(sender=AlertFiring, firing=fired))
    return FireResult("fired", firing)


def _price(value: Decimal, precision: int) -> str:
    return f"{value:,.{precision}f}"


def _percent(value: Decimal) -> str:
    return f"{value.normalize():+f}%" if value == value.to_integral() else f"{value:+.2f}%"


def firing_message(*, alert: Alert, value: Decimal | None, detail: str = "") -> str:
    instrument, portfolio, threshold = alert.instrument, alert.portfolio, alert.threshold
    if alert.kind in PRICE_KINDS:
        # The table's check constraints guarantee what each kind needs: an instrument and a threshold here.
        assert instrument is not None and threshold is not None and value is not None
        precision = instrument.price_precision
        level, now = _price(threshold, precision), _price(value, precision)
        text = {
            AlertKind.PRICE_ABOVE: f"{instrument.symbol} rose above {level} (now {now}).",
            AlertKind.PRICE_BELOW: f"{instrument.symbol} fell below {level} (now {now}).",
            AlertKind.PRICE_CROSS: f"{instrument.symbol} crossed {level} (now {now}).",
        }[AlertKind(alert.kind)]
    elif alert.kind == AlertKind.PERCENT_MOVE:
        assert instrument is not None and threshold is not None and value is not None
        assert alert.window_minutes is not None
        text = (
            f"{instrument.symbol} moved {_percent(value)} in {WINDOW_LABELS[alert.window_minutes]} "
            f"(alert at {_percent(threshold)})."
        )
    elif alert.kind in PORTFOLIO_KINDS:
        assert portfolio is not None and threshold is not None and value is not None
        verb = "rose above" if alert.kind == AlertKind.PORTFOLIO_ABOVE else "fell below"
        currency = portfolio.base_currency
        text = (
            f"{portfolio.name} {verb} {_price(threshold, 2)} {currency} "
            f"(now {_price(value, 2)} {currency})."
        )
    elif alert.kind in POSITION_KINDS:
        assert instrument is not None and portfolio is not None and threshold is not None and value is not None
        verb = "rose above" if alert.kind == AlertKind.POSITION_PNL_ABOVE else "fell below"
        if alert.pnl_unit == PnlUnit.PERCENT:
            level, now = _percent(threshold), _percent(value)
        else:
            quote = instrument.quote
            level, now = f"{_price(threshold, 2)} {quote}", f"{_price(value, 2)} {quote}"
        text = f"{instrument.symbol} P&L in {portfolio.name} {verb} {level} (now {now})."
    else:
        text = detail or f"{alert.get_kind_display()}."
    if alert.note:
        text += f" Note: {alert.note}"
    return text


# --- Events (order filled, bot blocked, exchange degraded) ---------------------------------------------


def event_alert_owners(*, kind: str, user_ids: set[int]) -> set[int]:
    """Which of `user_ids` have an armed event alert of `kind` (one cross-tenant query, ids only)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"{kind!r} is not an event alert kind")
    if not user_ids:
        return set()
    with system_context(reason=f"alerts: which of {len(user_ids)} traders have armed {kind} alerts"):
        return set(
            Alert.objects.filter(kind=kind, user_id__in=user_ids)
            .filter(active_q())
            .order_by()  # the model's ordering would join the DISTINCT: a row per alert, sorted
            .values_list("user_id", flat=True)
            .distinct()
        )


def event_alerts_fire(
    *,
    kind: str,
    occurrence_key: str,
    detail: str,
    user_id: int | None = None,
    venue: str = "",
    link: str = "",
) -> list[FireResult]:
    """Fire the armed event alerts of `kind`: the user's own, or (venue events) every subscriber's."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"{kind!r} is not an event alert kind")
    now = timezone.now()
    if user_id is not None:
        with tenant(user_id):
            targets = list(
                Alert.objects.filter(user_id=user_id, kind=kind)
                .filter(active_q())
                .values_list("pk", "user_id")
            )
    else:
        with system_context(reason=f"alerts: {kind} on {venue} concerns every subscriber"):
            alerts = Alert.objects.filter(kind=kind).filter(active_q())
            if venue:
                alerts = alerts.filter(venue__in=["", venue.lower()])
            targets = list(alerts.values_list("pk", "user_id"))
    return [
        alert_fire(
            alert_id=alert_id, user_id=owner, occurrence_key=occurrence_key, detail=detail, link=link, now=now
        )
        for alert_id, owner in targets
    ]


# --- Portfolio value and position P&L ------------------------------------------------------------------


def value_alerts_evaluate(
    *, portfolio_id: int, user_id: int, now: datetime | None = None
) -> list[FireResult]:
    """Value the portfolio now and fire its value / P&L alerts whose level lies between the value last
    seen and this one. The last value is kept on the alert row (locked), so evaluators in several
    processes see one sequence of values; the n-th firing's key makes a racing duplicate impossible.
    """
    now = now or timezone.now()
    results: list[FireResult] = []
    with tenant(user_id):
        portfolio = Portfolio.objects.filter(pk=portfolio_id).first()
        if portfolio is None:
            return results
        valuation = portfolio_valuation(portfolio=portfolio)
        alerts = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("instrument")
            .filter(portfolio_id=portfolio_id, kind__in=PORTFOLIO_KINDS | POSITION_KINDS)
            .filter(active_q())
            .order_by("pk")
        )
        for alert in alerts:
            value = _observed_value(alert, valuation)
            if value is None:
                continue
            value = value.quantize(Decimal(1).scaleb(-THRESHOLD["decimal_places"]))
            previous, alert.last_value = alert.last_value, value
            alert.save(update_fields=["last_value", "updated_at"])
            if previous is None or previous == value:
                continue
            results.append(
                alert_fire(
                    alert_id=alert.pk,
                    user_id=user_id,
                    occurrence_key=f"value-crossing:{alert.fired_count + 1}",
                    value=value,
                    previous_value=previous,
                    now=now,
                )
            )
    return [result for result in results if result.status != "not_crossed"]


def _observed_value(alert: Alert, valuation) -> Decimal | None:
    if alert.kind in PORTFOLIO_KINDS:
        return None if valuation.unpriced else valuation.total
    assert alert.instrument is not None  # a position alert always names its instrument (check constraint)
    line = next((line for line in valuation.lines if line.symbol == alert.instrument.symbol), None)
    if line is None:
        return None
    return line.unrealized_pct if alert.pnl_unit == PnlUnit.PERCENT else line.unrealized_pnl


# --- Housekeeping ---------------------------------------------------------------------------------------


def alert_maintenance(*, now: datetime | None = None) -> dict[str, int]:
    """Expire alerts past their expiry and show repeating alerts as armed once their cooldown is over.

    The evaluators do not wait for this (they check expiry and cooldown themselves); it keeps the states
    the trader sees true and lets the indexes drop expired alerts.
    """
    now = now or timezone.now()
    with system_context(reason="alerts: expire and re-arm alerts of every user"):
        expired = list(
            Alert.objects.filter(
                state__in=[AlertState.ARMED, AlertState.TRIGGERED], expires_at__lte=now
            ).values_list("pk", flat=True)
        )
        Alert.objects.filter(pk__in=expired).update(state=AlertState.EXPIRED, rearm_at=None, updated_at=now)
        rearmed = list(
            Alert.objects.filter(state=AlertState.TRIGGERED, repeat=True, rearm_at__lte=now).values_list(
                "pk", flat=True
            )
        )
        Alert.objects.filter(pk__in=rearmed).update(state=AlertState.ARMED, rearm_at=None, updated_at=now)
        alert_changes_on_commit(expired + rearmed)
    return {"expired": len(expired), "rearmed": len(rearmed)}
