"""Reads: which plan applies to a user, how much of each limit is used and left, the billing page.

Every read runs as the user (`tenant(user.pk)`), so these work from views, the API, Celery tasks and the
Discord bot alike, whatever context the caller is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet, Sum
from django.utils import timezone

from billing.choices import (
    CAP_FEATURES,
    FAILING_STATUSES,
    METERED_FEATURES,
    RATE_FEATURES,
    STAFF_UNLIMITED_FEATURES,
    CheckoutStatus,
    Feature,
    PlanCode,
    SubscriptionStatus,
)
from billing.models import CheckoutSession, Invoice, StripePrice, Subscription, UsageRecord
from billing.plans import Plan, paid_plan_list, plan_get, plan_list
from core.rls import tenant

# Counters other apps register for the features they own (billing.services.entitlement_counter_register).
usage_counters: dict[str, Callable[[object], int]] = {}


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def subscription_get(*, user) -> Subscription | None:
    with tenant(user.pk):
        return Subscription.objects.filter(user_id=user.pk).first()


def user_plan(*, user, now: datetime | None = None) -> Plan:
    """The plan whose limits apply to `user` right now (Free without a live subscription)."""
    subscription = subscription_get(user=user)
    if subscription is None:
        return plan_get(PlanCode.FREE)
    return plan_get(subscription.entitled_plan_code(now=now or timezone.now()))


# The API's rate limit reads the plan on every request: from the cache, for at most this long, or until the
# subscription changes (billing.receivers clears it) or the plan changes by the clock (a local trial's end,
# the end of a grace period).
RATE_PLAN_CACHE_SECONDS = 60


def rate_plan_cache_key(user_id: int) -> str:
    return f"billing:rate-plan:{user_id}"


def user_rate_plan(*, user, now: datetime | None = None) -> Plan:
    """`user_plan` for the API rate limit, cached: a subscription change that races a read can leave the
    previous plan's limit in force for up to RATE_PLAN_CACHE_SECONDS, never longer."""
    now = now or timezone.now()
    key = rate_plan_cache_key(user.pk)
    cached = cache.get(key)
    if cached is not None:
        code, until = cached
        if until is None or now < until:
            return plan_get(code)
    subscription = subscription_get(user=user)
    if subscription is None:
        code, until = PlanCode.FREE, None
    else:
        code = subscription.entitled_plan_code(now=now)
        ends = [at for at in (subscription.trial_end if subscription.is_local_trial else None,
                              subscription.grace_ends_at()) if at is not None and at > now]
        until = min(ends, default=None)
    cache.set(key, (code, until), timeout=RATE_PLAN_CACHE_SECONDS)
    return plan_get(code)


def plan_is_paid(*, user, now: datetime | None = None) -> bool:
    """Whether `user`'s entitled plan is a paid one (trials and the grace period included): what
    paying-members-only content asks."""
    return user_plan(user=user, now=now).is_paid


def entitlement_usage(*, user, feature: str, now: datetime | None = None) -> int:
    """How much of `feature` the user uses now (this month, for metered features)."""
    with tenant(user.pk):
        return _usage(user=user, feature=Feature(feature), now=now)


def _usage(*, user, feature: Feature, now: datetime | None) -> int:
    """entitlement_usage inside the caller's tenant(user) block."""
    if feature in RATE_FEATURES or feature in CAP_FEATURES:
        return 0
    if feature in METERED_FEATURES:
        used = UsageRecord.objects.filter(
            user_id=user.pk, feature=feature, occurred_at__gte=month_start(now or timezone.now())
        ).aggregate(total=Sum("quantity"))["total"]
        return used or 0
    counter = usage_counters.get(feature)
    return 0 if counter is None else int(counter(user))


def staff_unlimited(*, user, feature: str) -> bool:
    """Staff have no plan limit on the features the house itself uses (its newsletter)."""
    return Feature(feature) in STAFF_UNLIMITED_FEATURES and bool(getattr(user, "is_staff", False))


def plan_limit(*, user, feature: str, now: datetime | None = None) -> int | None:
    """The limit on `feature` that applies to `user`: the plan's, or None (unlimited)."""
    if staff_unlimited(user=user, feature=feature):
        return None
    return user_plan(user=user, now=now).limit(feature)


def entitlement_allows(*, user, feature: str, increment: int = 1, now: datetime | None = None) -> bool:
    """Whether `user` may add `increment` more of `feature` now (for a cap: whether `increment` fits)."""
    remaining = entitlement_remaining(user=user, feature=feature, now=now)
    return remaining is None or remaining >= increment


def entitlement_remaining(*, user, feature: str, now: datetime | None = None) -> int | None:
    """What is left of `feature` on the user's plan; None when the plan has no limit."""
    limit = plan_limit(user=user, feature=feature, now=now)
    if limit is None:
        return None
    if Feature(feature) in RATE_FEATURES or Feature(feature) in CAP_FEATURES:
        return limit
    return max(limit - entitlement_usage(user=user, feature=feature, now=now), 0)


