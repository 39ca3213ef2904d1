"""Writes: entitlement checks that hold, metered usage, Checkout and Portal sessions, usage reports to
Stripe, the grace period. Webhook processing is in billing/webhooks.py, the Stripe catalog in
billing/catalog.py.

Other apps call:
    entitlement_check(user=..., feature=Feature.BOTS)                 # before creating a bot
    entitlement_consume(user=..., feature=Feature.AI_QUERIES, idempotency_key=f"ai:{message.id}")
    entitlement_counter_register(feature=Feature.BOTS, counter=lambda user: ...)   # in AppConfig.ready
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

import stripe
import structlog
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from billing import stripe_gateway
from billing.choices import (
    AI_QUERY_METER_EVENT,
    CAP_FEATURES,
    FAILING_STATUSES,
    LIVE_STATUSES,
    METERED_FEATURES,
    NOTIFY_PLAN_CHANGED,
    RATE_FEATURES,
    CheckoutStatus,
    Feature,
    MeterReportStatus,
    PlanCode,
    SubscriptionStatus,
)
from billing.models import CheckoutSession, MeterReport, Subscription, UsageRecord
from billing.plans import PLANS, Plan, plan_get, plan_upgrade_for, quantity_phrase
from billing.selectors import (
    checkout_open_for,
    entitlement_remaining,
    entitlement_usage,
    staff_unlimited,
    stripe_prices,
    usage_counters,
    user_plan,
)
from billing.stripe_gateway import PaymentsNotConfigured
from core.audit import audit_record
from core.errors import DomainError
from core.notifications import notify
from core.rls import system_context, tenant

logger = structlog.get_logger(__name__)

# A Checkout Session this close to expiring is not handed out again.
CHECKOUT_REUSE_MARGIN = timedelta(minutes=30)


class PlanLimitExceeded(DomainError):
    """The user's plan does not allow this; the message says what it allows and how to get more."""

    def __init__(self, *, plan: Plan, feature: str, limit: int, used: int, upgrade: Plan | None) -> None:
        self.plan = plan
        self.feature = Feature(feature)
        self.limit = limit
        self.used = used
        self.upgrade = upgrade
        self.upgrade_url = reverse("billing")
        if self.feature in METERED_FEATURES:
            used_phrase = f"you have used {used:,} this month"
        elif self.feature in CAP_FEATURES:
            used_phrase = f"this needs {used:,}"
        else:
            used_phrase = f"you have {used:,}"
        message = f"Your {plan.name} plan allows {quantity_phrase(feature, limit)} and {used_phrase}."
        if upgrade is not None:
            message += (
                f" Upgrade to {upgrade.name} for {quantity_phrase(feature, upgrade.limit(feature))}"
                f" on the billing page ({self.upgrade_url})."
            )
        else:
            message += " Contact support to raise this limit."
        super().__init__(message)


def entitlement_counter_register(*, feature: str, counter: Callable[[object], int]) -> None:
    """Tell billing how to count a feature another app owns (bots, alerts, exchange connections).

    `counter(user)` runs as that user (tenant context) and returns how many the user has now.
    """
    feature = Feature(feature)
    if feature in METERED_FEATURES or feature in RATE_FEATURES or feature in CAP_FEATURES:
        raise ValueError(f"{feature} is counted by billing itself, or not counted at all")
    usage_counters[feature] = counter


