from http import HTTPStatus

from allauth.account import views as allauth_views
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import ProfileForm
from accounts.services import user_update_profile
from core.selectors import audit_list_for_user


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
    return render(request, "accounts/settings.html", {"form": form})


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
