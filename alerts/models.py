"""Alerts and their firings. Both are tenant data (user_id, row-level security).

An alert fires at most once per occurrence (a tick, an event, an evaluation of a portfolio): the unique
constraint on (alert, occurrence_key) is what guarantees it, whichever process or retry gets there first.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q

from alerts.choices import AlertKind, AlertState, PnlUnit
from core.models import TenantModel
from core.money import Precision

THRESHOLD: Precision = {"max_digits": 24, "decimal_places": 8}


class Alert(TenantModel):
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    instrument = models.ForeignKey(
        "marketdata.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    threshold = models.DecimalField(
        **THRESHOLD,
        null=True,
        blank=True,
        help_text="Price level, percent (signed, for percent moves), portfolio value or P&L.",
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Portfolio value and position P&L alerts.",
    )
    window_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Percent moves only.")
    pnl_unit = models.CharField(max_length=16, choices=PnlUnit.choices, blank=True)
    venue = models.CharField(max_length=32, blank=True, help_text="Exchange alerts: one venue, or any.")
    repeat = models.BooleanField(default=False, help_text="Re-arm after the cooldown instead of firing once.")
    cooldown = models.DurationField(default=timedelta(minutes=15))
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.ARMED)
    rearm_at = models.DateTimeField(
        null=True, blank=True, help_text="A repeating alert may fire again from here."
    )
    last_value = models.DecimalField(
        **THRESHOLD, null=True, blank=True, help_text="Portfolio and position alerts: the value last seen."
    )
    fired_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "state"]),
            # The evaluators' loads and the event receivers' lookups.
            models.Index(fields=["kind", "state"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["price_above", "price_below", "price_cross"])
                | (Q(instrument__isnull=False) & Q(threshold__gt=0)),
                name="alerts_price_alert_has_instrument_and_positive_level",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent_move")
                | (Q(instrument__isnull=False) & Q(window_minutes__gt=0) & ~Q(threshold=0)),
                name="alerts_percent_alert_has_instrument_window_and_move",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["portfolio_above", "portfolio_below"])
                | (Q(portfolio__isnull=False) & Q(threshold__isnull=False)),
                name="alerts_portfolio_alert_has_portfolio_and_level",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["position_pnl_above", "position_pnl_below"])
                | (
                    Q(portfolio__isnull=False)
                    & Q(instrument__isnull=False)
                    & Q(threshold__isnull=False)
                    & Q(pnl_unit__in=["absolute", "percent"])
                ),
                name="alerts_position_alert_has_position_level_and_unit",
            ),
            models.CheckConstraint(
                condition=Q(cooldown__gte=timedelta(0)), name="alerts_cooldown_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def summary(self) -> str:
        """What the alert watches, as a trader would say it: "BTC/USDT rises above 23,500.00"."""
        kind = self.kind
        if kind in ("price_above", "price_below", "price_cross"):
            verb = {"price_above": "rises above", "price_below": "falls below", "price_cross": "crosses"}[
                kind
            ]
            return f"{self.instrument.symbol} {verb} {self.threshold:,.{self.instrument.price_precision}f}"
        if kind == "percent_move":
            move = self.threshold.normalize()
            minutes = self.window_minutes or 0
            window = f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
            return f"{self.instrument.symbol} moves {move:+f}% in {window}"
        if kind in ("portfolio_above", "portfolio_below"):
            verb = "rises above" if kind == "portfolio_above" else "falls below"
            return f"{self.portfolio.name} {verb} {self.threshold:,.2f} {self.portfolio.base_currency}"
        if kind in ("position_pnl_above", "position_pnl_below"):
            verb = "rises above" if kind == "position_pnl_above" else "falls below"
            level = (
                f"{self.threshold.normalize():+f}%"
                if self.pnl_unit == "percent"
                else f"{self.threshold:,.2f} {self.instrument.quote}"
            )
            return f"{self.instrument.symbol} P&L in {self.portfolio.name} {verb} {level}"
        if kind == "exchange_degraded" and self.venue:
            return f"{self.get_kind_display()} ({self.venue})"
        return self.get_kind_display()


class AlertFiring(TenantModel):
    """One time an alert went off: what was seen, and the notification it produced."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="firings")
    occurrence_key = models.CharField(
        max_length=200, help_text="The tick, event or evaluation that fired it."
    )
    value = models.DecimalField(**THRESHOLD, null=True, blank=True)
    previous_value = models.DecimalField(**THRESHOLD, null=True, blank=True)
    message = models.TextField()
    notification = models.ForeignKey(
        "core.Notification", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["user", "-fired_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "occurrence_key"], name="alerts_firing_once_per_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} @ {self.fired_at:%Y-%m-%d %H:%M:%S}"
