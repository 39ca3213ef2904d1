"""Automation pages (/automation/) and the incoming webhook endpoint. Thin: services do the work."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from automation.forms import RuleForm, TestFireForm
from automation.intake import MAX_WEBHOOK_BODY, too_large, webhook_response
from automation.selectors import rule_get, rule_list, run_get, run_list, run_results
from automation.services import (
    WebhookRejected,
    rule_create,
    rule_delete,
    rule_pause,
    rule_resume,
    rule_test_fire,
    rule_update,
    webhook_receive,
)
from core.errors import DomainError
from core.forms import form_add_domain_error

RUNS_SHOWN = 50


def _rule(request: HttpRequest, rule_id: int):
    try:
        return rule_get(user=request.user, rule_id=rule_id)
    except DomainError:
        raise Http404("No such rule") from None


@login_required
def rule_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "automation/rule_list.html", {"rules": rule_list(user=request.user),
                                                         "runs": run_list(user=request.user)[:20]})


@login_required
def rule_create_view(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            rule = rule_create(user=request.user, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            messages.success(request, f"Rule created: {rule.name}.")
            return redirect("automation:rule_detail", rule_id=rule.pk)
    return render(request, "automation/rule_form.html", {"form": form, "rule": None},
                  status=422 if request.method == "POST" else 200)


@login_required
def rule_edit_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    form = RuleForm.for_rule(rule, request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            rule_update(user=request.user, rule=rule, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            messages.success(request, "Rule saved.")
            return redirect("automation:rule_detail", rule_id=rule.pk)
    return render(request, "automation/rule_form.html", {"form": form, "rule": rule},
                  status=422 if request.method == "POST" else 200)


@login_required
def rule_detail_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    webhook_url = (
        request.build_absolute_uri(reverse("automation:webhook", args=[rule.webhook_token])) if rule.webhook_token else ""
    )
    example = ""
    if rule.trigger_kind == "webhook":
        example = json.dumps({"token": rule.secret, "id": "{{ticker}}-{{timenow}}", "timestamp": "{{timenow}}",
                              **rule.trigger["template"]}, indent=2)
    return render(request, "automation/rule_detail.html", {
        "rule": rule, "runs": run_list(user=request.user, rule=rule)[:RUNS_SHOWN], "webhook_url": webhook_url,
        "example": example, "test_form": TestFireForm(),
    })


@login_required
@require_POST
def rule_test_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    form = TestFireForm(request.POST)
    if form.is_valid():
        try:
            run = rule_test_fire(user=request.user, rule=rule, event=form.sample_event())
        except (DomainError, forms.ValidationError) as exc:
            message = exc.messages[0] if isinstance(exc, forms.ValidationError) else str(exc)
            messages.error(request, f"Test not run: {message}")
            return redirect("automation:rule_detail", rule_id=rule.pk)
        return redirect("automation:run_detail", rule_id=rule.pk, run_id=run.pk)
    return redirect("automation:rule_detail", rule_id=rule.pk)


@login_required
@require_POST
def rule_pause_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule_pause(user=request.user, rule=_rule(request, rule_id), reason="Paused by you.")
    messages.success(request, "Rule paused.")
    return redirect("automation:rule_detail", rule_id=rule_id)


@login_required
@require_POST
def rule_resume_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    try:
        rule_resume(user=request.user, rule=_rule(request, rule_id))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Rule resumed.")
    return redirect("automation:rule_detail", rule_id=rule_id)


@login_required
@require_POST
def rule_delete_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule_delete(user=request.user, rule=_rule(request, rule_id))
    messages.success(request, "Rule deleted.")
    return redirect("automation:rule_list")


@login_required
def run_detail_view(request: HttpRequest, rule_id: int, run_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    try:
        run = run_get(user=request.user, rule=rule, run_id=run_id)
    except DomainError:
        raise Http404("No such run") from None
    return render(request, "automation/run_detail.html", {"rule": rule, "run": run, "results": run_results(run=run),
                                                          "event": json.dumps(run.event, indent=2)})


@csrf_exempt
@require_POST
def webhook_view(request: HttpRequest, token: str) -> HttpResponse:
    """POST /automation/hooks/<token>/ when Django serves it (the test client, a WSGI server); under the
    ASGI server automation.intake.WebhookIntake answers it first, with the same service and answers."""
    if len(request.body) > MAX_WEBHOOK_BODY:
        return webhook_response(too_large(request.path), request.path)
    try:
        outcome = webhook_receive(token=token, body=request.body,
                                  signature_header=request.headers.get("X-Nexus-Signature", ""))
    except WebhookRejected as exc:
        outcome = exc
    return webhook_response(outcome, request.path)
