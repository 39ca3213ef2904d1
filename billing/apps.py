from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from djstripe.signals import webhook_post_validate

        from billing.choices import (
            NOTIFY_PAYMENT_FAILED,
            NOTIFY_PAYMENT_RECOVERED,
            NOTIFY_PLAN_CHANGED,
            NOTIFY_TRIAL_ENDING,
        )
        from billing.webhooks import webhook_refuse_future_signature
        from core.notifications import register_kind

        webhook_post_validate.connect(
            webhook_refuse_future_signature, dispatch_uid="billing.future_signature"
        )

        register_kind(NOTIFY_PLAN_CHANGED, label="Plan changes")
        register_kind(NOTIFY_TRIAL_ENDING, label="Trial ending")
        register_kind(NOTIFY_PAYMENT_FAILED, label="Failed payments")
        register_kind(NOTIFY_PAYMENT_RECOVERED, label="Payments received after a failure")

    def seed_demo(self, *, trader, stdout) -> None:
        """The local webhook endpoint (for `stripe listen`). AI usage is recorded only by real questions."""
        from django.conf import settings

        from billing.services import webhook_endpoint_ensure_local

        if not settings.STRIPE_LIVE_MODE:
            endpoint = webhook_endpoint_ensure_local(
                secret=settings.STRIPE_WEBHOOK_SECRET, base_url=settings.SITE_URL
            )
            stdout.write(f"Billing: local Stripe webhook endpoint {endpoint.url}")
