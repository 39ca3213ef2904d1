"""Pages: the dashboard, portfolios, transactions (add, list, delete), import / export, watchlists.

Thin: forms check input, services write, selectors read. One template serves the full page and its
HTMX partial (the add-transaction form answers HTMX with the form plus out-of-band updates).
"""

from __future__ import annotations

import functools
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError
from core.forms import form_add_domain_error
from marketdata.selectors import quote_latest_map
from portfolios.choices import Period
from portfolios.forms import ImportForm, PortfolioForm, TransactionForm, WatchlistAddForm, WatchlistForm
from portfolios.importing import (
    MAX_IMPORT_BYTES,
    RowStatus,
    import_preview,
    positions_csv,
    size_message,
    transactions_csv,
    transactions_import,
)
from portfolios.live import RECENT_TRANSACTIONS, live_context
from portfolios.models import Portfolio
from portfolios.presence import HEARTBEAT_SECONDS, viewer_touch
from portfolios.selectors import (
    portfolio_default,
    portfolio_get,
    portfolio_list,
    portfolio_valuation,
    transaction_get,
    transaction_list,
    watchlist_get,
    watchlist_list,
)
from portfolios.services import (
    portfolio_create,
    portfolio_delete,
    transaction_delete,
    transaction_record,
    watchlist_add,
    watchlist_create,
    watchlist_delete,
    watchlist_remove,
)

IMPORT_CACHE_SECONDS = 30 * 60


def in_user_timezone(view):
    """Forms read, and pages show, times in the trader's own time zone (Settings)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with timezone.override(getattr(request.user, "time_zone", None) or "UTC"):
            return view(request, *args, **kwargs)

    return wrapper


def _dashboard_context(
    request: HttpRequest, portfolio: Portfolio, *, form: TransactionForm | None = None
) -> dict:
    context = live_context(portfolio=portfolio, periods=Period.values)
    context.update(
        {
            "portfolios": portfolio_list(user=request.user),
            "recent": transaction_list(portfolio=portfolio)[:RECENT_TRANSACTIONS],
            "form": form or TransactionForm(),
            "equity_curve": context["history"].equity_curve(),
        }
    )
    return context


@login_required
@require_GET
@in_user_timezone
def dashboard_view(request: HttpRequest) -> HttpResponse:
    selected = request.GET.get("portfolio")
    portfolio = (
        portfolio_get(user=request.user, pk=selected) if selected else portfolio_default(user=request.user)
    )
    if portfolio is None:
        return render(request, "portfolios/dashboard_empty.html", {"form": PortfolioForm()})
    viewer_touch(user_id=request.user.pk)
    context = _dashboard_context(request, portfolio)
    context["heartbeat_seconds"] = HEARTBEAT_SECONDS
    return render(request, "portfolios/dashboard.html", context)


@login_required
@require_POST
def dashboard_presence_view(request: HttpRequest) -> HttpResponse:
    """The open dashboard's heartbeat: keep receiving live revaluations."""
    viewer_touch(user_id=request.user.pk)
    return HttpResponse(status=204)


