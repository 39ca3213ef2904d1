"""Strategy tracker pages: thin views over trading.tracker's selectors and services. HTMX gets the partial."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.forms import form_add_domain_error
from trading.bots.selectors import bot_get
from trading.forms import GateHorizonForm, ReplayForm
from trading.tracker.selectors import (
    GATE_HORIZONS,
    gate_outcomes,
    gate_totals,
    replay_get,
    replay_list,
    report_build,
    report_compare,
    subject_get,
    subject_list,
)
from trading.tracker.services import replay_create, replay_delete, replay_from_bot

JOURNAL_ROWS = 200
SIMULATION_NOTE = "Simulation: what the strategy would have done over recorded candles, not real trades."


@login_required
def tracker_overview_view(request: HttpRequest) -> HttpResponse:
    reports = [report_build(user=request.user, subject=subject) for subject in subject_list(user=request.user)]
    return render(request, "trading/tracker/overview.html", {"reports": reports})


@login_required
def tracker_detail_view(request: HttpRequest, kind: str, key: str) -> HttpResponse:
    subject = subject_get(user=request.user, kind=kind, key=key)
    report = report_build(user=request.user, subject=subject)
    trips = list(reversed(report.journal.trips))
    return render(
        request, "trading/tracker/detail.html",
        {"report": report, "trips": trips[:JOURNAL_ROWS], "more": len(trips) > JOURNAL_ROWS,
         "simulation_note": SIMULATION_NOTE},
    )


@login_required
def tracker_compare_view(request: HttpRequest) -> HttpResponse:
    refs = request.GET.getlist("s")
    subjects = subject_list(user=request.user)
    error = ""
    reports = []
    if refs:
        if len(set(refs)) < 2 or len(set(refs)) > 4:
            error = "Pick two to four to compare."
        else:
            reports = report_compare(user=request.user, refs=refs)
    return render(
        request, "trading/tracker/compare.html",
        {"reports": reports, "subjects": subjects, "chosen": set(refs), "error": error,
         "simulation_note": SIMULATION_NOTE},
        status=400 if error else 200,
    )


@login_required
def tracker_gate_view(request: HttpRequest) -> HttpResponse:
    form = GateHorizonForm(request.GET or None)
    horizon_key = (form.cleaned_data.get("horizon") if form.is_valid() else None) or "24h"
    outcomes = gate_outcomes(user=request.user, horizon=GATE_HORIZONS[horizon_key])
    context = {
        "form": form,
        "horizon": dict(GateHorizonForm.base_fields["horizon"].choices)[horizon_key],
        "outcomes": outcomes,
        "by_strategy": gate_totals(outcomes, by="strategy"),
        "by_bot": gate_totals(outcomes, by="bot"),
    }
    template = "trading/tracker/partials/gate_results.html" if request.htmx else "trading/tracker/gate.html"
    return render(request, template, context)


@login_required
def replay_list_view(request: HttpRequest) -> HttpResponse:
    form = ReplayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = replay_create(
                user=request.user, name=data["name"], symbol=data["symbol"], strategy=data["strategy"],
                params=form.strategy_params(), timeframe=data["timeframe"], allocation=data["allocation"],
                max_position=data["max_position"], daily_loss_limit=data["daily_loss_limit"],
                source=data["source"], start=data.get("start"), end=data.get("end"), request=request,
            )
        except DomainError as error:
            form_add_domain_error(form=form, error=error)
        else:
            messages.success(request, f"Simulation “{run.name}” started.")
            return redirect("trading:replay_detail", pk=run.pk)
    return render(
        request, "trading/tracker/replays.html",
        {"form": form, "runs": replay_list(user=request.user)[:50], "simulation_note": SIMULATION_NOTE},
        status=422 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def replay_bot_view(request: HttpRequest, pk: int) -> HttpResponse:
    bot = bot_get(user=request.user, pk=pk)
    run = replay_from_bot(user=request.user, bot=bot, request=request)
    messages.success(request, f"Simulation “{run.name}” started.")
    return redirect("trading:replay_detail", pk=run.pk)


@login_required
def replay_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = replay_get(user=request.user, pk=pk)
    context = {"run": run, "simulation_note": SIMULATION_NOTE}
    if request.htmx:
        return render(request, "trading/tracker/partials/replay_status.html", context)
    return render(request, "trading/tracker/replay_detail.html", context)


@login_required
@require_POST
def replay_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = replay_get(user=request.user, pk=pk)
    replay_delete(user=request.user, run=run, request=request)
    messages.success(request, "Simulation deleted.")
    return redirect("trading:replays")
