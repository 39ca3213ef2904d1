"""Stripe webhooks: stored once, processed exactly once, in Stripe's order whatever order they arrive in.

Receiving (in the web process, fast): dj-stripe's endpoint (`/stripe/webhook/<uuid>/`, run in system
context by billing.views.stripe_webhook_view) verifies the signature against the WebhookEndpoint's secret
and logs the delivery (WebhookEventTrigger, here its proxy `StoredDelivery`), sends its signals
(`webhook_post_validate` refuses future signatures), and then runs the trigger's processing step, which
for `StoredDelivery` is `webhook_event_receive` instead of dj-stripe's synchronous mirror of the event
(the deprecated DJSTRIPE_WEBHOOK_EVENT_CALLBACK did the same). That inserts the event into WebhookEvent with
`ON CONFLICT (stripe_id) DO NOTHING`: a repeated delivery inserts nothing and enqueues nothing. The
Celery task is enqueued after the system block's transaction commits.

Processing (Celery, `billing.process_webhook_event`), in three transactions, because the event store is
system-only and the user's billing rows are tenant rows:
1. system context: lock the stored event, skip it if already processed, resolve the Stripe customer to
   our user (an event nobody owns is marked processed here);
2. `tenant(user.pk)`: claim the event for that user (an AppliedEvent row, unique by event id), apply the
   state change and write its side effects (audit rows, notifications); they commit together with the
   claim or not at all, and a concurrent duplicate waits on the claim and then finds it taken;
3. system context: mark the stored event processed with the outcome. If a worker dies between 2 and 3,
   the retry finds the claim and only marks the event.

Order: every state we keep remembers the Stripe time of the state it came from (the event's `created`,
with the status breaking same-second ties), and an older state arriving later is skipped. Payment
standing is kept as "last time in good standing" plus "failures after it", which gives the same answer
in any order. The event table in docs/billing.md lists what each event does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.settings import djstripe_settings
from djstripe.views import ProcessWebhookView
from psycopg.types.json import Jsonb

from billing.choices import (
    INVOICE_STATUS_RANK,
    NOTIFY_PAYMENT_FAILED,
    NOTIFY_PAYMENT_RECOVERED,
    NOTIFY_PLAN_CHANGED,
    NOTIFY_TRIAL_ENDING,
    STATUS_RANK,
    CheckoutStatus,
    InvoiceStatus,
    PlanCode,
    SubscriptionStatus,
)
from billing.models import AppliedEvent, CheckoutSession, Invoice, Subscription, WebhookEvent
from billing.plans import plan_for_stripe_price, plan_get
from billing.services import subscription_downgrade_for_nonpayment
from core.audit import audit_record
from core.consumers import user_group
from core.jobs import task_enqueue
from core.notifications import notify
from core.rls import system_context, tenant

logger = structlog.get_logger(__name__)

# A duplicate delivery of an event still unprocessed this long after it arrived enqueues it again
# (its first queue message was lost); the sweeper (`billing.requeue_stale_events`) does the same.
REQUEUE_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 10


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _stripe_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# --- Receiving ------------------------------------------------------------------------------------------


def webhook_refuse_future_signature(sender, instance, valid: bool, **kwargs) -> None:
    """dj-stripe's `webhook_post_validate` receiver. Stripe's library refuses a signature older than the
    endpoint's tolerance but not one from the future; a signed time further ahead than the tolerance is
    refused too (dj-stripe then answers 400 and processes nothing)."""
    if not valid:
        return
    header = CaseInsensitiveMapping(instance.headers).get("stripe-signature") or ""
    # The first t=, as Stripe's verifier reads it: that is the time the signature covers.
    signed_at = next(
        int(value) for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"
    )
    if signed_at > time.time() + instance.webhook_endpoint.djstripe_tolerance:
        logger.warning("billing.webhook_signed_in_the_future", signed_at=signed_at)
        instance.valid = False


def webhook_event_receive(trigger, api_key: str | None = None) -> None:
    """A verified delivery (`StoredDelivery.process`): store the event once and queue its processing.

    Runs inside the endpoint's system context (billing.views.stripe_webhook_view).
    """
    body = trigger.json_body
    event_id = str(body["id"])
    now = timezone.now()
    using = router.db_for_write(WebhookEvent)
    table = connections[using].ops.quote_name(WebhookEvent._meta.db_table)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (stripe_id, type, livemode, api_version, event_created, payload, "  # noqa: S608 - table name from the model
            "received_at, outcome, stripe_customer_id, attempts, last_error) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, '', '', 0, '') ON CONFLICT (stripe_id) DO NOTHING RETURNING id",
            [
                event_id,
                str(body.get("type") or "")[:100],
                bool(body.get("livemode")),
                str(body.get("api_version") or "")[:64],
                _timestamp(body.get("created")) or now,
                Jsonb(body),
                now,
            ],
        )
        inserted = cursor.fetchone() is not None
    if not inserted:
        lost = WebhookEvent.objects.filter(
            stripe_id=event_id, processed_at__isnull=True, received_at__lt=now - REQUEUE_AFTER
        ).exists()
        if not lost:
            return
    # robust: the event is stored, so a broker hiccup must not turn Stripe's delivery into a 500;
    # the sweeper enqueues it again.
    transaction.on_commit(lambda: webhook_event_enqueue(event_id=event_id), using=using, robust=True)


class StoredDelivery(WebhookEventTrigger):
    """dj-stripe's delivery log row whose processing step stores the event and queues it (Celery applies
    it), instead of dj-stripe mirroring it into its own tables during the request."""

    class Meta:
        proxy = True
        app_label = "billing"

    def process(self, save: bool = True, api_key: str | None = None) -> None:
        webhook_event_receive(self, api_key=api_key)
        if save:
            self.save()


class WebhookView(ProcessWebhookView):
    """dj-stripe's webhook view, with `StoredDelivery` as the trigger: the same checks, log and signals."""

    def post(self, request: HttpRequest, uuid) -> HttpResponse:
        if "stripe-signature" not in request.headers:
            logger.warning("billing.webhook_unsigned")
            return HttpResponseBadRequest()
        endpoint = get_object_or_404(WebhookEndpoint, djstripe_uuid=uuid)
        trigger = StoredDelivery.from_request(request, webhook_endpoint=endpoint)
        if not trigger.valid:
            logger.warning("billing.webhook_invalid", trigger_id=trigger.id)
            return HttpResponseBadRequest()
        return HttpResponse(str(trigger.id))