@dataclass(frozen=True)
class FeatureUsage:
    feature: str
    label: str
    limit: int | None
    used: int | None  # None for rates, which are not counted here

    @property
    def remaining(self) -> int | None:
        if self.limit is None or self.used is None:
            return None
        return max(self.limit - self.used, 0)

    @property
    def percent(self) -> int:
        if not self.limit or self.used is None:
            return 0
        return min(100, round(100 * self.used / self.limit))

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used is not None and self.used >= self.limit


def entitlement_summary(*, user, now: datetime | None = None) -> list[FeatureUsage]:
    plan = user_plan(user=user, now=now)
    rows = []
    # One tenant block for every count: inside a request's transaction each block is a savepoint, two
    # round trips around each of the ten counts.
    with tenant(user.pk):
        for feature in Feature:
            uncounted = feature in RATE_FEATURES or feature in CAP_FEATURES
            used = None if uncounted else _usage(user=user, feature=feature, now=now)
            limit = None if staff_unlimited(user=user, feature=feature) else plan.limit(feature)
            rows.append(FeatureUsage(feature=feature, label=feature.label, limit=limit, used=used))
    return rows


def stripe_prices() -> dict[str, str]:
    """Our active Stripe price ids by lookup key in the current mode, as `billing_sync_plans` recorded them.

    Read from billing's own StripePrice table (shared reference), never from dj-stripe's system-only tables.
    """
    return dict(
        StripePrice.objects.filter(active=True, livemode=settings.STRIPE_LIVE_MODE).values_list(
            "lookup_key", "stripe_price_id"
        )
    )


def payments_configured() -> bool:
    """A secret key is set and `billing_sync_plans` has recorded both prices of every paid plan."""
    from billing import stripe_gateway

    if not stripe_gateway.secret_key():
        return False
    prices = stripe_prices()
    return all(
        plan.flat_price_lookup_key in prices and plan.metered_price_lookup_key in prices
        for plan in paid_plan_list()
    )


def invoice_list(*, user) -> QuerySet[Invoice]:
    with tenant(user.pk):
        return Invoice.objects.filter(user_id=user.pk).exclude(status="draft")


def checkout_open_for(*, user, plan_code: str, now: datetime) -> CheckoutSession | None:
    with tenant(user.pk):
        return CheckoutSession.objects.filter(
            user_id=user.pk, plan=plan_code, status=CheckoutStatus.OPEN, expires_at__gt=now
        ).first()


@dataclass(frozen=True)
class BillingOverview:
    plan: Plan
    subscribed_plan: Plan
    status: str
    status_label: str
    subscription: Subscription | None
    trial_days_left: int | None
    trial_ending: bool
    payment_failed: bool
    grace_ends_at: datetime | None
    downgraded: bool
    usage: list[FeatureUsage]
    invoices: list[Invoice]
    payments_configured: bool
    can_manage: bool
    plans: list[Plan]


def billing_overview(*, user, now: datetime | None = None) -> BillingOverview:
    now = now or timezone.now()
    subscription = subscription_get(user=user)
    plan = user_plan(user=user, now=now)
    status = subscription.status if subscription else SubscriptionStatus.NONE
    trial_days_left = None
    trial_ending = False
    if subscription and status == SubscriptionStatus.TRIALING and subscription.trial_end:
        left = subscription.trial_end - now
        trial_days_left = max(0, left.days + (1 if left.seconds else 0))
        trial_ending = trial_days_left <= settings.BILLING_TRIAL_ENDING_DAYS
    failing = bool(subscription and subscription.failing_since)
    grace_end = subscription.grace_ends_at() if subscription else None
    return BillingOverview(
        plan=plan,
        subscribed_plan=plan_get(subscription.plan) if subscription and subscription.is_live else plan,
        status=status,
        status_label=SubscriptionStatus(status).label,
        subscription=subscription,
        trial_days_left=trial_days_left,
        trial_ending=trial_ending,
        payment_failed=failing or status in FAILING_STATUSES,
        grace_ends_at=grace_end,
        downgraded=bool(failing and grace_end and now >= grace_end),
        usage=entitlement_summary(user=user, now=now),
        invoices=list(invoice_list(user=user)[:24]),
        payments_configured=payments_configured(),
        can_manage=bool(subscription and subscription.stripe_customer_id),
        plans=plan_list(),
    )


def user_ids_on_plans(*, plan_codes, user_ids, now: datetime | None = None) -> set[int]:
    """Which of `user_ids` are entitled to one of `plan_codes` now (Free: no live subscription).

    Reads every user's subscription: call it inside `system_context(...)` (a mailing's audience)."""
    now = now or timezone.now()
    wanted = set(plan_codes)
    candidates = set(user_ids)
    plan_of = {
        subscription.user_id: subscription.entitled_plan_code(now=now)
        for subscription in Subscription.objects.filter(user_id__in=candidates)
    }
    return {user_id for user_id in candidates if plan_of.get(user_id, PlanCode.FREE) in wanted}
