"""Stripe webhooks through the real endpoint: signed like Stripe, stored once, processed exactly once,
and in Stripe's order whatever order (and however often) they arrive."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from billing.choices import PlanCode, SubscriptionStatus
from billing.models import CheckoutSession, Invoice, Subscription, WebhookEvent
from billing.plans import PRO
from billing.selectors import entitlement_remaining, user_plan
from billing.services import PlanLimitExceeded, entitlement_consume, grace_periods_enforce
from billing.webhooks import webhook_event_process, webhook_events_requeue_stale
from core.models import AuditLog, Notification
from core.rls import system_context, tenant
from tests.billing import stripe_events
from tests.billing.scenarios import DAY, lifecycle
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _linked(user, customer_id: str, **fields) -> Subscription:
    """The state right after Checkout began: we created the Stripe customer and stored its id."""
    with tenant(user.pk):
        subscription, _ = Subscription.objects.update_or_create(
            user=user, defaults={"stripe_customer_id": customer_id, **fields}
        )
    return subscription


def _checkout_opened(user, session_id: str) -> None:
    """The trader pressed Subscribe: we opened this Checkout Session at Stripe and stored it (billing.services)."""
    with tenant(user.pk):
        CheckoutSession.objects.create(
            user=user, plan=PlanCode.PRO, status="open", stripe_session_id=session_id,
            url=f"https://checkout.stripe.com/c/pay/{session_id}", expires_at=timezone.now() + timedelta(days=1),
        )


def _subscription(user) -> Subscription:
    with tenant(user.pk):
        return Subscription.objects.get(user=user)


def _process(event: dict, **kwargs) -> str:
    return webhook_event_process(event_id=event["id"], **kwargs)


def _deliver_and_process(client, webhooks, events, **kwargs) -> list[str]:
    outcomes = []
    for event in events:
        assert webhooks.post(client, event).status_code == 200
        outcomes.append(_process(event, **kwargs))
    return outcomes


def _audit_count(user, action: str = "billing.subscription_changed") -> int:
    with tenant(user.pk):
        return AuditLog.objects.filter(user=user, action=action).count()


def _notifications(user) -> list[str]:
    with tenant(user.pk):
        return list(Notification.objects.filter(user=user).order_by("pk").values_list("kind", flat=True))


def _state(user) -> dict:
    """What a user of billing can observe, for comparing replays."""
    subscription = _subscription(user)
    with tenant(user.pk):
        invoices = sorted(Invoice.objects.filter(user=user).values_list("stripe_id", "status", "amount_paid"))
        checkouts = sorted(
            CheckoutSession.objects.filter(user=user).values_list("stripe_session_id", "status")
        )
    return {
        "subscription": (
            subscription.stripe_subscription_id,
            subscription.plan,
            subscription.status,
            subscription.state_at,
            subscription.trial_end,
            subscription.last_paid_at,
            subscription.payment_failed_at,
            subscription.failed_payment_times,
            subscription.has_payment_method,
            subscription.stripe_customer_id,
        ),
        "invoices": invoices,
        "checkouts": checkouts,
    }


# --- The endpoint -------------------------------------------------------------------------------------


def test_a_bad_signature_gets_400_and_stores_nothing(client, webhooks, clock):
    event = stripe_events.event(
        type="customer.updated", obj=stripe_events.resource("customer"), created=clock.at(0)
    )
    wrong_secret = webhooks.post(client, event, secret="whsec_not_the_endpoint_secret")
    body, signature = webhooks.signed(event)
    tampered = client.generic(
        "POST",
        webhooks.path,
        body.replace(b"customer.updated", b"customer.deleted"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    too_old = webhooks.post(client, event, timestamp=clock.at(0) - 3600)
    unsigned = client.post(webhooks.path, body, content_type="application/json")

    assert [r.status_code for r in (wrong_secret, tampered, too_old, unsigned)] == [400, 400, 400, 400]
    with system_context(reason="test"):
        assert WebhookEventTrigger.objects.count() == 0
        assert WebhookEvent.objects.count() == 0


def test_a_signature_from_the_future_beyond_the_tolerance_is_refused(client, webhooks, clock):
    """Stripe's library checks only that a signature is not too old; ten minutes ahead is as suspect."""
    event = stripe_events.event(
        type="customer.updated", obj=stripe_events.resource("customer"), created=clock.at(0)
    )
    now = int(time.time())
    tolerance = webhooks.endpoint.djstripe_tolerance
    assert webhooks.post(client, event, timestamp=now + 600).status_code == 400
    with system_context(reason="tests: the event store"):
        assert WebhookEvent.objects.count() == 0
    # A clock running a little ahead of Stripe's is fine.
    assert webhooks.post(client, event, timestamp=now + tolerance - 30).status_code == 200
    with system_context(reason="tests: the event store"):
        assert WebhookEvent.objects.filter(stripe_id=event["id"]).count() == 1