def webhook_event_enqueue(*, event_id: str) -> None:
    task_enqueue("billing.process_webhook_event", args=[event_id])


def webhook_events_requeue_stale(*, now: datetime | None = None) -> int:
    """Enqueue events that arrived but were never processed (lost queue message, crashed worker)."""
    now = now or timezone.now()
    with system_context(reason="billing: requeue Stripe events left unprocessed"):
        event_ids = list(
            WebhookEvent.objects.filter(
                processed_at__isnull=True, received_at__lt=now - REQUEUE_AFTER, attempts__lt=MAX_ATTEMPTS
            ).values_list("stripe_id", flat=True)[:1000]
        )
    for event_id in event_ids:
        webhook_event_enqueue(event_id=event_id)
    return len(event_ids)


# --- Processing -----------------------------------------------------------------------------------------


@dataclass
class EventContext:
    event: WebhookEvent
    obj: dict
    at: datetime  # the event's Stripe time: the version of the state it carries
    user: Any
    subscription: Subscription
    now: datetime


Handler = Callable[[EventContext], str]


def webhook_event_process(*, event_id: str, now: datetime | None = None) -> str:
    """Apply one stored event exactly once; returns what it did (also stored as the event's outcome)."""
    now = now or timezone.now()
    try:
        with system_context(reason=f"stripe webhook {event_id}: load the event and find the customer's user"):
            event = WebhookEvent.objects.select_for_update().filter(stripe_id=event_id).first()
            if event is None:
                return "unknown event"
            if event.processed_at is not None:
                return "duplicate: already processed"
            handler = HANDLERS.get(event.type)
            customer_id = _customer_of(event.data_object)
            user = None if handler is None else _resolve_user(event.data_object, customer_id)
            if user is None:
                outcome = (
                    "ignored: not an event billing uses"
                    if handler is None
                    else "ignored: customer not linked to a Nexus user"
                )
                _mark_processed(event_id=event_id, outcome=outcome, customer_id=customer_id)
        if user is not None:
            outcome, applied_now = _apply(event, handler=handler, user=user, now=now)
            with system_context(reason=f"stripe webhook {event_id}: mark the event processed"):
                _mark_processed(event_id=event_id, outcome=outcome, customer_id=customer_id)
            if not applied_now:
                return "duplicate: already applied"
    except Exception as exc:
        with system_context(reason=f"stripe webhook {event_id}: record a failed attempt"):
            WebhookEvent.objects.filter(stripe_id=event_id, processed_at__isnull=True).update(
                attempts=F("attempts") + 1, last_error=f"{exc.__class__.__name__}: {exc}"[:2000]
            )
        logger.exception("billing.webhook_failed", event_id=event_id)
        raise
    logger.info("billing.webhook_processed", event_id=event_id, type=event.type, outcome=outcome)
    return outcome


