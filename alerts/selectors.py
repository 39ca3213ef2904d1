"""Reads of alerts. Trader-facing selectors filter by user (RLS is the backstop); the evaluator's loads are
cross-tenant by nature and go through `system_context`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet

from alerts.choices import PORTFOLIO_KINDS, POSITION_KINDS, TICK_KINDS, AlertState
from alerts.models import Alert, AlertFiring
from core.errors import DomainError
from core.rls import system_context


def alert_list(*, user, state: str | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(user=user).select_related("instrument")
    if state:
        alerts = alerts.filter(state=state)
    return alerts.order_by("-created_at", "-id")


def alert_get(*, user, alert_id: int) -> Alert:
    alert = Alert.objects.filter(user=user, pk=alert_id).select_related("instrument").first()
    if alert is None:
        raise DomainError("No such alert.")
    return alert


def alert_active_count(*, user) -> int:
    """Alerts that count against the plan: armed, or triggered and waiting to re-arm."""
    return Alert.objects.filter(user=user).filter(active_q()).count()


def active_q() -> Q:
    return Q(state=AlertState.ARMED) | Q(state=AlertState.TRIGGERED, repeat=True)


def alert_firing_list(*, user, alert: Alert | None = None) -> QuerySet[AlertFiring]:
    firings = AlertFiring.objects.filter(user=user).select_related("alert", "alert__instrument")
    if alert is not None:
        firings = firings.filter(alert=alert)
    return firings.order_by("-fired_at", "-id")


@dataclass(frozen=True, slots=True)
class TickAlertRow:
    id: int
    user_id: int
    kind: str
    symbol: str
    threshold: Decimal
    window_minutes: int | None
    state: str
    repeat: bool
    rearm_at: datetime | None
    expires_at: datetime | None


_ROW_FIELDS = (
    "pk",
    "user_id",
    "kind",
    "instrument__symbol",
    "threshold",
    "window_minutes",
    "state",
    "repeat",
    "rearm_at",
    "expires_at",
)


def evaluator_state(*, ids: Iterable[int] | None = None) -> tuple[list[TickAlertRow], dict[int, int]]:
    """What a tick evaluator needs, in one cross-tenant read (the alerts of every user):

    - every tick-evaluated alert that may still fire (or, with `ids`, those alerts in whatever state);
    - portfolio id -> user id of every portfolio with an active value or P&L alert.
    """
    with system_context(reason="alerts: load the tick evaluator's index (alerts of every user)"):
        alerts = Alert.objects.filter(kind__in=TICK_KINDS)
        alerts = alerts.filter(active_q()) if ids is None else alerts.filter(pk__in=list(ids))
        rows = [TickAlertRow(*row) for row in alerts.values_list(*_ROW_FIELDS).iterator(chunk_size=10_000)]
        portfolios = dict(
            Alert.objects.filter(kind__in=PORTFOLIO_KINDS | POSITION_KINDS)
            .filter(active_q())
            .order_by()  # no model ordering in the DISTINCT
            .values_list("portfolio_id", "user_id")
            .distinct()
        )
    return rows, portfolios