def test_an_unknown_endpoint_is_404_and_stores_nothing(client, webhooks, clock):
    event = stripe_events.event(
        type="customer.updated", obj=stripe_events.resource("customer"), created=clock.at(0)
    )
    body, signature = webhooks.signed(event)
    response = client.generic(
        "POST",
        "/stripe/webhook/00000000-0000-4000-8000-000000000000/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert response.status_code == 404
    with system_context(reason="test"):
        assert WebhookEventTrigger.objects.count() == 0


def test_a_signed_event_is_stored_once_and_queued_once(
    client, webhooks, clock, django_capture_on_commit_callbacks, monkeypatch
):
    from billing import webhooks as webhook_module

    queued: list[str] = []
    monkeypatch.setattr(webhook_module, "webhook_event_enqueue", lambda *, event_id: queued.append(event_id))
    event = stripe_events.event(
        type="customer.updated", obj=stripe_events.resource("customer"), created=clock.at(0)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.post(client, event).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.post(client, event).status_code == 200

    with system_context(reason="test"):
        stored = WebhookEvent.objects.get()
        triggers = [t.valid for t in WebhookEventTrigger.objects.all()]
    assert (stored.stripe_id, stored.type, stored.event_created) == (
        event["id"],
        "customer.updated",
        _ts(clock.at(0)),
    )
    assert stored.processed_at is None
    assert triggers == [True, True]  # dj-stripe logs each delivery
    assert queued == [event["id"]]

    # A duplicate of an event left unprocessed for minutes (its queue message lost) is queued again.
    with system_context(reason="test"):
        WebhookEvent.objects.filter(pk=stored.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.post(client, event).status_code == 200
    assert queued == [event["id"], event["id"]]


# --- Exactly once under concurrent duplicate delivery ----------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_each_event_delivered_three_times_concurrently_is_processed_once(webhooks, clock):
    user = UserFactory()
    _linked(user, "cus_concurrent")
    scenario = lifecycle(
        user_id=user.pk,
        email=user.email,
        customer_id="cus_concurrent",
        start=int(timezone.now().timestamp()) - 70 * DAY,
        tag="conc",
    )

    def in_threads(target, count=3) -> list:
        barrier, results = threading.Barrier(count), [None] * count

        def run(index):
            try:
                barrier.wait()
                results[index] = target()
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    for event in scenario.events:
        statuses = in_threads(lambda event=event: webhooks.post(Client(), event).status_code)
        assert statuses == [200, 200, 200]
        outcomes = in_threads(lambda event=event: _process(event))
        assert sorted(o.startswith("duplicate") for o in outcomes) == [False, True, True], outcomes

    with system_context(reason="test"):
        assert WebhookEvent.objects.count() == len(scenario.events)
        assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
        assert WebhookEventTrigger.objects.count() == 3 * len(scenario.events)
    # One side effect per change, not three: trial start, active, payment failed (and, replayed weeks
    # later, already past the grace period), past_due, canceled.
    assert _audit_count(user) == 5
    assert _audit_count(user, "billing.plan_downgraded") == 1
    assert _notifications(user) == ["billing.plan_changed", "billing.payment_failed", "billing.plan_changed"]
    assert _subscription(user).status == SubscriptionStatus.CANCELED


# --- Order ----------------------------------------------------------------------------------------------


def test_an_update_before_its_create_ends_in_the_update(client, webhooks, user_a, clock):
    _linked(user_a, "cus_order")
    created = stripe_events.subscription(
        sub_id="sub_order",
        customer_id="cus_order",
        status="trialing",
        plan=PRO,
        created=clock.at(0),
        trial_end=clock.at(14 * DAY),
    )
    updated = stripe_events.subscription(
        sub_id="sub_order", customer_id="cus_order", status="active", plan=PRO, created=clock.at(0)
    )
    events = [
        stripe_events.event(type="customer.subscription.updated", obj=updated, created=clock.at(100)),
        stripe_events.event(type="customer.subscription.created", obj=created, created=clock.at(0)),
    ]
    outcomes = _deliver_and_process(client, webhooks, events)
    assert outcomes == ["subscription active", "skipped: older than the state already applied"]
    assert _subscription(user_a).status == SubscriptionStatus.ACTIVE


def test_an_old_update_after_a_newer_one_changes_nothing(client, webhooks, user_a, clock):
    _linked(user_a, "cus_old")
    pro = PRO
    past_due = stripe_events.subscription(
        sub_id="sub_old", customer_id="cus_old", status="past_due", plan=pro, created=clock.at(0)
    )
    active = stripe_events.subscription(
        sub_id="sub_old", customer_id="cus_old", status="active", plan=pro, created=clock.at(0)
    )
    _deliver_and_process(
        client,
        webhooks,
        [
            stripe_events.event(type="customer.subscription.updated", obj=past_due, created=clock.at(200)),
            stripe_events.event(type="customer.subscription.updated", obj=active, created=clock.at(100)),
        ],
    )
    subscription = _subscription(user_a)
    assert (subscription.status, subscription.state_at) == (SubscriptionStatus.PAST_DUE, _ts(clock.at(200)))
    assert _audit_count(user_a) == 1


def test_states_stamped_the_same_second_resolve_forwards(client, webhooks, user_a, clock):
    _linked(user_a, "cus_tie")
    pro = PRO
    incomplete = stripe_events.subscription(
        sub_id="sub_tie", customer_id="cus_tie", status="incomplete", plan=pro, created=clock.at(0)
    )
    active = stripe_events.subscription(
        sub_id="sub_tie", customer_id="cus_tie", status="active", plan=pro, created=clock.at(0)
    )
    _deliver_and_process(
        client,
        webhooks,
        [
            stripe_events.event(type="customer.subscription.updated", obj=active, created=clock.at(0)),
            stripe_events.event(type="customer.subscription.created", obj=incomplete, created=clock.at(0)),
        ],
    )
    assert _subscription(user_a).status == SubscriptionStatus.ACTIVE


def test_a_stale_subscriptions_events_do_not_touch_the_newer_one(client, webhooks, user_a, clock):
    _linked(user_a, "cus_resub")
    pro = PRO
    old_canceled = stripe_events.subscription(
        sub_id="sub_first", customer_id="cus_resub", status="canceled", plan=pro, created=clock.at(0)
    )
    new_active = stripe_events.subscription(
        sub_id="sub_second", customer_id="cus_resub", status="active", plan=pro, created=clock.at(500)
    )
    outcomes = _deliver_and_process(
        client,
        webhooks,
        [
            stripe_events.event(type="customer.subscription.created", obj=new_active, created=clock.at(500)),
            stripe_events.event(
                type="customer.subscription.deleted", obj=old_canceled, created=clock.at(400)
            ),
        ],
    )
    assert outcomes[1] == "skipped: an older subscription than the current one"
    subscription = _subscription(user_a)
    assert (subscription.stripe_subscription_id, subscription.status) == (
        "sub_second",
        SubscriptionStatus.ACTIVE,
    )


def _replay_shuffled(client, webhooks, seed: int):
    """A lifecycle delivered in Stripe's order to one trader, and three times over, shuffled, to another."""
    start = int(timezone.now().timestamp()) - 70 * DAY
    reference_user = UserFactory()
    _linked(reference_user, f"cus_ref{seed}")
    _checkout_opened(reference_user, f"cs_test_ref{seed}")
    reference = lifecycle(
        user_id=reference_user.pk,
        email=reference_user.email,
        customer_id=f"cus_ref{seed}",
        start=start,
        tag=f"ref{seed}",
    )
    _deliver_and_process(client, webhooks, reference.events)

    user = UserFactory()
    _linked(user, f"cus_shuf{seed}")
    _checkout_opened(user, f"cs_test_shuf{seed}")
    scenario = lifecycle(
        user_id=user.pk, email=user.email, customer_id=f"cus_shuf{seed}", start=start, tag=f"shuf{seed}"
    )
    deliveries = scenario.events * 3
    random.Random(seed).shuffle(deliveries)
    outcomes = _deliver_and_process(client, webhooks, deliveries)
    return user, reference_user, scenario, outcomes


def _told(user) -> list[tuple[str, str]]:
    with tenant(user.pk):
        return sorted(Notification.objects.filter(user=user).values_list("kind", "message"))


@pytest.mark.parametrize("seed", range(6))
def test_a_lifecycle_replayed_in_any_order_ends_in_the_same_right_state(client, webhooks, seed):
    user, reference_user, scenario, outcomes = _replay_shuffled(client, webhooks, seed)

    assert sum(not o.startswith("duplicate") for o in outcomes) == len(scenario.events)
    with system_context(reason="test"):
        assert set(
            WebhookEvent.objects.filter(stripe_id__startswith=f"evt_shuf{seed}_").values_list(
                "attempts", flat=True
            )
        ) == {1}
    got, expected = _state(user), _state(reference_user)
    # Same state as Stripe's own order, apart from the ids that name each run.
    assert got["subscription"][1:9] == expected["subscription"][1:9]
    assert [i[1:] for i in got["invoices"]] == [i[1:] for i in expected["invoices"]]
    assert expected["checkouts"] == [(f"cs_test_ref{seed}", "complete")], "Stripe's own order records the checkout"
    assert got["checkouts"] == [(f"cs_test_shuf{seed}", "complete")], "whatever the order, the checkout is recorded"
    subscription = _subscription(user)
    assert subscription.status == SubscriptionStatus.CANCELED and subscription.plan == PlanCode.PRO
    assert subscription.payment_failed_at == _ts(scenario.failed + 1)
    assert [i[1] for i in got["invoices"]] == ["paid", "paid", "open"]
    assert user_plan(user=user).code == PlanCode.FREE
    # Notifications are keyed so that no replay sends one twice: the failed payment is told exactly once
    # (as in Stripe's order), and nothing is told more often than in Stripe's order.
    kinds, reference_kinds = Counter(_notifications(user)), Counter(_notifications(reference_user))
    assert kinds["billing.payment_failed"] == reference_kinds["billing.payment_failed"] == 1
    assert kinds["billing.trial_ending"] == reference_kinds["billing.trial_ending"]
    assert kinds <= reference_kinds, kinds


@pytest.mark.xfail(strict=True, reason=(
    "bug: what a trader is told depends on the order Stripe's events arrive in. In Stripe's order: Pro started, "
    "payment failed 'update your card before <first failure + grace>', downgraded to Free's limits. Shuffled: "
    "the Pro and downgrade notices can both be lost (seeds 2-5), and the payment-failed notice can name a "
    "deadline 3 days late, from the retry's failure (seeds 0, 5), or none at all (seeds 1, 3, 4)"
))
@pytest.mark.parametrize("seed", range(6))
def test_a_lifecycle_replayed_in_any_order_tells_the_trader_each_thing_once(client, webhooks, seed):
    user, reference_user, _, _ = _replay_shuffled(client, webhooks, seed)
    assert Counter(_notifications(user)) == Counter(_notifications(reference_user)), "each notice exactly once"
    payment_failed = [message for kind, message in _told(user) if kind == "billing.payment_failed"]
    assert payment_failed == [m for k, m in _told(reference_user) if k == "billing.payment_failed"]
    assert (_subscription(user).downgraded_at is None) == (_subscription(reference_user).downgraded_at is None)


# --- The lifecycle changes entitlements at each step ---------------------------------------------------


def test_trial_active_past_due_canceled_changes_entitlements_at_each_step(client, webhooks, user_a, settings):
    settings.BILLING_GRACE_PERIOD_DAYS = 7
    _linked(user_a, "cus_life")
    scenario = lifecycle(
        user_id=user_a.pk,
        email=user_a.email,
        customer_id="cus_life",
        start=int(timezone.now().timestamp()) - 70 * DAY,
        tag="life",
    )
    by_number = {int(e["id"].rsplit("_", 1)[1]): e for e in scenario.events}

    def upto(last: int) -> None:
        for number in range(1, last + 1):
            event = by_number[number]
            with system_context(reason="test"):
                delivered = WebhookEvent.objects.filter(stripe_id=event["id"]).exists()
            if not delivered:
                _deliver_and_process(client, webhooks, [event])

    def plan_at(ts: int) -> str:
        return user_plan(user=user_a, now=_ts(ts)).code

    assert user_plan(user=user_a).code == PlanCode.FREE
    upto(2)
    assert _subscription(user_a).status == SubscriptionStatus.TRIALING
    assert plan_at(scenario.started + DAY) == PlanCode.PRO
    assert entitlement_remaining(user=user_a, feature="ai_queries", now=_ts(scenario.started + DAY)) == 1000
    upto(9)
    assert _subscription(user_a).status == SubscriptionStatus.ACTIVE
    assert plan_at(scenario.active + DAY) == PlanCode.PRO
    upto(12)
    assert _subscription(user_a).status == SubscriptionStatus.PAST_DUE
    assert plan_at(scenario.failed + 6 * DAY) == PlanCode.PRO  # still within the grace period
    assert plan_at(scenario.failed + 8 * DAY) == PlanCode.FREE  # grace over: Free's limits
    upto(14)
    assert _subscription(user_a).status == SubscriptionStatus.CANCELED
    assert plan_at(scenario.canceled + 1) == PlanCode.FREE
    assert user_plan(user=user_a).code == PlanCode.FREE


def test_a_failed_payment_past_the_grace_period_downgrades_and_paying_restores(
    client, webhooks, user_a, settings
):
    settings.BILLING_GRACE_PERIOD_DAYS = 7
    _linked(user_a, "cus_grace")
    now = int(timezone.now().timestamp())
    pro = PRO

    def sub(status, at):
        return stripe_events.event(
            type="customer.subscription.updated",
            created=at,
            obj=stripe_events.subscription(
                sub_id="sub_grace", customer_id="cus_grace", status=status, plan=pro, created=now - 40 * DAY
            ),
        )

    def inv(type_, status, at):
        return stripe_events.event(
            type=type_,
            created=at,
            obj=stripe_events.invoice(
                invoice_id="in_grace",
                customer_id="cus_grace",
                sub_id="sub_grace",
                status=status,
                amount=2900,
                created=at,
            ),
        )

    # Processed as they happened (within the grace period): nothing is taken away yet.
    _deliver_and_process(client, webhooks, [sub("active", now - 40 * DAY)], now=_ts(now - 40 * DAY))
    _deliver_and_process(
        client,
        webhooks,
        [
            inv("invoice.payment_failed", "open", now - 9 * DAY),
            sub("past_due", now - 9 * DAY),
        ],
        now=_ts(now - 9 * DAY),
    )
    assert user_plan(user=user_a, now=_ts(now - 3 * DAY)).code == PlanCode.PRO
    for n in range(25):
        entitlement_consume(user=user_a, idempotency_key=f"grace-ai-{n}")
    with pytest.raises(PlanLimitExceeded, match="Your Free plan allows 25 AI queries a month"):
        entitlement_consume(user=user_a, idempotency_key="grace-ai-over")

    assert grace_periods_enforce() == 1
    assert grace_periods_enforce() == 0
    assert _audit_count(user_a, "billing.plan_downgraded") == 1
    assert _subscription(user_a).downgraded_at is not None

    _deliver_and_process(client, webhooks, [inv("invoice.paid", "paid", now - 60), sub("active", now - 60)])
    subscription = _subscription(user_a)
    assert (subscription.payment_failed_at, subscription.downgraded_at) == (None, None)
    assert user_plan(user=user_a).code == PlanCode.PRO
    assert entitlement_consume(user=user_a, idempotency_key="grace-ai-over") == 1000 - 26
    assert _notifications(user_a) == [
        "billing.plan_changed",  # Pro active
        "billing.payment_failed",
        "billing.plan_changed",  # moved to Free by the grace period
        "billing.payment_recovered",
        "billing.plan_changed",  # Pro again
    ]


def test_an_older_failure_arriving_after_the_payment_changes_nothing(client, webhooks, user_a, clock):
    _linked(user_a, "cus_late_fail", plan="pro", status="active")

    def inv(type_, status, at):
        return stripe_events.event(
            type=type_,
            created=at,
            obj=stripe_events.invoice(
                invoice_id="in_late",
                customer_id="cus_late_fail",
                sub_id="sub_x",
                status=status,
                amount=2900,
                created=clock.at(0),
            ),
        )

    outcomes = _deliver_and_process(
        client,
        webhooks,
        [
            inv("invoice.paid", "paid", clock.at(200)),
            inv("invoice.payment_failed", "open", clock.at(100)),
        ],
    )
    assert outcomes[1] == "invoice: older than the state already applied; payment failure already settled"
    subscription = _subscription(user_a)
    assert subscription.payment_failed_at is None
    with tenant(user_a.pk):
        assert Invoice.objects.get(stripe_id="in_late").status == "paid"
    assert "billing.payment_failed" not in _notifications(user_a)


def test_trial_will_end_tells_the_user_once(client, webhooks, user_a, clock):
    _linked(user_a, "cus_trial")
    trial_end = int(timezone.now().timestamp()) + 3 * DAY
    obj = stripe_events.subscription(
        sub_id="sub_trial",
        customer_id="cus_trial",
        status="trialing",
        plan=PRO,
        created=clock.at(0),
        trial_end=trial_end,
    )
    event = stripe_events.event(type="customer.subscription.trial_will_end", obj=obj, created=clock.at(10))
    for _ in range(3):
        assert webhooks.post(client, event).status_code == 200
    assert _process(event).endswith("trial ending notice")
    assert _process(event) == "duplicate: already processed"
    assert _notifications(user_a).count("billing.trial_ending") == 1


def test_customer_updated_and_deleted(client, webhooks, user_a, clock):
    _linked(
        user_a,
        "cus_gone",
        plan="pro",
        status="active",
        stripe_subscription_id="sub_gone",
        state_at=_ts(clock.at(0)),
    )
    with_card = stripe_events.customer(
        customer_id="cus_gone", user_id=user_a.pk, email=user_a.email, default_payment_method="pm_1"
    )
    _deliver_and_process(
        client,
        webhooks,
        [
            stripe_events.event(type="customer.updated", obj=with_card, created=clock.at(10)),
        ],
    )
    assert _subscription(user_a).has_payment_method is True
    _deliver_and_process(
        client, webhooks, [stripe_events.event(type="customer.deleted", obj=with_card, created=clock.at(20))]
    )
    subscription = _subscription(user_a)
    assert (subscription.stripe_customer_id, subscription.customer_generation, subscription.status) == (
        None,
        1,
        SubscriptionStatus.CANCELED,
    )
    # A late update for the deleted customer finds the user by metadata and still changes nothing.
    outcome = _deliver_and_process(
        client, webhooks, [stripe_events.event(type="customer.updated", obj=with_card, created=clock.at(5))]
    )
    assert outcome == ["skipped: not the current customer"]
    assert user_plan(user=user_a).code == PlanCode.FREE


def test_events_for_unknown_customers_and_unused_types_are_recorded_and_left(client, webhooks, clock):
    stranger = stripe_events.customer(customer_id="cus_nobody", user_id=0, email="x@example.com")
    stranger["metadata"] = {}
    unknown = stripe_events.event(type="customer.updated", obj=stranger, created=clock.at(0))
    unused = stripe_events.event(type="plan.created", obj=stripe_events.resource("plan"), created=clock.at(0))
    assert _deliver_and_process(client, webhooks, [unknown, unused]) == [
        "ignored: customer not linked to a Nexus user",
        "ignored: not an event billing uses",
    ]
    with system_context(reason="test"):
        assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 2


def test_a_failed_processing_is_recorded_and_retried(client, webhooks, user_a, clock, monkeypatch):
    _linked(user_a, "cus_retry")
    obj = stripe_events.customer(
        customer_id="cus_retry", user_id=user_a.pk, email=user_a.email, default_payment_method="pm_1"
    )
    event = stripe_events.event(type="customer.updated", obj=obj, created=clock.at(0))
    webhooks.post(client, event)
    from billing import webhooks as webhook_module

    def broken(context):
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(webhook_module.HANDLERS, "customer.updated", broken)
    with pytest.raises(RuntimeError):
        _process(event)
    with system_context(reason="test"):
        stored = WebhookEvent.objects.get(stripe_id=event["id"])
    assert (stored.processed_at, stored.attempts, stored.last_error) == (
        None,
        1,
        "RuntimeError: database hiccup",
    )
    assert _subscription(user_a).has_payment_method is False  # nothing half-applied
    monkeypatch.undo()
    with system_context(reason="test"):
        WebhookEvent.objects.filter(pk=stored.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    assert webhook_events_requeue_stale() == 1
    assert _process(event) == "customer updated"
    assert webhook_events_requeue_stale() == 0