def _mark_processed(*, event_id: str, outcome: str, customer_id: str | None) -> None:
    """Inside system context. Once: a duplicate that finds the event already marked changes nothing."""
    WebhookEvent.objects.filter(stripe_id=event_id, processed_at__isnull=True).update(
        processed_at=timezone.now(),
        outcome=outcome[:200],
        stripe_customer_id=customer_id or "",
        attempts=F("attempts") + 1,
        last_error="",
    )


def _customer_of(obj: dict) -> str | None:
    if obj.get("object") == "customer":
        return _stripe_id(obj.get("id"))
    return _stripe_id(obj.get("customer"))


def _metadata_user_ids(obj: dict) -> Iterable[str]:
    """Where we put our user id when creating Stripe objects (customer, subscription, checkout)."""
    yield (obj.get("metadata") or {}).get("nexus_user_id")
    if obj.get("object") == "checkout.session":
        yield obj.get("client_reference_id")
    parent = obj.get("parent") or {}
    yield ((parent.get("subscription_details") or {}).get("metadata") or {}).get("nexus_user_id")
    yield ((obj.get("subscription_details") or {}).get("metadata") or {}).get("nexus_user_id")


def _resolve_user(obj: dict, customer_id: str | None):
    """Inside system context: the user a Stripe object belongs to, by our stored customer id, else by
    the metadata we set."""
    user_model = get_user_model()
    if customer_id:
        user_id = (
            Subscription.objects.filter(stripe_customer_id=customer_id)
            .values_list("user_id", flat=True)
            .first()
        )
        if user_id is not None:
            return user_model.objects.get(pk=user_id)
    for candidate in _metadata_user_ids(obj):
        if candidate and str(candidate).isdigit():
            user = user_model.objects.filter(pk=int(candidate)).first()
            if user is not None:
                return user
    return None


def _snapshot(subscription: Subscription, *, now: datetime) -> dict[str, str]:
    return {
        "plan": subscription.plan,
        "status": subscription.status,
        "entitled_plan": subscription.entitled_plan_code(now=now),
    }


def _apply(event: WebhookEvent, *, handler: Handler, user, now: datetime) -> tuple[str, bool]:
    """Claim the event for `user` and apply it, in one tenant transaction.

    Returns the outcome and whether it was applied now; an event applied before (a concurrent duplicate,
    or a retry after the worker died before marking it processed) returns the outcome recorded then.
    """
    with tenant(user.pk):
        using = router.db_for_write(AppliedEvent)
        table = connections[using].ops.quote_name(AppliedEvent._meta.db_table)
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, stripe_event_id, outcome, applied_at) "  # noqa: S608 - table name from the model
                "VALUES (%s, %s, '', %s) ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id",
                [user.pk, event.stripe_id, timezone.now()],
            )
            claim = cursor.fetchone()
        if claim is None:
            earlier = AppliedEvent.objects.filter(stripe_event_id=event.stripe_id).values_list(
                "outcome", flat=True
            )
            return earlier.first() or "applied before", False
        Subscription.objects.get_or_create(user=user)
        subscription = Subscription.objects.select_for_update().get(user_id=user.pk)
        before = _snapshot(subscription, now=now)
        context = EventContext(
            event=event,
            obj=event.data_object,
            at=event.event_created,
            user=user,
            subscription=subscription,
            now=now,
        )
        outcome = handler(context)[:200]
        subscription.refresh_from_db()
        after = _snapshot(subscription, now=now)
        if before != after:
            _record_change(context, before=before, after=after)
        AppliedEvent.objects.filter(pk=claim[0]).update(outcome=outcome)
        transaction.on_commit(lambda: push_billing_status(user=user), using=using, robust=True)
    return outcome, True


