"""Plan limits for server-rendered views: a decorator for functions, a mixin for class-based views.

Both check on POST (the request that creates something) and answer 403 with the plan's limit and an
upgrade link; for HTMX requests the same message comes back as a fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.services import PlanLimitExceeded, entitlement_check


def limit_reached_response(request: HttpRequest, error: PlanLimitExceeded) -> HttpResponse:
    template = (
        "billing/partials/limit_reached.html"
        if getattr(request, "htmx", False)
        else "billing/limit_reached.html"
    )
    return render(request, template, {"error": error}, status=403)


def entitlement_required(feature: str, *, increment: int = 1, methods: tuple[str, ...] = ("POST",)):
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in methods and request.user.is_authenticated:
                try:
                    entitlement_check(user=request.user, feature=feature, increment=increment)
                except PlanLimitExceeded as exc:
                    return limit_reached_response(request, exc)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class EntitlementRequiredMixin:
    entitlement_feature: str = ""
    entitlement_increment: int = 1
    entitlement_methods: tuple[str, ...] = ("POST",)

    def dispatch(self, request, *args, **kwargs):
        if (
            self.entitlement_feature
            and request.method in self.entitlement_methods
            and request.user.is_authenticated
        ):
            try:
                entitlement_check(
                    user=request.user, feature=self.entitlement_feature, increment=self.entitlement_increment
                )
            except PlanLimitExceeded as exc:
                return limit_reached_response(request, exc)
        return super().dispatch(request, *args, **kwargs)
