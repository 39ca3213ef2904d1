"""DRF pieces: per-plan rate limit and a permission that enforces a plan limit on create."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from billing.choices import Feature, PlanCode
from billing.plans import plan_get
from billing.selectors import user_plan


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
        plan = user_plan(user=user) if user and user.is_authenticated else plan_get(PlanCode.FREE)
        limit = plan.limit(Feature.API_REQUESTS_PER_MINUTE)
        if limit is None:
            return True
        self.rate = f"{limit}/min"
        self.num_requests, self.duration = limit, 60
        return super().allow_request(request, view)


class PlanAllows(BasePermission):
    """Refuse a POST that would take the user past their plan's limit on `view.entitlement_feature`.

    The 403 body (problem+json) carries the limit and how to upgrade. The check holds the per-user
    lock until the request's transaction ends, so the view's create cannot race another request.
    """

    def has_permission(self, request, view) -> bool:
        from billing.services import PlanLimitExceeded, entitlement_check

        feature = getattr(view, "entitlement_feature", None)
        if feature is None or request.method in SAFE_METHODS or request.method != "POST":
            return True
        if not (request.user and request.user.is_authenticated):
            return False
        try:
            entitlement_check(user=request.user, feature=feature)
        except PlanLimitExceeded as exc:
            self.message = str(exc)
            return False
        return True