def _record_change(context: EventContext, *, before: dict, after: dict) -> None:
    subscription = context.subscription
    audit_record(
        action="billing.subscription_changed",
        user=context.user,
        actor_label=f"stripe {context.event.type}",
        target=subscription,
        before=before,
        after={**after, "stripe_event": context.event.stripe_id},
    )
    if before["entitled_plan"] == after["entitled_plan"]:
        return
    if subscription.downgraded_at and after["entitled_plan"] != PlanCode.FREE:
        subscription.downgraded_at = None
        subscription.save(update_fields=["downgraded_at", "updated_at"])
    if (
        after["entitled_plan"] == PlanCode.FREE
        and subscription.failing_since
        and not subscription.downgraded_at
    ):
        # The grace period ran out before this event arrived: the same record the grace job writes.
        subscription_downgrade_for_nonpayment(subscription=subscription, user=context.user, now=context.now)
        return
    plan = plan_get(after["entitled_plan"])
    if plan.code == PlanCode.FREE:
        message = "Your account is now on the Free plan."
    elif subscription.status == SubscriptionStatus.TRIALING and subscription.trial_end:
        message = f"Your {plan.name} trial has started; it runs until {subscription.trial_end:%d %b %Y}."
    else:
        message = f"Your account is now on the {plan.name} plan."
    notify(
        user=context.user,
        kind=NOTIFY_PLAN_CHANGED,
        message=message,
        link=reverse("billing"),
        dedup_key=f"billing:plan:{context.event.stripe_id}",
    )


# --- Handlers (each returns its outcome) ----------------------------------------------------------------


def _subscription_plan(obj: dict):
    for item in (obj.get("items") or {}).get("data") or []:
        plan = plan_for_stripe_price(item.get("price") or {})
        if plan is not None:
            return plan
    code = (obj.get("metadata") or {}).get("nexus_plan")
    return plan_get(code) if code in PlanCode.values and code != PlanCode.FREE else None


def _period_end(obj: dict) -> datetime | None:
    ends = [item.get("current_period_end") for item in (obj.get("items") or {}).get("data") or []]
    ends.append(obj.get("current_period_end"))
    stamps = [stamp for stamp in (_timestamp(end) for end in ends) if stamp is not None]
    return max(stamps) if stamps else None


def _apply_subscription(context: EventContext) -> str:
    obj, subscription = context.obj, context.subscription
    try:
        status = SubscriptionStatus(obj.get("status"))
    except ValueError:
        return f"ignored: unknown subscription status {obj.get('status')!r}"
    stripe_id = obj.get("id") or ""
    created = _timestamp(obj.get("created"))
    rank = STATUS_RANK[status]
    if subscription.stripe_subscription_id and subscription.stripe_subscription_id != stripe_id:
        known = subscription.subscription_created_at
        if created is None or known is None or created <= known:
            return "skipped: an older subscription than the current one"
    elif subscription.state_at is not None and (context.at, rank) <= (
        subscription.state_at,
        subscription.state_rank,
    ):
        return "skipped: older than the state already applied"
    plan = _subscription_plan(obj)
    if plan is None:
        return "ignored: the subscription has none of our prices"
    period_end = _period_end(obj)
    subscription.stripe_subscription_id = stripe_id
    subscription.subscription_created_at = created
    subscription.plan = plan.code
    subscription.status = status
    subscription.state_at = context.at
    subscription.state_rank = rank
    subscription.trial_end = _timestamp(obj.get("trial_end"))
    subscription.current_period_end = period_end
    subscription.cancel_at = _timestamp(obj.get("cancel_at")) or (
        period_end if obj.get("cancel_at_period_end") else None
    )
    subscription.save()
    return f"subscription {status}"


def _on_subscription(context: EventContext) -> str:
    return _apply_subscription(context)