def _lock_feature(*, user_id: int, feature: str) -> None:
    """Serialise checks of one user's feature until the surrounding transaction ends.

    Called inside the transaction that then creates the thing, two concurrent requests cannot both pass
    the check for the last free slot.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"billing:{feature}:{user_id}"]
        )


def _refuse_if_over(*, user, plan: Plan, feature: str, used: int, increment: int) -> int | None:
    limit = plan.limit(feature)
    if limit is None:
        return None
    if used + increment > limit:
        raise PlanLimitExceeded(
            plan=plan,
            feature=feature,
            limit=limit,
            # A cap counts nothing: what is refused is the size of this one request.
            used=increment if Feature(feature) in CAP_FEATURES else used,
            upgrade=plan_upgrade_for(current=plan, feature=feature, needed=used + increment),
        )
    return limit - used - increment


def entitlement_check(*, user, feature: str, increment: int = 1) -> int | None:
    """May `user` add `increment` more of `feature`? Raises PlanLimitExceeded if not.

    Returns what will be left afterwards (None: unlimited). Call it inside the transaction that creates
    the thing: the per-user lock it takes lasts until that transaction ends.
    """
    feature = Feature(feature)
    if feature in RATE_FEATURES:
        raise ValueError(f"{feature} is a rate, enforced by billing.api.PlanRateThrottle")
    if increment < 0:
        raise ValueError("increment must not be negative")
    if staff_unlimited(user=user, feature=feature):
        return None
    with tenant(user.pk):
        _lock_feature(user_id=user.pk, feature=feature)
        plan = user_plan(user=user)
        used = entitlement_usage(user=user, feature=feature)
        return _refuse_if_over(user=user, plan=plan, feature=feature, used=used, increment=increment)


def entitlement_consume(
    *,
    user,
    feature: str = Feature.AI_QUERIES,
    quantity: int = 1,
    idempotency_key: str,
    now: datetime | None = None,
) -> int | None:
    """Check and record one use of a metered feature (an AI query) in one step, once per key.

    A retry with the same `idempotency_key` (e.g. the AI message id) records nothing more. Raises
    PlanLimitExceeded when the month's allowance is used up. Returns what is left (None: unlimited).
    """
    feature = Feature(feature)
    if feature not in METERED_FEATURES:
        raise ValueError(f"{feature} is not metered; use entitlement_check")
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    if not idempotency_key:
        raise ValueError("an idempotency key is required")
    now = now or timezone.now()
    with tenant(user.pk):
        _lock_feature(user_id=user.pk, feature=feature)
        if UsageRecord.objects.filter(user_id=user.pk, idempotency_key=idempotency_key).exists():
            return entitlement_remaining(user=user, feature=feature, now=now)
        plan = user_plan(user=user, now=now)
        used = entitlement_usage(user=user, feature=feature, now=now)
        remaining = _refuse_if_over(user=user, plan=plan, feature=feature, used=used, increment=quantity)
        subscription = Subscription.objects.filter(user_id=user.pk).first()
        UsageRecord.objects.create(
            user=user,
            feature=feature,
            quantity=quantity,
            occurred_at=now,
            idempotency_key=idempotency_key,
            billable=bool(plan.is_paid and subscription and subscription.stripe_customer_id),
        )
        return remaining


# --- Checkout and Customer Portal ---------------------------------------------------------------------


def _subscription_for_update(*, user) -> Subscription:
    Subscription.objects.get_or_create(user=user)
    return Subscription.objects.select_for_update().get(user_id=user.pk)


def _ensure_customer(*, user) -> str:
    """The user's Stripe customer, created once (the key is derived from the user and generation)."""
    with tenant(user.pk):
        subscription = _subscription_for_update(user=user)
        if subscription.stripe_customer_id:
            return subscription.stripe_customer_id
        customer = stripe_gateway.customer_create(
            email=user.email,
            name=user.display_name,
            user_id=user.pk,
            idempotency_key=f"nexus-customer-{user.pk}-{subscription.customer_generation}",
        )
        subscription.stripe_customer_id = customer["id"]
        subscription.save(update_fields=["stripe_customer_id", "updated_at"])
        return customer["id"]


def _expire_other_checkouts(*, user, keep_plan: str) -> None:
    """At most one open Checkout per user, so two tabs cannot pay for two subscriptions."""
    for other in CheckoutSession.objects.filter(user_id=user.pk, status=CheckoutStatus.OPEN).exclude(
        plan=keep_plan
    ).exclude(stripe_session_id=None):
        assert other.stripe_session_id is not None
        try:
            stripe_gateway.checkout_session_expire(
                session_id=other.stripe_session_id, idempotency_key=f"nexus-checkout-expire-{other.pk}"
            )
        except stripe.InvalidRequestError as exc:
            session = stripe_gateway.checkout_session_retrieve(session_id=other.stripe_session_id)
            if session.get("status") == "complete":
                raise DomainError(
                    "Stripe is still confirming your previous checkout. Reload this page in a minute."
                ) from exc
        other.status = CheckoutStatus.EXPIRED
        other.save(update_fields=["status"])


