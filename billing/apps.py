from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from djstripe.signals import webhook_post_validate

        from billing import receivers  # noqa: F401  (connects with @receiver)
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
        from billing.metrics import WebhookBacklogCollector
        from core.metrics import collectors_register

        collectors_register(WebhookBacklogCollector())

    # Before the apps whose demo data counts against plan limits (trading's two bots).
    seed_demo_first = True

    def seed_demo(self, *, trader, stdout) -> None:
        """A Pro trial (what a paying trader gets) and the local webhook endpoint (for `stripe listen`).
        AI usage is recorded only by questions actually asked."""
        from django.conf import settings
        from django.utils import timezone

        from billing.choices import PlanCode
        from billing.selectors import subscription_get, user_plan
        from billing.services import (
            subscription_trial_grant,
            webhook_endpoint_ensure_local,
        )

        now = timezone.now()
        if user_plan(user=trader, now=now).code == PlanCode.FREE:
            subscription_trial_grant(user=trader, plan_code=PlanCode.PRO, now=now)
        subscription = subscription_get(user=trader)
        if subscription is not None and subscription.is_local_trial and subscription.trial_end:
            stdout.write(f"Billing: Pro trial for {trader.email} until {subscription.trial_end:%Y-%m-%d}")
        if not settings.STRIPE_LIVE_MODE:
            endpoint = webhook_endpoint_ensure_local(
                secret=settings.STRIPE_WEBHOOK_SECRET, base_url=settings.SITE_URL
            )
            stdout.write(f"Billing: local Stripe webhook endpoint {endpoint.url}")