def _on_trial_will_end(context: EventContext) -> str:
    outcome = _apply_subscription(context)
    subscription = context.subscription
    current = subscription.stripe_subscription_id == context.obj.get("id")
    trialing = subscription.status == SubscriptionStatus.TRIALING
    if current and trialing and subscription.trial_end and subscription.trial_end > context.now:
        plan = plan_get(subscription.plan)
        notify(
            user=context.user,
            kind=NOTIFY_TRIAL_ENDING,
            message=(
                f"Your {plan.name} trial ends on {subscription.trial_end:%d %b %Y}. "
                + (
                    "Your card will then be charged."
                    if subscription.has_payment_method
                    else "Add a card to keep it."
                )
            ),
            link=reverse("billing"),
            dedup_key=f"billing:trial-ending:{subscription.stripe_subscription_id}:{int(subscription.trial_end.timestamp())}",
        )
        return f"{outcome}; trial ending notice"
    return outcome


def _minor_unit_exponent(currency: str) -> int:
    if currency.lower() in djstripe_settings.ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if currency.lower() in {"bhd", "jod", "kwd", "omr", "tnd"} else 2


def _amount(value: Any, currency: str):
    from decimal import Decimal

    return Decimal(int(value or 0)).scaleb(-_minor_unit_exponent(currency))


def _invoice_subscription_id(obj: dict) -> str:
    parent = obj.get("parent") or {}
    return (
        _stripe_id(obj.get("subscription"))
        or _stripe_id((parent.get("subscription_details") or {}).get("subscription"))
        or ""
    )


def _record_good_standing(subscription: Subscription, at: datetime) -> bool:
    """Paid at `at`; returns whether an outstanding payment failure was cleared."""
    if subscription.last_paid_at is None or at > subscription.last_paid_at:
        subscription.last_paid_at = at
    return _set_failures(subscription, subscription.failed_payment_times)


def _record_failure(subscription: Subscription, at: datetime) -> bool:
    """A payment failed at `at`; returns whether it is outstanding (after the last payment)."""
    stamp = int(at.timestamp())
    _set_failures(subscription, [*subscription.failed_payment_times, stamp])
    return stamp in subscription.failed_payment_times


def _set_failures(subscription: Subscription, stamps: list[int]) -> bool:
    paid = int(subscription.last_paid_at.timestamp()) if subscription.last_paid_at else None
    had_failure = subscription.payment_failed_at is not None
    kept = sorted({stamp for stamp in stamps if paid is None or stamp > paid})
    subscription.failed_payment_times = kept
    subscription.payment_failed_at = _timestamp(kept[0]) if kept else None
    return had_failure and not kept


def _on_invoice(context: EventContext) -> str:
    obj, subscription = context.obj, context.subscription
    try:
        status = InvoiceStatus(obj.get("status"))
    except ValueError:
        return f"ignored: unknown invoice status {obj.get('status')!r}"
    rank = INVOICE_STATUS_RANK[status]
    invoice = Invoice.objects.select_for_update().filter(stripe_id=obj.get("id")).first()
    outcomes = []
    if invoice is None or (context.at, rank) > (invoice.state_at, invoice.state_rank):
        currency = str(obj.get("currency") or "usd")
        invoice = invoice or Invoice(user=context.user, stripe_id=obj["id"])
        invoice.stripe_subscription_id = _invoice_subscription_id(obj)
        invoice.number = obj.get("number") or ""
        invoice.status = status
        invoice.currency = currency
        invoice.amount_due = _amount(obj.get("amount_due"), currency)
        invoice.amount_paid = _amount(obj.get("amount_paid"), currency)
        invoice.total = _amount(obj.get("total"), currency)
        invoice.hosted_invoice_url = obj.get("hosted_invoice_url") or ""
        invoice.invoice_pdf = obj.get("invoice_pdf") or ""
        invoice.period_start = _timestamp(obj.get("period_start"))
        invoice.period_end = _timestamp(obj.get("period_end"))
        invoice.created_at = _timestamp(obj.get("created")) or context.at
        invoice.state_at = context.at
        invoice.state_rank = rank
        invoice.save()
        outcomes.append(f"invoice {status}")
    else:
        outcomes.append("invoice: older than the state already applied")
    if _customer_of(obj) != subscription.stripe_customer_id:
        return "; ".join([*outcomes, "standing unchanged: not the current customer"])
    event_type = context.event.type
    if event_type in ("invoice.paid", "invoice.payment_succeeded"):
        recovered = _record_good_standing(subscription, context.at)
        subscription.save(
            update_fields=["last_paid_at", "failed_payment_times", "payment_failed_at", "updated_at"]
        )
        outcomes.append("good standing")
        if recovered:
            notify(
                user=context.user,
                kind=NOTIFY_PAYMENT_RECOVERED,
                message=f"Thank you: payment received, your {plan_get(subscription.plan).name} plan is in good standing.",
                link=reverse("billing"),
                dedup_key=f"billing:payment-recovered:{obj['id']}",
            )
    elif event_type == "invoice.payment_failed":
        outstanding = _record_failure(subscription, context.at)
        subscription.save(update_fields=["failed_payment_times", "payment_failed_at", "updated_at"])
        outcomes.append("payment failure recorded" if outstanding else "payment failure already settled")
        if outstanding:
            grace_end = subscription.grace_ends_at()
            notify(
                user=context.user,
                kind=NOTIFY_PAYMENT_FAILED,
                message=(
                    f"Your payment of {invoice.amount_due} {invoice.currency.upper()} failed. "
                    + (
                        f"Update your card before {grace_end:%d %b %Y} to keep your plan."
                        if grace_end
                        else ""
                    )
                ),
                link=reverse("billing"),
                dedup_key=f"billing:payment-failed:{obj['id']}",
            )
    return "; ".join(outcomes)