def checkout_session_start(
    *, user, plan_code: str, success_url: str, cancel_url: str, now: datetime | None = None
) -> str:
    """Open (or reuse) a Stripe Checkout Session for a paid plan; returns the URL to send the user to."""
    plan = PLANS.get(plan_code)
    if plan is None or not plan.is_paid:
        raise DomainError("Choose Pro or Enterprise on the pricing page.", field="plan")
    prices = stripe_prices()
    flat_price = prices.get(plan.flat_price_lookup_key)
    metered_price = prices.get(plan.metered_price_lookup_key)
    if not stripe_gateway.secret_key() or not flat_price or not metered_price:
        raise PaymentsNotConfigured()
    now = now or timezone.now()
    customer_id = _ensure_customer(user=user)
    with tenant(user.pk):
        subscription = _subscription_for_update(user=user)
        if subscription.is_live:
            raise DomainError(
                f"You already have the {plan_get(subscription.plan).name} plan. "
                "Use “Manage billing” to change or cancel it."
            )
        reusable = checkout_open_for(user=user, plan_code=plan.code, now=now + CHECKOUT_REUSE_MARGIN)
        if reusable is not None:
            return reusable.url
        _expire_other_checkouts(user=user, keep_plan=plan.code)
        local = CheckoutSession.objects.create(user=user, plan=plan.code)
        metadata = {"nexus_user_id": str(user.pk), "nexus_plan": plan.code}
        subscription_data: dict = {"metadata": metadata}
        if plan.trial_days and subscription.trial_end is None:
            subscription_data["trial_period_days"] = plan.trial_days
        session = stripe_gateway.checkout_session_create(
            params={
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(user.pk),
                "line_items": [{"price": flat_price, "quantity": 1}, {"price": metered_price}],
                "subscription_data": subscription_data,
                "metadata": {**metadata, "nexus_checkout_id": str(local.pk)},
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            idempotency_key=f"nexus-checkout-{local.pk}",
        )
        local.stripe_session_id = session["id"]
        local.url = session["url"]
        local.expires_at = datetime.fromtimestamp(session["expires_at"], tz=UTC)
        local.status = CheckoutStatus.OPEN
        local.save(update_fields=["stripe_session_id", "url", "expires_at", "status"])
    logger.info("billing.checkout_started", user_id=user.pk, plan=plan.code, session=session["id"])
    return session["url"]


def portal_session_start(*, user, return_url: str, now: datetime | None = None) -> str:
    """A Stripe Customer Portal session for changing card, plan or cancelling; returns its URL."""
    if not stripe_gateway.secret_key():
        raise PaymentsNotConfigured()
    with tenant(user.pk):
        subscription = Subscription.objects.filter(user_id=user.pk).first()
    if subscription is None or not subscription.stripe_customer_id:
        raise DomainError("You have no Stripe billing account yet: choose a plan on the pricing page first.")
    minute = int((now or timezone.now()).timestamp()) // 60
    session = stripe_gateway.portal_session_create(
        customer_id=subscription.stripe_customer_id,
        return_url=return_url,
        # Repeated clicks within a minute get the same session rather than a new one each.
        idempotency_key=f"nexus-portal-{user.pk}-{minute}",
    )
    return session["url"]


# --- Metered usage to Stripe Billing Meters -----------------------------------------------------------


def _usage_batches_create(*, now: datetime) -> int:
    with system_context(reason="billing: find users with unreported metered usage"):
        user_ids = list(
            UsageRecord.objects.filter(billable=True, meter_report__isnull=True)
            .order_by()  # no model ordering in the DISTINCT
            .values_list("user_id", flat=True)
            .distinct()
        )
    created = 0
    for user_id in user_ids:
        with tenant(user_id):
            subscription = Subscription.objects.filter(user_id=user_id).first()
            if subscription is None or not subscription.stripe_customer_id:
                continue
            records = list(
                UsageRecord.objects.select_for_update(skip_locked=True)
                .filter(user_id=user_id, billable=True, meter_report__isnull=True, feature=Feature.AI_QUERIES)
                .order_by("pk")
            )
            if not records:
                continue
            report = MeterReport.objects.create(
                user_id=user_id,
                stripe_customer_id=subscription.stripe_customer_id,
                event_name=AI_QUERY_METER_EVENT,
                value=sum(record.quantity for record in records),
                # Each record belongs to one batch, so its first record's id names the batch for good.
                identifier=f"nexus-ai-{user_id}-{records[0].pk}",
                timestamp=now,
            )
            UsageRecord.objects.filter(pk__in=[record.pk for record in records]).update(meter_report=report)
            created += 1
    return created


def _meter_reports_send(*, now: datetime) -> tuple[int, int]:
    with system_context(reason="billing: find meter reports to send"):
        pending = list(
            MeterReport.objects.filter(status=MeterReportStatus.PENDING)
            .order_by("pk")
            .values_list("pk", "user_id")
        )
    sent = failed = 0
    for report_id, user_id in pending:
        with tenant(user_id):
            report = (
                MeterReport.objects.select_for_update(skip_locked=True)
                .filter(pk=report_id, status=MeterReportStatus.PENDING)
                .first()
            )
            if report is None:
                continue
            report.attempts += 1
            try:
                stripe_gateway.meter_event_create(
                    event_name=report.event_name,
                    customer_id=report.stripe_customer_id,
                    value=report.value,
                    identifier=report.identifier,
                    timestamp=int(report.timestamp.timestamp()),
                )
            except (DomainError, stripe.StripeError) as exc:
                report.last_error = str(exc)[:2000]
                report.save(update_fields=["attempts", "last_error"])
                logger.warning(
                    "billing.meter_report_failed", report=report.identifier, error=report.last_error
                )
                failed += 1
                continue
            report.status = MeterReportStatus.SENT
            report.sent_at = now
            report.last_error = ""
            report.save(update_fields=["attempts", "status", "sent_at", "last_error"])
            sent += 1
    return sent, failed


def usage_report_pending(*, now: datetime | None = None) -> dict[str, int]:
    """Batch unreported billable usage per user and send each batch as one meter event.

    Safe to run any number of times, concurrently too: a record joins one batch only, and a batch that
    failed is sent again later with the same identifier, which Stripe counts once.
    """
    now = now or timezone.now()
    batched = _usage_batches_create(now=now)
    sent, failed = _meter_reports_send(now=now)
    return {"batched": batched, "sent": sent, "failed": failed}


# --- Grace period -------------------------------------------------------------------------------------


def grace_periods_enforce(*, now: datetime | None = None) -> int:
    """Record the move to Free of every user whose failed payment outlived the grace period.

    Entitlements already follow the grace period on every read (Subscription.entitled_plan_code); this
    writes the audit row and tells the user, once.
    """
    now = now or timezone.now()
    with system_context(reason="billing: find subscriptions whose grace period ran out"):
        user_ids = list(
            Subscription.objects.filter(status__in=LIVE_STATUSES, downgraded_at__isnull=True)
            .filter(Q(payment_failed_at__isnull=False) | Q(status__in=FAILING_STATUSES))
            .exclude(plan=PlanCode.FREE)
            .values_list("user_id", flat=True)
        )
    downgraded = 0
    for user_id in user_ids:
        with tenant(user_id):
            subscription = (
                Subscription.objects.select_for_update(of=("self",)).select_related("user").defer("user__password")
                .get(user_id=user_id)
            )
            if subscription.downgraded_at or subscription.plan == PlanCode.FREE:
                continue
            if subscription.entitled_plan_code(now=now) != PlanCode.FREE:
                continue
            subscription_downgrade_for_nonpayment(subscription=subscription, user=subscription.user, now=now)
            downgraded += 1
    return downgraded


def subscription_downgrade_for_nonpayment(*, subscription: Subscription, user, now: datetime) -> None:
    """Record (once per failure) that the grace period ran out: audit row, notice to the user.

    Called by the grace-period job and by webhook processing, whichever sees it first.
    """
    failing_since = subscription.failing_since
    subscription.downgraded_at = now
    subscription.save(update_fields=["downgraded_at", "updated_at"])
    plan = plan_get(subscription.plan)
    audit_record(
        action="billing.plan_downgraded",
        user=user,
        actor_label="billing grace period",
        target=subscription,
        before={"plan": plan.code, "status": subscription.status},
        after={"plan": PlanCode.FREE, "status": subscription.status},
    )
    notify(
        user=user,
        kind=NOTIFY_PLAN_CHANGED,
        message=(
            f"We could not collect the payment for your {plan.name} plan, so your account now has "
            f"the Free plan's limits. Pay the open invoice to get {plan.name} back."
        ),
        link=reverse("billing"),
        dedup_key=f"billing:downgraded:{user.pk}:{failing_since.isoformat() if failing_since else ''}",
    )


# --- Trials Nexus grants itself -------------------------------------------------------------------------


def subscription_trial_grant(*, user, plan_code: str, now: datetime | None = None) -> Subscription:
    """A trial of a paid plan granted by Nexus itself, without Stripe (the demo trader): the plan's limits
    apply until `trial_end` (Subscription.entitled_plan_code ends it), no Stripe customer or subscription
    is invented, and a real subscription started later replaces it through the webhooks as usual.
    Refused while the user has a live Stripe subscription."""
    plan = plan_get(plan_code)
    if not plan.is_paid or not plan.trial_days:
        raise DomainError(f"The {plan.name} plan has no trial.", field="plan")
    now = now or timezone.now()
    with tenant(user.pk):
        subscription = _subscription_for_update(user=user)
        if subscription.stripe_subscription_id and subscription.is_live:
            raise DomainError("This account already has a subscription.", field="plan")
        before = {"plan": subscription.plan, "status": subscription.status}
        subscription.plan = plan.code
        subscription.status = SubscriptionStatus.TRIALING
        subscription.trial_end = now + timedelta(days=plan.trial_days)
        subscription.save(update_fields=["plan", "status", "trial_end", "updated_at"])
        audit_record(
            action="billing.trial_granted",
            user=user,
            actor_label="Nexus",
            target=subscription,
            before=before,
            after={
                "plan": plan.code,
                "status": subscription.status,
                "trial_end": subscription.trial_end.isoformat(),
            },
        )
    return subscription


# --- Webhook endpoint for local use ---------------------------------------------------------------------


def webhook_endpoint_ensure_local(*, secret: str, base_url: str):
    """A dj-stripe WebhookEndpoint signed with `secret`, for `stripe listen`, tests and benchmarks.

    Endpoints that Stripe itself calls are created from the dj-stripe admin, which registers them with
    Stripe and stores the secret Stripe returns. The UUID is derived from the secret, so the URL is stable.
    dj-stripe's tables are system-only (the endpoint row holds the signing secret).
    """
    from djstripe.enums import WebhookEndpointStatus
    from djstripe.models import WebhookEndpoint
    from djstripe.settings import djstripe_settings

    if not secret.startswith("whsec_"):
        raise DomainError("A Stripe webhook signing secret starts with whsec_.", field="secret")
    if settings.STRIPE_LIVE_MODE:
        raise DomainError(
            "In live mode create the webhook endpoint in the dj-stripe admin, which registers it with Stripe."
        )
    endpoint_uuid = uuid5(NAMESPACE_URL, f"nexus-local-webhook:{secret}")
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint_uuid})
    with system_context(reason="billing: register the local Stripe webhook endpoint"):
        endpoint, _ = WebhookEndpoint.objects.update_or_create(
            id=f"nexus_local_{endpoint_uuid.hex}",
            defaults={
                "api_version": djstripe_settings.STRIPE_API_VERSION,
                "enabled_events": ["*"],
                "secret": secret,
                "status": WebhookEndpointStatus.enabled,
                "url": base_url.rstrip("/") + path,
                "djstripe_uuid": endpoint_uuid,
                "livemode": settings.STRIPE_LIVE_MODE,
            },
        )
    return endpoint
