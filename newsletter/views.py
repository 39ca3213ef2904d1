"""Newsletter pages: the author's studio (/newsletter/), the public archive and feed, unsubscribe and
preferences. Thin: services and selectors do the work."""

from __future__ import annotations

from datetime import UTC

from csp.decorators import csp_replace
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services import PlanLimitExceeded
from core.errors import DomainError
from core.forms import form_add_domain_error
from newsletter.choices import EDITABLE_STATUSES, Audience
from newsletter.drafting import issue_draft_compose
from newsletter.forms import IssueForm, PreferenceForm, ScheduleForm
from newsletter.selectors import (
    archive_get,
    archive_list,
    issue_get,
    issue_list,
    issue_stats,
    may_author,
    preference_subscribed,
)
from newsletter.services import (
    issue_create,
    issue_delete,
    issue_preview,
    issue_schedule,
    issue_send_now,
    issue_unschedule,
    issue_update,
    preference_set,
    unsubscribe_by_token,
    unsubscribe_token_read,
)

ARCHIVE_PAGE = 50


def _author_only(request: HttpRequest) -> HttpResponse | None:
    if may_author(user=request.user):
        return None
    return render(request, "newsletter/not_allowed.html", status=403)


def _issue(request: HttpRequest, issue_id: int):
    try:
        return issue_get(user=request.user, issue_id=issue_id)
    except DomainError:
        raise Http404("No such issue") from None


@login_required
def issue_list_view(request: HttpRequest) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    return render(request, "newsletter/issue_list.html", {"issues": list(issue_list(user=request.user))})


@login_required
def issue_new_view(request: HttpRequest) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    form = IssueForm(request.POST or None, initial={"audience": Audience.ALL})
    if request.method == "POST" and form.is_valid():
        try:
            issue = issue_create(user=request.user, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            messages.success(request, "Draft saved. Preview it below before sending.")
            return redirect("newsletter:issue_detail", issue_id=issue.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "newsletter/issue_form.html", {"form": form, "issue": None}, status=status)


@login_required
@require_POST
def issue_draft_view(request: HttpRequest) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    try:
        draft = issue_draft_compose(user=request.user)
        issue = issue_create(user=request.user, title=draft.title, body=draft.body, audience=Audience.ALL)
    except (DomainError, PlanLimitExceeded) as exc:
        messages.error(request, str(exc))
        return redirect("newsletter:issue_list")
    messages.success(request, f"The companion drafted this issue from the week's data ({draft.source}).")
    return redirect("newsletter:issue_edit", issue_id=issue.pk)


@login_required
def issue_edit_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    issue = _issue(request, issue_id)
    if issue.status not in EDITABLE_STATUSES:
        messages.info(request, "A sent issue cannot be changed.")
        return redirect("newsletter:issue_detail", issue_id=issue.pk)
    initial = {
        "title": issue.title,
        "body": issue.body,
        "audience": issue.audience,
        "audience_plans": issue.audience_plans,
        "post_to_discord": issue.post_to_discord,
    }
    form = IssueForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            issue_update(user=request.user, issue_id=issue.pk, **form.service_kwargs())
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            messages.success(request, "Saved.")
            return redirect("newsletter:issue_detail", issue_id=issue.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "newsletter/issue_form.html", {"form": form, "issue": issue}, status=status)


@login_required
def issue_detail_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    issue = _issue(request, issue_id)
    preview_error = ""
    preview = None
    if issue.status in EDITABLE_STATUSES:
        try:
            preview = issue_preview(user=request.user, issue=issue)
        except DomainError as exc:
            preview_error = str(exc)
    context = {
        "issue": issue,
        "preview": preview,
        "preview_error": preview_error,
        "stats": issue_stats(issue=issue),
        "schedule_form": ScheduleForm(),
        "editable": issue.status in EDITABLE_STATUSES,
    }
    template = "newsletter/partials/stats.html" if request.htmx else "newsletter/issue_detail.html"
    return render(request, template, context)


# The email as a recipient sees it, framed by the preview page: its own CSS is inline (style attributes).
@login_required
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"], "style-src": ["'self'", "'unsafe-inline'"]})
def issue_email_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    issue = _issue(request, issue_id)
    if issue.status in EDITABLE_STATUSES:
        try:
            html = issue_preview(user=request.user, issue=issue).email_html
        except DomainError as exc:
            return HttpResponse(str(exc), content_type="text/plain; charset=utf-8", status=422)
    else:  # the frozen copy that was sent, its charts inline as the mail client shows its cid: parts
        html = issue.email_html
        for cid, png in (issue.inline_images or {}).items():
            html = html.replace(f"cid:{cid}", f"data:image/png;base64,{png}")
    return HttpResponse(html)


def _action(request: HttpRequest, issue_id: int, action, success: str, **kwargs) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    issue = _issue(request, issue_id)
    try:
        action(user=request.user, issue_id=issue.pk, **kwargs)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success)
    return redirect("newsletter:issue_detail", issue_id=issue.pk)


