"""Plan limits: the one place trading asks billing."""

from __future__ import annotations

from billing.services import entitlement_check


def trading_entitlement_check(*, user, feature: str, increment: int = 1) -> None:
    """Raise PlanLimitExceeded (a DomainError) when `user`'s plan does not allow one more `feature`.

    Features: "exchange_connections" (real venues; the paper exchange is free) and "bots". Billing answers,
    using the counters registered in TradingConfig.ready() (receivers.billing_counters_register).
    """
    entitlement_check(user=user, feature=feature, increment=increment)
