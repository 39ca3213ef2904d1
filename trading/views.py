"""Trading pages: thin views over the services and selectors. HTMX requests get the partial only."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.forms import form_add_domain_error
from marketdata.selectors import quote_latest_map
from trading import ledger
from trading.bots.selectors import bot_get, bot_list
from trading.bots.services import bot_create, bot_delete, bot_set_status
from trading.choices import BotStatus
from trading.connections.selectors import (
    connection_get,
    connection_list,
    connection_trades_portfolio,
    venue_health,
)
from trading.connections.services import connection_create, connection_delete
from trading.decisions.selectors import regime_latest_map
from trading.decisions.strategies import STRATEGIES
from trading.fanout.selectors import blocked_execution_list, plan_list
from trading.forms import (
    BotForm,
    ConnectionForm,
    OrderHistoryFilterForm,
    OrderTicketForm,
)
from trading.orders.selectors import order_get, order_list
from trading.orders.services import order_cancel, order_place
from trading.orders.validation import order_validate
from trading.tracker.selectors import playbook_tags

DEFAULT_SYMBOL = "BTC/USDT"
IP_ADVICE = (
    "Create the key with reading and spot-trading permissions only (never withdrawals) and restrict it to "
    "the IP address Nexus connects from; ask your administrator for it."
)


def _ticket_form(request: HttpRequest, data=None, initial=None) -> OrderTicketForm:
    connections = list(connection_list(user=request.user).filter(status="active"))
    portfolios = list(ledger.portfolio_list(user=request.user))
    if initial is None and connections:
        # Start on the first connection with a portfolio it can trade (paper with paper) and the main pair.
        connection = connections[0]
        matching = [p for p in portfolios if connection_trades_portfolio(connection=connection, portfolio=p)]
        initial = {"connection": connection.pk, "symbol": DEFAULT_SYMBOL}
        if matching:
            initial["portfolio"] = matching[0].pk
    form = OrderTicketForm(data, initial=initial, connections=connections, portfolios=portfolios)
    form.known_tags = playbook_tags(user=request.user)
    return form


def _trade_context(request: HttpRequest, form: OrderTicketForm, **extra) -> dict:
    connections = list(connection_list(user=request.user))
    symbols = [choice for choice, _ in form.fields["symbol"].choices]
    return {
        "form": form,
        "open_orders": list(order_list(user=request.user, open_only=True)[:100]),
        "connections": connections,
        "venues": [venue_health(venue=v) for v in sorted({c.venue for c in connections})],
        "quotes": quote_latest_map(symbols=symbols),
        "regimes": regime_latest_map(),
        **extra,
    }


@login_required
def trade_view(request: HttpRequest) -> HttpResponse:
    form = _ticket_form(request)
    return render(request, "trading/trade.html", _trade_context(request, form))


def _ticket_values(request: HttpRequest, form: OrderTicketForm) -> dict:
    data = form.cleaned_data
    return {
        "user": request.user,
        "connection": connection_get(user=request.user, pk=data["connection"]),
        "portfolio": ledger.portfolio_get(user=request.user, pk=data["portfolio"]),
        "symbol": data["symbol"],
        "side": data["side"],
        "type": data["type"],
        "quantity": data["quantity"],
        "price": data.get("price"),
        "stop_price": data.get("stop_price"),
    }


@login_required
@require_POST
def order_check_view(request: HttpRequest) -> HttpResponse:
    """The ticket's pre-submit check: the same validation as placing, shown in place, nothing written."""
    form = _ticket_form(request, request.POST)
    check = None
    if form.is_valid():
        try:
            check = order_validate(**_ticket_values(request, form))
        except DomainError as error:
            form_add_domain_error(form=form, error=error)
    return render(request, "trading/partials/ticket_check.html", {"form": form, "check": check})


@login_required
@require_POST
def order_place_view(request: HttpRequest) -> HttpResponse:
    form = _ticket_form(request, request.POST)
    placed = None
    if form.is_valid():
        try:
            placed = order_place(
                **_ticket_values(request, form), playbook_tag=form.cleaned_data.get("playbook_tag", ""),
                request=request,
            )
        except DomainError as error:
            form_add_domain_error(form=form, error=error)
    if placed is not None:
        # A fresh ticket for the next order on the same account and pair.
        kept = ("connection", "portfolio", "symbol", "side", "type", "playbook_tag")
        form = _ticket_form(request, initial={key: form.cleaned_data[key] for key in kept})
    context = {"form": form, "placed": placed}
    if request.htmx:
        # 200 even with errors: htmx swaps only 2xx answers, and the errors belong in the ticket.
        return render(request, "trading/partials/ticket.html", context)
    if placed is not None:
        messages.success(request, f"Order placed: {placed}.")
        return redirect("trading:trade")
    return render(request, "trading/trade.html", _trade_context(request, form), status=422)


