"""Signal wiring: the email provider's tracking events (django-anymail) and billing's issue counter."""

from __future__ import annotations

from anymail.signals import tracking
from django.utils import timezone

from billing.choices import Feature
from billing.services import entitlement_counter_register


def on_tracking(sender, event, esp_name, **kwargs) -> None:
    """anymail's normalized tracking event: bounces, complaints and rejections suppress the address."""
    from newsletter.services import tracking_event_handle

    tracking_event_handle(event=event)


def _issues_this_month(user) -> int:
    from newsletter.selectors import issues_created_this_month

    return issues_created_this_month(user=user, now=timezone.now())


def connect() -> None:
    tracking.connect(on_tracking, dispatch_uid="newsletter.tracking")
    entitlement_counter_register(feature=Feature.NEWSLETTER_ISSUES, counter=_issues_this_month)
