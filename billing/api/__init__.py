"""billing's API: the per-plan rate limit (settings name `billing.api.PlanRateThrottle`) and the billing
operations under /api/v1/billing/ (views.py, urls.py)."""

from billing.api.throttling import PlanRateThrottle

__all__ = ["PlanRateThrottle"]
