"""Alert pages (/alerts/). Thin: services do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts.forms import SERVICE_TO_FORM_FIELD, AlertForm
from alerts.selectors import alert_firing_list, alert_get, alert_list
from alerts.services import alert_create, alert_delete, alert_pause, alert_resume, alert_update
from core.errors import DomainError
from core.forms import form_add_domain_error
from marketdata.selectors import canonical_symbol, instrument_list, quote_latest_map

FIRINGS_SHOWN = 50


def _prefill(request: HttpRequest) -> dict:
    """`/alerts/?symbol=BTC-USDT&kind=price_below&threshold=23000`: what the market page and positions link to."""
    initial = {}
    if symbol := request.GET.get("symbol"):
        initial["symbol"] = canonical_symbol(symbol)
    if (kind := request.GET.get("kind")) in dict(AlertForm.base_fields["kind"].choices):
        initial["kind"] = kind
    if threshold := request.GET.get("threshold"):
        initial["threshold"] = threshold
    # isdecimal, not isdigit: "²" is a digit int() refuses; and an id has at most 19 digits (int() refuses
    # more than 4,300).
    if (portfolio := request.GET.get("portfolio", "")).isdecimal() and len(portfolio) <= 19:
        initial["portfolio"] = int(portfolio)
    if request.GET.get("pnl_unit") in ("absolute", "percent"):
        initial["pnl_unit"] = request.GET["pnl_unit"]
    return initial


def _alert(request: HttpRequest, alert_id: int):
    try:
        return alert_get(user=request.user, alert_id=alert_id)
    except DomainError:
        raise Http404("No such alert") from None


@login_required
def alert_list_view(request: HttpRequest) -> HttpResponse:
    form = AlertForm(request.POST or None, initial=_prefill(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            alert = alert_create(user=request.user, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc, field_names=SERVICE_TO_FORM_FIELD)
        else:
            messages.success(request, f"Alert created: {alert}.")
            return redirect("alert_list")
    status = 422 if request.method == "POST" else 200
    instruments = list(instrument_list())
    quotes = quote_latest_map(symbols=[i.symbol for i in instruments])
    return render(
        request,
        "alerts/alert_list.html",
        {
            "form": form,
            "alerts": alert_list(user=request.user),
            "firings": alert_firing_list(user=request.user)[:FIRINGS_SHOWN],
            "instruments": instruments,
            "markets": [(i, quotes[i.symbol]) for i in instruments if i.symbol in quotes],
        },
        status=status,
    )


@login_required
def alert_detail_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = _alert(request, alert_id)
    form = AlertForm.for_alert(alert, request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            alert_update(user=request.user, alert=alert, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc, field_names=SERVICE_TO_FORM_FIELD)
        else:
            messages.success(request, "Alert saved and armed.")
            return redirect("alert_detail", alert_id=alert.pk)
    return render(
        request,
        "alerts/alert_detail.html",
        {
            "alert": alert,
            "form": form,
            "firings": alert_firing_list(user=request.user, alert=alert)[:FIRINGS_SHOWN],
            "instruments": instrument_list(),
        },
        status=422 if request.method == "POST" else 200,
    )


def _row_or_redirect(request: HttpRequest, alert) -> HttpResponse:
    if request.htmx:
        return render(request, "alerts/partials/alert_row.html", {"alert": alert})
    return redirect("alert_list")


@login_required
@require_POST
def alert_pause_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = alert_pause(user=request.user, alert=_alert(request, alert_id))
    return _row_or_redirect(request, alert)


@login_required
@require_POST
def alert_resume_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = _alert(request, alert_id)
    try:
        alert = alert_resume(user=request.user, alert=alert)
    except DomainError as exc:
        if request.htmx:
            return render(request, "alerts/partials/alert_row.html", {"alert": alert, "error": str(exc)})
        messages.error(request, str(exc))
    return _row_or_redirect(request, alert)


@login_required
@require_POST
def alert_delete_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert_delete(user=request.user, alert=_alert(request, alert_id))
    if request.htmx:
        return HttpResponse("")
    messages.success(request, "Alert deleted.")
    return redirect("alert_list")