@login_required
@require_POST
def issue_send_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    return _action(request, issue_id, issue_send_now, "Sending started. The counts below update as it goes.")


@login_required
@require_POST
def issue_schedule_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a date and time (UTC) to send at.")
        return redirect("newsletter:issue_detail", issue_id=issue_id)
    at = form.cleaned_data["scheduled_at"]
    at = timezone.make_aware(at, UTC) if timezone.is_naive(at) else at.astimezone(UTC)
    return _action(request, issue_id, issue_schedule, f"Scheduled for {at:%Y-%m-%d %H:%M} UTC.", at=at)


@login_required
@require_POST
def issue_unschedule_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    return _action(request, issue_id, issue_unschedule, "Back to draft: it will not be sent.")


@login_required
@require_POST
def issue_delete_view(request: HttpRequest, issue_id: int) -> HttpResponse:
    if (refused := _author_only(request)) is not None:
        return refused
    try:
        issue_delete(user=request.user, issue_id=_issue(request, issue_id).pk)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("newsletter:issue_detail", issue_id=issue_id)
    messages.success(request, "Draft deleted.")
    return redirect("newsletter:issue_list")


# --- public ----------------------------------------------------------------------------------------------


def archive_view(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletter/archive.html", {"issues": list(archive_list(limit=ARCHIVE_PAGE))})


def archive_issue_view(request: HttpRequest, issue_id: int, slug: str) -> HttpResponse:
    issue = archive_get(issue_id=issue_id)
    if issue is None:
        raise Http404("No such issue")
    if slug != issue.slug:
        return redirect("newsletter:archive_issue", issue_id=issue_id, slug=issue.slug, permanent=True)
    return render(request, "newsletter/archive_issue.html", {"issue": issue})


# Mail providers POST `List-Unsubscribe=One-Click` here without a CSRF token: the signed link is the proof.
@csrf_exempt
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        _, email = unsubscribe_token_read(token=token)
    except DomainError as exc:
        return render(request, "newsletter/unsubscribe.html", {"error": str(exc)}, status=400)
    if request.method == "POST":
        unsubscribe_by_token(token=token)
        return render(request, "newsletter/unsubscribe.html", {"done": True, "email": email})
    return render(request, "newsletter/unsubscribe.html", {"email": email, "token": token})


@login_required
def preferences_view(request: HttpRequest) -> HttpResponse:
    # An unticked box posts nothing: the form is bound whenever the method is POST.
    form = PreferenceForm(request.POST if request.method == "POST" else None, initial={"subscribed": preference_subscribed(user=request.user)})
    if request.method == "POST" and form.is_valid():
        preference_set(user_id=request.user.pk, subscribed=form.cleaned_data["subscribed"])
        messages.success(
            request,
            "You will receive the newsletter." if form.cleaned_data["subscribed"] else "You will not receive the newsletter.",
        )
        return redirect("newsletter:preferences")
    return render(request, "newsletter/preferences.html", {"form": form})
