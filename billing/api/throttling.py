"""DRF pieces: the per-plan rate limit, with RateLimit-* headers on every answer it counts (docs/api.md)."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from billing.choices import Feature, PlanCode
from billing.plans import plan_get
from billing.selectors import user_rate_plan
from core.api import rate_limit_note


class PlanRateThrottle(SimpleRateThrottle):
    """API requests per minute from the caller's plan (anonymous callers get Free's, per IP address)."""

    scope = "plan"

    def __init__(self) -> None:
        # The rate depends on who is calling, so it is found per request in allow_request().
        pass

    def get_cache_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        user = request.user
        plan = user_rate_plan(user=user) if user and user.is_authenticated else plan_get(PlanCode.FREE)
        limit = plan.limit(Feature.API_REQUESTS_PER_MINUTE)
        if limit is None:
            return True
        self.rate = f"{limit}/min"
        self.num_requests, self.duration = limit, 60
        allowed = super().allow_request(request, view)
        history = getattr(self, "history", [])
        # Seconds until the oldest request in the window leaves it (the window then has room again).
        reset = self.duration - (self.now - history[-1]) if history else 0
        rate_limit_note(request, limit=limit, remaining=self.num_requests - len(history), reset=reset)
        return allowed