def _on_checkout_completed(context: EventContext) -> str:
    local = (
        CheckoutSession.objects.select_for_update().filter(stripe_session_id=context.obj.get("id")).first()
    )
    if local is None:
        return "checkout completed: not one we opened"
    if local.status != CheckoutStatus.COMPLETE:
        local.status = CheckoutStatus.COMPLETE
        local.completed_at = context.at
        local.save(update_fields=["status", "completed_at"])
    return "checkout completed"


def _on_checkout_expired(context: EventContext) -> str:
    updated = CheckoutSession.objects.filter(
        stripe_session_id=context.obj.get("id"), status__in=[CheckoutStatus.OPEN, CheckoutStatus.CREATING]
    ).update(status=CheckoutStatus.EXPIRED)
    return "checkout expired" if updated else "checkout expired: nothing open"


def _on_customer_updated(context: EventContext) -> str:
    obj, subscription = context.obj, context.subscription
    if obj.get("id") != subscription.stripe_customer_id:
        return "skipped: not the current customer"
    if subscription.customer_state_at is not None and context.at <= subscription.customer_state_at:
        return "skipped: older than the customer state already applied"
    settings_ = obj.get("invoice_settings") or {}
    subscription.customer_state_at = context.at
    subscription.has_payment_method = bool(
        settings_.get("default_payment_method") or obj.get("default_source")
    )
    subscription.save(update_fields=["customer_state_at", "has_payment_method", "updated_at"])
    return "customer updated"


def _on_customer_deleted(context: EventContext) -> str:
    subscription = context.subscription
    if context.obj.get("id") != subscription.stripe_customer_id:
        return "skipped: not the current customer"
    subscription.stripe_customer_id = None
    subscription.customer_generation += 1
    subscription.customer_state_at = context.at
    subscription.has_payment_method = False
    if subscription.is_live:
        # Stripe cancels a deleted customer's subscriptions; whatever order those events come in, ended.
        subscription.status = SubscriptionStatus.CANCELED
        subscription.state_rank = STATUS_RANK[SubscriptionStatus.CANCELED]
        subscription.state_at = max(filter(None, [subscription.state_at, context.at]))
    subscription.save()
    return "customer deleted"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.expired": _on_checkout_expired,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "customer.subscription.paused": _on_subscription,
    "customer.subscription.resumed": _on_subscription,
    "customer.subscription.trial_will_end": _on_trial_will_end,
    "invoice.finalized": _on_invoice,
    "invoice.paid": _on_invoice,
    "invoice.payment_succeeded": _on_invoice,
    "invoice.payment_failed": _on_invoice,
    "invoice.voided": _on_invoice,
    "invoice.marked_uncollectible": _on_invoice,
    "customer.updated": _on_customer_updated,
    "customer.deleted": _on_customer_deleted,
}


def push_billing_status(*, user) -> None:
    """Refresh the billing page's status card in the user's open tabs (HTMX out-of-band swap)."""
    from billing.selectors import billing_overview

    html = render_to_string(
        "billing/partials/status.html", {"overview": billing_overview(user=user), "oob": True}
    )
    async_to_sync(get_channel_layer().group_send)(user_group(user.pk), {"type": "user.html", "html": html})
