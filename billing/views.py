from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.forms import PlanChoiceForm
from billing.plans import plan_list
from billing.selectors import billing_overview, payments_configured, user_plan
from billing.services import checkout_session_start, portal_session_start
from billing.webhooks import WebhookView
from core.errors import DomainError
from core.rls import system_context

_djstripe_webhook = WebhookView.as_view()


class _RefusedDelivery(Exception):
    """Carries dj-stripe's 4xx answer out of the system block, which its exit rolls back."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


@csrf_exempt
def stripe_webhook_view(request: HttpRequest, uuid) -> HttpResponse:
    """dj-stripe's endpoint, in system context: it reads the endpoint's signing secret and logs the
    delivery in dj-stripe's tables, and our callback stores the event, all of them system-only.

    A refused delivery (bad signature, unknown endpoint) leaves no row behind: the system block is rolled
    back by leaving it with an exception.
    """
    try:
        with system_context(reason=f"stripe webhook delivery to endpoint {uuid}"):
            response = _djstripe_webhook(request, uuid=uuid)
            if response.status_code >= 400:
                raise _RefusedDelivery(response)
    except _RefusedDelivery as refused:
        return refused.response
    return response


def pricing_view(request: HttpRequest) -> HttpResponse:
    current = user_plan(user=request.user) if request.user.is_authenticated else None
    return render(
        request,
        "billing/pricing.html",
        {"plans": plan_list(), "current": current, "payments_configured": payments_configured()},
    )


@login_required
def billing_view(request: HttpRequest) -> HttpResponse:
    overview = billing_overview(user=request.user)
    template = "billing/partials/status.html" if request.htmx else "billing/billing.html"
    return render(request, template, {"overview": overview})


@login_required
@require_POST
def checkout_view(request: HttpRequest) -> HttpResponse:
    form = PlanChoiceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Pro or Enterprise to upgrade.")
        return redirect("pricing")
    return_url = request.build_absolute_uri(reverse("billing_checkout_return"))
    try:
        url = checkout_session_start(
            user=request.user,
            plan_code=form.cleaned_data["plan"],
            success_url=f"{return_url}?result=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{return_url}?result=cancel",
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("billing")
    return HttpResponseRedirect(url, status=303)


@login_required
@require_POST
def portal_view(request: HttpRequest) -> HttpResponse:
    try:
        url = portal_session_start(
            user=request.user, return_url=request.build_absolute_uri(reverse("billing"))
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("billing")
    return HttpResponseRedirect(url, status=303)


@login_required
def checkout_return_view(request: HttpRequest) -> HttpResponse:
    if request.GET.get("result") == "success":
        messages.success(request, "Thank you! Your plan changes here as soon as Stripe confirms the payment.")
    else:
        messages.info(request, "Checkout cancelled; nothing was charged.")
    return redirect("billing")
