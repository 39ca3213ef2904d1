from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse

from core.access import user_may_use_admin


class NexusAdminSite(admin.AdminSite):
    """Staff only, and only with two-factor authentication: the admin sees every tenant's data."""

    site_header = "Nexus administration"
    site_title = "Nexus admin"

    def has_permission(self, request) -> bool:
        return user_may_use_admin(user=request.user)

    def login(self, request, extra_context=None):
        # One login for everyone (allauth, with its 2FA stage); staff without 2FA are sent to set it up.
        if request.user.is_authenticated and request.user.is_staff:
            messages.error(request, "Staff must turn on two-factor authentication before using the admin.")
            return redirect("mfa_index")
        if request.user.is_authenticated:
            # A trader is signed in already: the login page would send them straight back here, forever.
            return redirect(settings.LOGIN_REDIRECT_URL)
        return redirect_to_login(request.get_full_path(), reverse("account_login"))
