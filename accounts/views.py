from http import HTTPStatus

from allauth.account import views as allauth_views
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.forms import ApiTokenForm, ProfileForm
from accounts.selectors import api_token_get, api_token_list, discord_link_get
from accounts.services import (
    DISCORD_LINK_CODE_LIFETIME,
    api_token_create,
    api_token_revoke,
    discord_link_code_issue,
    discord_unlink,
    user_log_out_everywhere,
    user_update_profile,
)
from core.errors import DomainError
from core.forms import form_add_domain_error
from core.selectors import audit_list_for_user


def _discord_context(request: HttpRequest, *, code: str | None = None) -> dict:
    return {
        "discord_link": discord_link_get(user=request.user),
        # allauth's connect flow (a POST to the provider's login URL); the URL is built here, not with
        # {% provider_login_url %}, which reads the social app table the runtime role may not.
        "discord_connect": (f"{reverse('discord_login')}?process=connect"
                            if "discord" in settings.SOCIALACCOUNT_PROVIDERS else ""),
        "discord_bot": bool(settings.DISCORD_BOT_TOKEN),
        "discord_code": code,
        "discord_code_minutes": int(DISCORD_LINK_CODE_LIFETIME.total_seconds() // 60),
    }


@never_cache  # the answer to "Get a link code" holds the code, once
@login_required
def settings_view(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            user_update_profile(user=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("account_settings")
    return render(request, "accounts/settings.html", {"form": form, **_discord_context(request)})


@never_cache
@login_required
@require_POST
def discord_link_code_view(request: HttpRequest) -> HttpResponse:
    _, code = discord_link_code_issue(user=request.user, request=request)
    context = {"form": ProfileForm(instance=request.user), **_discord_context(request, code=code)}
    return render(request, "accounts/settings.html", context)


@login_required
@require_POST
def discord_unlink_view(request: HttpRequest) -> HttpResponse:
    if discord_unlink(user=request.user, request=request):
        messages.success(request, "Discord unlinked. The bot no longer answers with your data.")
    return redirect("account_settings")


@login_required
@require_POST
def log_out_everywhere_view(request: HttpRequest) -> HttpResponse:
    user_log_out_everywhere(user=request.user, request=request)
    logout(request)
    messages.success(request, "You are logged out on every device and browser. Log in again to continue.")
    return redirect("account_login")


def _api_tokens_page(request: HttpRequest, *, form: ApiTokenForm, created=None, secret: str | None = None,
                     status: int = 200) -> HttpResponse:
    context = {"form": form, "tokens": api_token_list(user=request.user), "created": created, "secret": secret}
    if request.htmx:
        # 200 even with errors: htmx swaps only 2xx answers, and the errors belong in the form.
        return render(request, "accounts/partials/api_tokens_panel.html", context)
    return render(request, "accounts/api_tokens.html", context, status=status)


@never_cache  # the answer to a create holds the new token, once; no cache may keep it
@login_required
def api_tokens_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _api_tokens_page(request, form=ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            created, secret = api_token_create(user=request.user, request=request, **form.cleaned_data)
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc)
        else:
            return _api_tokens_page(request, form=ApiTokenForm(), created=created, secret=secret)
    return _api_tokens_page(request, form=form, status=422)


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = api_token_get(user=request.user, token_id=token_id)
    api_token_revoke(user=request.user, token=token, request=request)
    if request.htmx:
        return _api_tokens_page(request, form=ApiTokenForm())
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("account_api_tokens")


@login_required
def security_log_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/security_log.html", {"entries": audit_list_for_user(user=request.user)[:200]})


class LoginView(allauth_views.LoginView):
    """allauth's login, except that a locked-out login (too many failures) answers 429 Too Many Requests,
    still showing the form and the error that says to wait."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="too_many_login_attempts"):
            response.status_code = HTTPStatus.TOO_MANY_REQUESTS
        return response