@login_required
@require_http_methods(["GET", "POST"])
@in_user_timezone
def portfolio_list_view(request: HttpRequest) -> HttpResponse:
    form = PortfolioForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            portfolio = portfolio_create(user=request.user, request=request, **form.cleaned_data)
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            messages.success(request, f"Portfolio “{portfolio.name}” created.")
            return redirect(f"{reverse('dashboard')}?portfolio={portfolio.pk}")
    portfolios = list(portfolio_list(user=request.user))
    rows = [(p, portfolio_valuation(portfolio=p)) for p in portfolios]
    template = "portfolios/dashboard_empty.html" if not portfolios else "portfolios/portfolio_list.html"
    return render(request, template, {"rows": rows, "form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
def portfolio_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    try:
        portfolio_delete(user=request.user, portfolio=portfolio, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Portfolio “{portfolio.name}” deleted.")
    return redirect("portfolios")


@login_required
@require_POST
@in_user_timezone
def transaction_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    form = TransactionForm(request.POST)
    recorded = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            recorded = transaction_record(
                user=request.user,
                portfolio=portfolio,
                kind=data["kind"],
                instrument=data["instrument"],
                currency=data["currency"] or None,
                quantity=data["quantity"],
                price=data["price"],
                fee=data["fee"] or 0,
                fee_currency=data["fee_currency"],
                executed_at=data["executed_at"],
                note=data["note"],
                request=request,
            )
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
    if recorded is not None and not request.htmx:
        messages.success(request, "Transaction recorded.")
        return redirect(f"{reverse('dashboard')}?portfolio={portfolio.pk}")
    if not request.htmx:
        context = _dashboard_context(request, portfolio, form=form)
        return render(request, "portfolios/dashboard.html", context, status=400)
    if recorded is None:
        return render(
            request, "portfolios/partials/transaction_form.html", {"form": form, "portfolio": portfolio}
        )
    context = _dashboard_context(request, portfolio)
    context.update({"recorded": recorded, "oob": True, "include_recent": True})
    return render(request, "portfolios/partials/transaction_added.html", context)


@login_required
@require_GET
@in_user_timezone
def transaction_list_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    page = Paginator(transaction_list(portfolio=portfolio), 50).get_page(request.GET.get("page"))
    return render(request, "portfolios/transaction_list.html", {"portfolio": portfolio, "page": page})


@login_required
@require_POST
def transaction_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    txn = transaction_get(user=request.user, pk=pk)
    portfolio_id = txn.portfolio_id
    try:
        transaction_delete(user=request.user, txn=txn, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Transaction deleted; positions recalculated.")
    return redirect("portfolio_transactions", pk=portfolio_id)


@login_required
@require_http_methods(["GET", "POST"])
@in_user_timezone
def import_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    context = {"portfolio": portfolio, "form": ImportForm(), "max_mb": MAX_IMPORT_BYTES // 1024 // 1024}
    if request.method == "GET":
        return render(request, "portfolios/import.html", context)

    token = request.POST.get("token", "")
    cache_key = f"portfolios:import:{request.user.pk}:{portfolio.pk}:{token}"
    if token:  # the confirm step: the file checked at the preview, checked again and written
        stored = cache.get(cache_key)
        if stored is None:
            messages.error(request, "That preview has expired. Upload the file again.")
            return redirect("portfolio_import", pk=portfolio.pk)
        preview = transactions_import(
            user=request.user,
            portfolio=portfolio,
            content=stored["content"],
            filename=stored["name"],
            request=request,
        )
        if preview.valid:
            cache.delete(cache_key)
            messages.success(
                request,
                f"Imported {preview.new_count} transaction{'s' if preview.new_count != 1 else ''}"
                f"{f'; skipped {preview.duplicate_count} already imported' if preview.duplicate_count else ''}.",
            )
            return redirect(f"{reverse('dashboard')}?portfolio={portfolio.pk}")
        context.update({"preview": preview, "statuses": RowStatus})
        return render(request, "portfolios/import.html", context, status=400)

    form = ImportForm(request.POST, request.FILES)
    context["form"] = form
    if not form.is_valid():
        return render(request, "portfolios/import.html", context, status=400)
    upload = form.cleaned_data["file"]
    if upload.size > MAX_IMPORT_BYTES:
        form.add_error("file", size_message(upload.size))
        return render(request, "portfolios/import.html", context, status=400)
    content = upload.read()
    preview = import_preview(portfolio=portfolio, content=content)
    context.update({"preview": preview, "statuses": RowStatus})
    if preview.valid and preview.new_count:
        token = secrets.token_urlsafe(16)
        cache.set(
            f"portfolios:import:{request.user.pk}:{portfolio.pk}:{token}",
            {"content": content, "name": upload.name},
            IMPORT_CACHE_SECONDS,
        )
        context["token"] = token
    return render(request, "portfolios/import.html", context, status=200 if preview.valid else 400)


@login_required
@require_GET
def export_transactions_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    body = transactions_csv(transactions=transaction_list(portfolio=portfolio).order_by("executed_at", "id"))
    return _csv_response(body, f"{portfolio.name}-transactions.csv")


@login_required
@require_GET
def export_positions_view(request: HttpRequest, pk: int) -> HttpResponse:
    portfolio = portfolio_get(user=request.user, pk=pk)
    return _csv_response(
        positions_csv(valuation=portfolio_valuation(portfolio=portfolio)), f"{portfolio.name}-positions.csv"
    )


def _csv_response(body: str, filename: str) -> HttpResponse:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in filename)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def watchlists_view(request: HttpRequest) -> HttpResponse:
    form = WatchlistForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            watchlist_create(user=request.user, name=form.cleaned_data["name"])
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            return redirect("watchlists")
    watchlists = list(watchlist_list(user=request.user))
    symbols = {item.instrument.symbol for w in watchlists for item in w.items.all()}
    quotes = quote_latest_map(symbols=symbols)
    context = {
        "watchlists": [
            (
                w,
                [(item, quotes.get(item.instrument.symbol)) for item in w.items.all()],
                WatchlistAddForm(prefix=f"w{w.pk}"),
            )
            for w in watchlists
        ],
        "form": form,
    }
    return render(request, "portfolios/watchlists.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def watchlist_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    watchlist = watchlist_get(user=request.user, pk=pk)
    form = WatchlistAddForm(request.POST, prefix=f"w{watchlist.pk}")
    if form.is_valid():
        watchlist_add(user=request.user, watchlist=watchlist, instrument=form.cleaned_data["instrument"])
    else:
        messages.error(request, "Choose an instrument Nexus lists.")
    return redirect("watchlists")


@login_required
@require_POST
def watchlist_remove_view(request: HttpRequest, pk: int, instrument_id: int) -> HttpResponse:
    watchlist = watchlist_get(user=request.user, pk=pk)
    watchlist_remove(user=request.user, watchlist=watchlist, instrument_id=instrument_id)
    return redirect("watchlists")


@login_required
@require_POST
def watchlist_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    watchlist_delete(user=request.user, watchlist=watchlist_get(user=request.user, pk=pk))
    return redirect("watchlists")