@login_required
@require_POST
def order_cancel_view(request: HttpRequest, pk) -> HttpResponse:
    order = order_get(user=request.user, pk=pk)
    error = None
    try:
        order_cancel(user=request.user, order=order, request=request)
    except DomainError as exc:
        error = str(exc)
    if request.htmx:
        return render(
            request,
            "trading/partials/open_orders.html",
            {"open_orders": list(order_list(user=request.user, open_only=True)[:100]), "error": error},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Order cancelled.")
    return redirect("trading:trade")


@login_required
def order_history_view(request: HttpRequest) -> HttpResponse:
    form = OrderHistoryFilterForm(request.GET or None)
    filters = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {key: data[key] for key in ("status", "symbol", "side", "source") if data.get(key)}
        if data.get("since"):
            filters["since"] = datetime.combine(data["since"], time.min, tzinfo=UTC)
        if data.get("until") and data["until"] < date.max:  # no day follows 9999-12-31, and no order either
            filters["until"] = datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=UTC)
    page = Paginator(order_list(user=request.user, **filters), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "trading/partials/order_history_table.html" if request.htmx else "trading/order_history.html"
    return render(request, template, context)


@login_required
def connection_list_view(request: HttpRequest) -> HttpResponse:
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            connection = connection_create(user=request.user, **form.cleaned_data, request=request)
        except DomainError as error:
            form_add_domain_error(form=form, error=error)
        else:
            messages.success(request, f"Connected {connection}. The key is stored encrypted.")
            return redirect("trading:connections")
    connections = list(connection_list(user=request.user))
    health = {c.venue: venue_health(venue=c.venue) for c in connections}
    rows = [(c, health[c.venue]) for c in connections]
    status = 422 if request.method == "POST" else 200
    return render(
        request, "trading/connections.html", {"form": form, "rows": rows, "ip_advice": IP_ADVICE}, status=status
    )


@login_required
@require_POST
def connection_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = connection_get(user=request.user, pk=pk)
    try:
        connection_delete(user=request.user, connection=connection, request=request)
    except DomainError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Connection removed; its keys are erased.")
    return redirect("trading:connections")


def _bot_form(request: HttpRequest, data=None) -> BotForm:
    connections = list(connection_list(user=request.user).filter(status="active"))
    portfolios = list(ledger.portfolio_list(user=request.user))
    initial = {"symbol": DEFAULT_SYMBOL, "strategy": "dca"}
    if connections:
        matching = [p for p in portfolios if connection_trades_portfolio(connection=connections[0], portfolio=p)]
        initial["connection"] = connections[0].pk
        if matching:
            initial["portfolio"] = matching[0].pk
    return BotForm(data, initial=initial, connections=connections, portfolios=portfolios)


@login_required
def bot_list_view(request: HttpRequest) -> HttpResponse:
    form = _bot_form(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            bot = bot_create(
                user=request.user,
                name=data["name"],
                portfolio=ledger.portfolio_get(user=request.user, pk=data["portfolio"]),
                connection=connection_get(user=request.user, pk=data["connection"]),
                symbol=data["symbol"],
                strategy=data["strategy"],
                params=form.strategy_params(),
                timeframe=data["timeframe"],
                allocation=data["allocation"],
                max_position=data["max_position"],
                daily_loss_limit=data["daily_loss_limit"],
                request=request,
            )
        except DomainError as error:
            form_add_domain_error(form=form, error=error)
        else:
            messages.success(request, f"Bot {bot.name} is running.")
            return redirect("trading:bot_detail", pk=bot.pk)
    context = {
        "form": form,
        "bots": list(bot_list(user=request.user)),
        "strategies": STRATEGIES.values(),
        "regimes": regime_latest_map(),
    }
    return render(request, "trading/bots.html", context, status=422 if request.method == "POST" else 200)


@login_required
def bot_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    bot = bot_get(user=request.user, pk=pk)
    context = {
        "bot": bot,
        "strategy": STRATEGIES.get(bot.strategy),
        "plans": list(plan_list(user=request.user, bot=bot)[:50]),
        "blocked": list(blocked_execution_list(user=request.user, bot=bot)[:50]),
        "orders": list(order_list(user=request.user).filter(bot=bot)[:20]),
        "regime": regime_latest_map().get(bot.instrument.symbol),
    }
    return render(request, "trading/bot_detail.html", context)


@login_required
@require_POST
def bot_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    bot = bot_get(user=request.user, pk=pk)
    status = BotStatus.PAUSED if bot.status == BotStatus.ENABLED else BotStatus.ENABLED
    try:
        bot_set_status(user=request.user, bot=bot, status=status, request=request)
    except DomainError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Bot {bot.name} is {bot.get_status_display().lower()}.")
    return redirect("trading:bot_detail", pk=bot.pk)


@login_required
@require_POST
def bot_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    bot = bot_get(user=request.user, pk=pk)
    bot_delete(user=request.user, bot=bot, request=request)
    messages.success(request, f"Bot {bot.name} deleted.")
    return redirect("trading:bots")


@login_required
def blocked_list_view(request: HttpRequest) -> HttpResponse:
    page = Paginator(blocked_execution_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "trading/blocked.html", {"page": page})
