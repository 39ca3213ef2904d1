"""The email provider's tracking webhook, django-anymail's view for the configured ESP (Resend):
/anymail/resend/tracking/. Bounces and complaints suppress addresses (newsletter.receivers).

Only that one of anymail's webhook views is routed, and only when its signing secret is set: anymail
accepts an unsigned, unauthenticated event when neither a secret nor basic auth is configured, and a
forged bounce would silence a member."""

from __future__ import annotations

from anymail.webhooks.resend import ResendTrackingWebhookView
from django.conf import settings
from django.urls import path

urlpatterns = (
    [
        path(
            "anymail/resend/tracking/",
            ResendTrackingWebhookView.as_view(),
            name="resend_tracking_webhook",
        )
    ]
    if settings.ANYMAIL.get("RESEND_SIGNING_SECRET")
    else []
)
